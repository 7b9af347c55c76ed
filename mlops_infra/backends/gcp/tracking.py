"""GCP tracking: the Vertex AI metadata store (experiments) and a TensorBoard instance.

Vertex AI Experiments and Pipelines record into the region's metadata store named "default",
which Vertex AI creates with Google-managed encryption the first time anything logs metadata:
to have it encrypted with the governance key it must be created, with that key, before then
(cloud.google.com/vertex-ai/docs/ml-metadata/configure). So the store is that "default" one,
one per project and region: a project singleton (GcpBackend.singletons). The stack that owns the
project's singletons (governance.singletons: owned) creates it with its key; a project already
holding it (created by earlier use) needs `pulumi import` first. Stacks with
governance.singletons: external record into the owner's store without declaring it, so dev,
staging and prod of one project never claim it twice (governance.check() says so).

The tracking URI is the store's resource name (projects/P/locations/R/metadataStores/default):
what aiplatform.init(project=P, location=R, experiment=...) logs into. TensorBoard holds the
experiments' time series. Both are stateful (experiment history): protected. Both are
serverless, so tracking.size has no effect here (check() says so).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_infra.backends.gcp.shared import ProjectServices
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.tracking import TrackingOutputs

if TYPE_CHECKING:
    from mlops_infra.backends.context import StageContext

METADATA_STORE = "default"  # the name Vertex AI Experiments and Pipelines use; fixed by Vertex AI


def check(spec: Any, settings: Any) -> list[Problem]:
    from mlops_infra.backends.gcp import BACKEND

    if spec.tracking is not None and spec.tracking.enabled and spec.tracking.size != "small":
        return [BACKEND.gap("tracking.size", ("tracking", "size"), value=spec.tracking.size)]
    return []


def build(ctx: StageContext) -> TrackingOutputs:
    import pulumi
    import pulumi_gcp as gcp

    project, region = ctx.settings.project, ctx.settings.region
    # The key path, available once the Vertex AI service agent may use it (governance).
    key = ctx.upstream.of(ProjectServices).service_keys["aiplatform"]
    stack = f"{ctx.spec.project}/{ctx.spec.environment}"
    store_name: Any = METADATA_STORE  # the owner's store: a name, not a resource of this stack
    if ctx.spec.governance.singletons == "owned":
        store_name = gcp.vertex.AiMetadataStore(
            ctx.logical("metadata-store"),
            name=METADATA_STORE,
            project=project,
            region=region,
            description=f"experiment tracking of the mlops-infra stack {stack}",
            encryption_spec={"kms_key_name": key},
            opts=ctx.opts(protect=True),
        ).name
    gcp.vertex.AiTensorboard(
        ctx.logical("tensorboard"),
        display_name=f"mlops-infra {stack}",
        description=f"experiment time series of the mlops-infra stack {stack}",
        project=project,
        region=region,
        encryption_spec={"kms_key_name": key},
        labels=ctx.tags(),
        opts=ctx.opts(protect=True),
    )
    # Derived from the store's own output when this stack makes it, so it carries the dependency.
    uri = pulumi.Output.from_input(store_name).apply(
        lambda name: f"projects/{project}/locations/{region}/metadataStores/{name}"
    )
    return TrackingOutputs(tracking_uri=uri)
