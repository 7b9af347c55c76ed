"""Container images of a private stack: the copies in the stack's own registry (no SDK: validate uses it).

A workspace whose managed network allows only approved outbound traffic reaches two registries:
the stack's container registry (through a private endpoint Azure ML manages) and the Microsoft
Container Registry (a required service tag of the managed network). Any other registry would need
an outbound FQDN rule per host the registry serves layers from, which Azure implements with an
Azure Firewall billed by the hour, and which hosts a third-party registry uses is not
documented as a stable list. So with governance.network: private, mlops-infra copies each
training and serving image from elsewhere into the stack's registry at deployment (ACR import,
arm_actions.ImportedImage) and the jobs and deployments run the copy:
ghcr.io/acme/train:1.4 -> <registry>.azurecr.io/ghcr.io/acme/train:1.4 (the source registry's
name stays in the repository path, so two registries' images never collide).

Import copies public images (and images of registries the deploying identity can read, for other
Azure registries of its tenant); a private third-party image must be pushed to the stack's
registry by hand and named there in the spec. ACR import limits: 2 GiB per layer from a public
registry, 50 manifests per image (Azure Container Registry, "Import container images").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_infra.backends.azure.network import is_private
from mlops_infra.stages.base import finding

if TYPE_CHECKING:
    from mlops_infra.backends.azure.storage_workspace import WorkspaceRef
    from mlops_infra.backends.context import StageContext
    from mlops_infra.spec.models import SpecBase
    from mlops_infra.spec.problems import Problem

DOCKER_HUB = "docker.io"
MCR = "mcr.microsoft.com"  # reached through the managed network's MicrosoftContainerRegistry rule
REGISTRY_SUFFIX = "azurecr.io"  # Azure public cloud


@dataclass(frozen=True)
class ImageRef:
    registry: str  # "ghcr.io", "docker.io", "<name>.azurecr.io"
    repository: str  # "acme/train", "library/python"
    tag: str | None = None
    digest: str | None = None  # "sha256:..."

    @property
    def reference(self) -> str:
        """The image in the repository: 'acme/train:1.4' or 'acme/train@sha256:...'."""
        return f"{self.repository}@{self.digest}" if self.digest else f"{self.repository}:{self.tag or 'latest'}"


def parse_image(image: str) -> ImageRef:
    """An image reference as Docker reads it; ValueError for what is not one."""
    rest, _, digest = image.partition("@")
    if digest and not digest.startswith("sha256:"):
        raise ValueError("a digest is sha256:<hex>")
    first, _, path = rest.partition("/")
    if path and ("." in first or ":" in first or first == "localhost"):
        registry = first.lower()
    else:
        registry, path = DOCKER_HUB, rest
    name, _, tag = path.rpartition(":") if ":" in path.rsplit("/", 1)[-1] else (path, "", "")
    if not name or name != name.lower() or any(not part for part in name.split("/")) or " " in image:
        raise ValueError("a repository path is lowercase words separated by '/'")
    if registry == DOCKER_HUB and "/" not in name:
        name = f"library/{name}"
    return ImageRef(registry=registry, repository=name, tag=tag or None, digest=digest or None)


def login_server(registry_name: str) -> str:
    return f"{registry_name}.{REGISTRY_SUFFIX}"


def needs_copy(ref: ImageRef, registry_name: str) -> bool:
    """Whether the managed network cannot reach the image where it is."""
    return ref.registry not in (login_server(registry_name), MCR)


def copy_repository(ref: ImageRef) -> str:
    """The repository of the copy in the stack's registry: the source registry, then its path."""
    return f"{ref.registry}/{ref.repository}"


def copied_image(ref: ImageRef, registry_name: str) -> str:
    """What the jobs and deployments pull: the copy in the stack's registry."""
    copy = ImageRef(registry=login_server(registry_name), repository=copy_repository(ref), tag=ref.tag, digest=ref.digest)
    return f"{copy.registry}/{copy.reference}"


def private_image(
    ctx: StageContext, image: str, *, workspace: WorkspaceRef, what: str
) -> tuple[str, list[Any]]:
    """(what the jobs or deployment pull, what they wait for): the image itself on a public stack, or
    on a private one its copy in the stack's registry (imported at deployment by `what`'s resource)."""
    if not is_private(ctx.spec):
        return image, []
    ref = parse_image(image)  # validate reports images it cannot read
    if not needs_copy(ref, workspace.registry_name):
        return image, []
    import pulumi

    from mlops_infra.backends.azure.arm_actions import ImportedImage

    copy = ImportedImage(
        ctx.logical("image", what),
        registry_id=workspace.registry_id,
        source_registry=ref.registry,
        source_image=ref.reference,
        repository=copy_repository(ref),
        # A dynamic resource has no cloud provider of its own: parent only.
        opts=pulumi.ResourceOptions(parent=ctx.parent),
    )
    return copied_image(ref, workspace.registry_name), [copy]


def image_problems(spec: SpecBase) -> list[Problem]:
    """Images a private stack cannot copy because they are not image references."""
    if not is_private(spec):
        return []
    found = []
    for i, model in enumerate(spec.models):
        for part in ("training", "serving"):
            block = getattr(model, part)
            if block is None:
                continue
            try:
                parse_image(block.image)
            except ValueError as exc:
                found.append(
                    finding(
                        ("models", i, part, "image"),
                        f"is not an image reference mlops-infra can copy into the stack's registry ({exc}), which "
                        "network: private needs",
                        hint="use <registry>/<repository>:<tag>, e.g. ghcr.io/acme/train:1.4.0",
                        value=block.image,
                    )
                )
    return found
