"""GCP tracking: the Vertex AI metadata store (experiments) and a TensorBoard instance.

Vertex AI Experiments and Pipelines record into the region's metadata store named "default",
which Vertex AI creates with Google-managed encryption the first time anything logs metadata:
to have it encrypted with the governance key it must be created, with that key, before then
(cloud.google.com/vertex-ai/docs/ml-metadata/configure). So the store is that "default" one,
one per project and region: a project already holding it (created by earlier use) needs
`pulumi import` first, and two stacks cannot share a project and region for tracking.

The tracking URI is the store's resource name (projects/P/locations/R/metadataStores/default):
what aiplatform.init(project=P, location=R, experiment=...) logs into. TensorBoard holds the
experiments' time series. Both are stateful (experiment history): protected. Both are
serverless, so tracking.size has no effect here (backend.check() says so).
"""

from __future__ import annotations

import pulumi_gcp as gcp

from mlops_infra.backends.context import StageContext
from mlops_infra.stages.tracking import TrackingOutputs

METADATA_STORE = "default"  # the name Vertex AI Experiments and Pipelines use; fixed by Vertex AI


def build(ctx: StageContext) -> TrackingOutputs:
    project, region = ctx.settings.project, ctx.settings.region
    # The key path, available once the Vertex AI service agent may use it (governance).
    key = ctx.upstream["governance"].extra["service_keys"]["aiplatform"]
    stack = f"{ctx.spec.project}/{ctx.spec.environment}"
    store = gcp.vertex.AiMetadataStore(
        ctx.logical("metadata-store"),
        name=METADATA_STORE,
        project=project,
        region=region,
        description=f"experiment tracking of the mlops-infra stack {stack}",
        encryption_spec={"kms_key_name": key},
        opts=ctx.opts(protect=True),
    )
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
    # Derived from the store's own output, so it carries the dependency and is known in plans.
    uri = store.name.apply(lambda name: f"projects/{project}/locations/{region}/metadataStores/{name}")
    return TrackingOutputs(tracking_uri=uri)
