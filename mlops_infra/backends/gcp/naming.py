"""How each GCP physical name is built (rules: data/cloud-name-rules.json), and where images live.

Kinds and their scope of uniqueness on GCP:
- gcp.storage.bucket: one global namespace -> always hashed (scope: the GCP project).
- gcp.iam.service_account_id, gcp.iam.custom_role_id: unique per project.
- gcp.kms.*, gcp.workflows.workflow, gcp.artifactregistry.repository, gcp.vertex.model_id,
  gcp.vertex.endpoint_id_alpha: unique per project and region.
- gcp.bigquery.dataset (captured requests): unique per project.
- gcp.pubsub.topic, gcp.cloudscheduler.job (per project and region), gcp.eventarc.trigger (per
  project and region).
- gcp.compute.resource (the private network, its subnet, routes, firewall rules and peering range:
  unique per project, subnets per region), gcp.dns.managed_zone: unique per project.

Names GCP fixes (the Vertex metadata store "default") bypass the namer.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from mlops_infra.naming import Namer, NameStyle
from mlops_infra.stages.base import finding

if TYPE_CHECKING:
    from mlops_infra.backends.gcp.settings import GcpSettings
    from mlops_infra.spec.problems import Problem

STYLES = {
    # BigQuery dataset ids take letters, digits and underscores only.
    "gcp.bigquery.dataset": NameStyle(separator="_", letter_first=True),
    # Bucket names share one global namespace: always hashed (scope: the GCP project).
    # The rule allows 222 characters for dotted names only; undotted names stop at 63.
    "gcp.storage.bucket": NameStyle(global_unique=True, max_length=63),
    # 6-30 characters, lowercase letter first, no trailing hyphen.
    "gcp.iam.service_account_id": NameStyle(letter_first=True),
    "gcp.kms.key_ring": NameStyle(),
    "gcp.kms.crypto_key": NameStyle(),
    "gcp.workflows.workflow": NameStyle(letter_first=True),
    "gcp.artifactregistry.repository": NameStyle(letter_first=True),
    # Custom role ids allow no hyphens: words joined with "_".
    "gcp.iam.custom_role_id": NameStyle(separator="_", letter_first=True),
    "gcp.vertex.model_id": NameStyle(letter_first=True),
    # Endpoint ids: the letter-first form (up to 63 of a-z, 0-9, -), stable per model so the
    # endpoint keeps its URN and URL when what it serves changes.
    "gcp.vertex.endpoint_id_alpha": NameStyle(letter_first=True),
    # Monitoring and retraining: the drift workflows use gcp.workflows.workflow too.
    "gcp.pubsub.topic": NameStyle(letter_first=True),
    "gcp.cloudscheduler.job": NameStyle(),
    "gcp.eventarc.trigger": NameStyle(letter_first=True),
    # Private networking (backends/gcp/facts/name-rules.json): networks, subnets, routes, firewall
    # rules and address ranges share Compute Engine's RFC 1035 names; Cloud DNS zones the same form.
    "gcp.compute.resource": NameStyle(letter_first=True),
    "gcp.dns.managed_zone": NameStyle(letter_first=True),
    # Feature store (facts/name-rules.json): groups, online stores and views take [a-z0-9_] only;
    # offline tables the same form in BigQuery; Workbench instances are Compute Engine names.
    "gcp.vertex.feature_store_id": NameStyle(separator="_", letter_first=True),
    "gcp.bigquery.table": NameStyle(separator="_", letter_first=True),
    "gcp.workbench.instance": NameStyle(letter_first=True),
}

# Cloud Storage bucket naming: no "goog" prefix, no "google" (or close misspellings) anywhere.
# Source: cloud.google.com/storage/docs/buckets#naming ("also" in data/cloud-name-rules.json).
# Resource Manager restricts "google" in project ids too.
GOOGLE_LIKE = re.compile(r"g[o0]{2}g[l1]e")


def physical_name(namer: Namer, kind: str, *parts: str) -> str:
    return namer.name(kind, *parts)


def workflow_name(namer: Namer, model: str) -> str:
    """The Cloud Workflows workflow that trains (and registers) a model."""
    return physical_name(namer, "gcp.workflows.workflow", model)


def repository_id(namer: Namer, model: str) -> str:
    """The Artifact Registry repository a model's images are pushed to (training and serving)."""
    return physical_name(namer, "gcp.artifactregistry.repository", model)


