"""Azure actions a private stack needs that azure-native has no resource for, as dynamic resources.

- ImportedImage: copy a container image into the stack's registry (ACR importImage: the registry
  fetches it itself, as a trusted Azure service, so the registry stays closed to the network;
  images.py says why private stacks copy their images).
- ManagedNetworkProvision: provision the workspace's managed network with serverless Spark
  (provisionManagedNetwork with includeSpark), which Azure ML model monitors run on; Azure ML
  asks for it before the first Spark job, and the workspace's own provisionNetworkNow leaves
  Spark out ("Configure for serverless Spark jobs", how-to-managed-network).

Both are idempotent actions: creating runs them, a change of what they name replaces them (runs
again), and deleting does nothing (a copied image stays in the registry, whose contents a default
destroy keeps; the managed network goes with the workspace). The HTTP session is arm.py's, made
at deployment only. This module's name is part of deployed state (providers are pickled by
reference), so it keeps it.
"""

from __future__ import annotations

from typing import Any

import pulumi

from mlops_infra.backends.azure.arm import ArmSession
from mlops_infra.backends.dynamic import DynamicResource
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

# The API versions azure-native 3.29 uses for container registries and for Azure ML workspaces.
REGISTRY_API_VERSION = "2023-01-01-preview"
ML_API_VERSION = "2025-12-01"


class _ActionProvider(ResourceProvider):
    """An ARM action run on create and on replacement; nothing to undo on delete."""

    serialize_as_secret_always = False
    inputs: tuple[str, ...] = ()

    def __init__(self, session: Any = None) -> None:
        super().__init__()
        self._session = session

    def _arm(self) -> Any:
        if self._session is None:
            self._session = ArmSession()
        return self._session

    def run(self, props: dict[str, Any]) -> str:
        """Run the action; returns the resource's id."""
        raise NotImplementedError

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(self.run(props), props)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(news)  # not reached for what the action names: diff replaces

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing to undo (see the module docstring)."""

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in self.inputs if olds.get(key) != news.get(key)]
        return DiffResult(changes=bool(changed), replaces=changed, delete_before_replace=False)


class ImportedImageProvider(_ActionProvider):
    inputs = ("registry_id", "source_registry", "source_image", "repository")

    def run(self, props: dict[str, Any]) -> str:
        return import_image(
            self._arm(),
            registry_id=props["registry_id"],
            source_registry=props["source_registry"],
            source_image=props["source_image"],
            repository=props["repository"],
        )


def import_image(session: Any, *, registry_id: str, source_registry: str, source_image: str, repository: str) -> str:
    """Import `source_registry`/`source_image` into `repository` of the registry (same tag or digest)."""
    body: dict[str, Any] = {"source": {"registryUri": source_registry, "sourceImage": source_image}, "mode": "Force"}
    if "@" in source_image:
        body["untaggedTargetRepositories"] = [repository]
        target = f"{repository}@{source_image.split('@', 1)[1]}"
    else:
        target = f"{repository}:{source_image.rsplit(':', 1)[1]}"
        body["targetTags"] = [target]
    session.run("POST", f"{registry_id}/importImage", body, api_version=REGISTRY_API_VERSION)
    return f"{registry_id}/images/{target}"


class ImportedImage(DynamicResource, module="mlops-infra-azure", name="ImportedImage"):
    """A copy of `source_registry`/`source_image` in the stack's registry, under `repository`."""

    def __init__(
        self,
        resource_name: str,
        *,
        registry_id: pulumi.Input[str],
        source_registry: str,
        source_image: str,
        repository: str,
        opts: pulumi.ResourceOptions | None = None,
        provider: ResourceProvider | None = None,
    ) -> None:
        props = {
            "registry_id": registry_id,
            "source_registry": source_registry,
            "source_image": source_image,
            "repository": repository,
        }
        super().__init__(provider or ImportedImageProvider(), resource_name, props, opts)


class ManagedNetworkProvisionProvider(_ActionProvider):
    inputs = ("workspace_id", "include_spark")

    def run(self, props: dict[str, Any]) -> str:
        body = {"includeSpark": bool(props["include_spark"])}
        workspace = props["workspace_id"]
        self._arm().run("POST", f"{workspace}/provisionManagedNetwork", body, api_version=ML_API_VERSION)
        return f"{workspace}/managedNetwork"


class ManagedNetworkProvision(DynamicResource, module="mlops-infra-azure", name="ManagedNetworkProvision"):
    """The workspace's managed network, provisioned (with serverless Spark when include_spark)."""

    def __init__(
        self,
        resource_name: str,
        *,
        workspace_id: pulumi.Input[str],
        include_spark: bool,
        opts: pulumi.ResourceOptions | None = None,
        provider: ResourceProvider | None = None,
    ) -> None:
        props = {"workspace_id": workspace_id, "include_spark": include_spark}
        super().__init__(provider or ManagedNetworkProvisionProvider(), resource_name, props, opts)