def generation(settings: GcpSettings) -> tuple[str, ...]:
    """The name part of clouds.gcp.name_generation: none for the first, "g<N>" after it.

    GCP never frees a Cloud KMS key ring or key name, and holds a deleted custom role's id for
    up to 37 days (facts/reserved-names.json): a stack deployed again after `destroy
    --delete-data` takes a new generation of these names."""
    return () if settings.name_generation == 1 else (f"g{settings.name_generation}",)


def key_ring_name(namer: Namer, settings: GcpSettings) -> str:
    return physical_name(namer, "gcp.kms.key_ring", "keyring", *generation(settings))


def custom_role_id(namer: Namer, settings: GcpSettings, *words: str) -> str:
    """A project custom role's id (words joined with "_": role ids take no hyphens)."""
    return physical_name(namer, "gcp.iam.custom_role_id", *words, *generation(settings))


def group_account_id(namer: Namer, group: str) -> str:
    """The service account of a model group: trains its models and reads their data."""
    return physical_name(namer, "gcp.iam.service_account_id", "group", group)


def model_id(namer: Namer, model: str) -> str:
    """The model's id in the Vertex AI model registry (every version lands under it)."""
    return physical_name(namer, "gcp.vertex.model_id", model)


def endpoint_id(namer: Namer, model: str) -> str:
    """The Vertex AI endpoint serving a model: one per model, its name never changes."""
    return physical_name(namer, "gcp.vertex.endpoint_id_alpha", model)


def served_model_id(namer: Namer, model: str, digest: str) -> str:
    """The Vertex AI model a deployment serves: content-derived (`digest` hashes everything
    that forces a new deployment), so a new image or artifact uploads a new model before the
    old one is undeployed and deleted. Kept apart from the registry model (model_id)."""
    return physical_name(namer, "gcp.vertex.model_id", model, "serve", digest)


def capture_dataset_id(namer: Namer, model: str) -> str:
    """The BigQuery dataset holding a model's captured requests and responses."""
    return physical_name(namer, "gcp.bigquery.dataset", model, "capture")


def drift_workflow_name(namer: Namer, model: str) -> str:
    """The Cloud Workflows workflow that computes a model's drift score (monitoring.check() reports a
    model whose training workflow would take the same name)."""
    return physical_name(namer, "gcp.workflows.workflow", model, "drift")


def batch_workflow_name(namer: Namer, model: str) -> str:
    """The Cloud Workflows workflow that scores a model's batch input (batch.check() reports a model
    whose training workflow would take the same name)."""
    return physical_name(namer, "gcp.workflows.workflow", model, "batch")


def prep_workflow_name(namer: Namer, model: str) -> str:
    """The Cloud Workflows workflow that runs a model's data preparation job (data_prep.check()
    reports a model whose training or drift workflow would take the same name)."""
    return physical_name(namer, "gcp.workflows.workflow", model, "prep")


def topic_id(namer: Namer, model: str, purpose: str) -> str:
    """A model's Pub/Sub topic: "drift" (its drift alerts) or "new-data" (new objects)."""
    return physical_name(namer, "gcp.pubsub.topic", model, purpose)


def scheduler_job_name(namer: Namer, model: str, purpose: str) -> str:
    """A model's Cloud Scheduler job: "drift" (runs the drift workflow) or "retrain"."""
    return physical_name(namer, "gcp.cloudscheduler.job", model, purpose)


def trigger_name(namer: Namer, model: str, purpose: str) -> str:
    """A model's Eventarc trigger ("new-data" or "drift")."""
    return physical_name(namer, "gcp.eventarc.trigger", model, purpose)


def network_name(namer: Namer, part: str) -> str:
    """A resource of the stack's private network: "vpc", "subnet", "google-apis" (route), ..."""
    return physical_name(namer, "gcp.compute.resource", part)


def dns_zone_name(namer: Namer, domain: str) -> str:
    """The private Cloud DNS zone that answers for `domain` inside the stack's network."""
    return physical_name(namer, "gcp.dns.managed_zone", domain.strip(".").replace(".", "-"))


def invocation_url(*, project: str, region: str, endpoint: str) -> str:
    """The online prediction URL of a public (shared-DNS) Vertex AI endpoint."""
    return f"https://{region}-aiplatform.googleapis.com/v1/projects/{project}/locations/{region}/endpoints/{endpoint}:predict"


# --- container images --------------------------------------------------------------------------
# Where Vertex AI can pull from. Custom training: "push it to Artifact Registry or Docker Hub"
# (cloud.google.com/vertex-ai/docs/training/containers-overview); Container Registry paths
# (gcr.io) are served by Artifact Registry. Model upload (ModelContainerSpec.imageUri): "must
# identify an image in Artifact Registry or Container Registry" (aiplatform v1 reference).
ARTIFACT_REGISTRY = "artifact-registry"
CONTAINER_REGISTRY = "container-registry"
DOCKER_HUB = "docker-hub"
OTHER = "other"
TRAINING_SOURCES = (ARTIFACT_REGISTRY, CONTAINER_REGISTRY, DOCKER_HUB)
UPLOAD_SOURCES = (ARTIFACT_REGISTRY, CONTAINER_REGISTRY)
_AR_HOST = re.compile(r"^[a-z0-9-]+-docker\.pkg\.dev$")
_GCR_HOST = re.compile(r"^([a-z]+\.)?gcr\.io$")
_DOCKER_HUB_HOSTS = ("docker.io", "index.docker.io", "registry-1.docker.io")


def image_source(image: str) -> str:
    """Which registry an image reference points at (Docker's rule: a first path part with a
    '.' or ':' or equal to 'localhost' is a registry host; none means Docker Hub)."""
    first, _, rest = image.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        return DOCKER_HUB
    if _AR_HOST.match(first):
        return ARTIFACT_REGISTRY
    if _GCR_HOST.match(first):
        return CONTAINER_REGISTRY
    if first in _DOCKER_HUB_HOSTS:
        return DOCKER_HUB
    return OTHER


def mirror_target(image: str, *, region: str, project: str, repository: str) -> str:
    """Where `image` goes in the model's Artifact Registry repository: its last path part with
    its tag or digest, e.g. ghcr.io/acme/churn-train:1.4 -> REGION-docker.pkg.dev/PROJECT/REPO/churn-train:1.4."""
    last = image.rsplit("/", 1)[-1]
    return f"{region}-docker.pkg.dev/{project}/{repository}/{last}"


def pull_image(image: str, *, accepted: tuple[str, ...], region: str, project: str, repository: str) -> str:
    """The image Vertex AI will pull: the spec's own when Vertex accepts its registry, else
    its mirror in the model's repository (training.check() and serving.check() warn with the push target)."""
    if image_source(image) in accepted:
        return image
    return mirror_target(image, region=region, project=project, repository=repository)


def training_image(image: str, settings: GcpSettings, repository: str) -> str:
    """The image a model's custom job runs."""
    return pull_image(
        image, accepted=TRAINING_SOURCES, region=settings.region, project=settings.project, repository=repository
    )


def model_upload_image(image: str, settings: GcpSettings, repository: str) -> str:
    """The serving image a model version is uploaded with."""
    return pull_image(
        image, accepted=UPLOAD_SOURCES, region=settings.region, project=settings.project, repository=repository
    )


def image_findings(
    image: str, path: tuple, *, accepted: tuple[str, ...], use: str, sources: str, settings: GcpSettings, repository: str
) -> list[Problem]:
    """A warning with the exact push target when Vertex AI cannot pull `image` where it is."""
    if image_source(image) in accepted:
        return []
    target = mirror_target(image, region=settings.region, project=settings.project, repository=repository)
    if "@" in target:
        # docker pull/tag/push may change a multi-platform image's digest: copy it as it is.
        hint = f"after `up`, copy it there with its digest: crane copy {image} {target.split('@')[0]}:<tag>"
    else:
        hint = f"after `up`, push it there: docker pull {image} && docker tag {image} {target} && docker push {target}"
    return [
        finding(
            path,
            f"Vertex AI {use} pulls images only from {sources}: on GCP this model uses {target} "
            f"(the stack's Artifact Registry repository {repository}), which must hold a copy of the image",
            hint=hint,
            value=image,
            severity="warning",
        )
    ]
