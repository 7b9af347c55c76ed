"""GCP: provider setup and the facts validate needs (no SDK import at module level)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

from mlops_infra.backends.base import Backend, Gap, Singleton
from mlops_infra.backends.gcp import catalog, fleet, overrides
from mlops_infra.backends.gcp.naming import GOOGLE_LIKE, STYLES
from mlops_infra.backends.gcp.serving_endpoints import SCALE_IN_WINDOW_SECONDS, SCALE_OUT_SECONDS
from mlops_infra.backends.gcp.settings import GcpSettings
from mlops_infra.plan import UNKNOWN
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding

STORAGE_AGENT_INVOKE = "gcp:storage/getProjectServiceAccount:getProjectServiceAccount"
# Cloud Storage's service agent is service-<PROJECT_NUMBER>@gs-project-accounts.iam.gserviceaccount.com;
# the project number is only known to the cloud.
STORAGE_AGENT_PLACEHOLDER = f"service-{UNKNOWN}@gs-project-accounts.iam.gserviceaccount.com"
BIGQUERY_AGENT_INVOKE = "gcp:bigquery/getDefaultServiceAccount:getDefaultServiceAccount"
# BigQuery's encryption service account: bq-<PROJECT_NUMBER>@bigquery-encryption.iam.gserviceaccount.com.
BIGQUERY_AGENT_PLACEHOLDER = f"bq-{UNKNOWN}@bigquery-encryption.iam.gserviceaccount.com"

BIGQUERY_TABLE = "gcp:bigquery/table:Table"
PROJECT_INVOKE = "gcp:organizations/getProject:getProject"

# Objects in ARCHIVE are billed for at least 365 days (cloud.google.com/storage/docs/storage-classes).
ARCHIVE_MINIMUM_DAYS = 365


_COOLDOWN = (
    "has no effect on GCP: Vertex AI resizes every {out} s from the last {window} minutes of load (it scales out "
    "within {out} s and in only when the whole window allows it); no setting changes that"
).format(out=SCALE_OUT_SECONDS, window=SCALE_IN_WINDOW_SECONDS // 60)
_COOLDOWN_HINT = "remove it, or keep it for the clouds where it sets the cool-down"

# Vertex AI model monitoring (aiplatform v1 ModelMonitoringObjectiveConfig; the objective types in
# ModelDeploymentMonitoringObjectiveType; discovery document revision 20261106, read 2026-12-06).
_MONITORING_V1 = (
    "Vertex AI model monitoring (v1) has four objectives only: raw-feature skew and drift, feature-attribution "
    "skew and drift"
)

# What GCP cannot do as the spec says (Backend.gaps): validate reports each where the spec asks
# for it, and the README's table of cloud gaps is generated from this.
GAPS: dict[str, Gap] = {
    "tracking.size": Gap(
        "tracking.size has no effect on GCP: the Vertex AI metadata store and TensorBoard are serverless",
        hint="remove it, or keep it for the clouds where it sizes the tracking server",
        severity="warning",
    ),
    "models[].training.run_on_deploy": Gap(
        "run_on_deploy has no effect on GCP: Pulumi has no resource that starts a Workflows execution or a Vertex "
        "AI custom job once, so deploying declares the training workflow only",
        hint="start the run after `up` with: gcloud workflows run WORKFLOW",
        severity="warning",
    ),
    "models[].registry (without training)": Gap(
        "on GCP models enter the Vertex AI model registry through their training workflow; without training "
        "nothing registers this model (its endpoint serves serving.model_uri, uploaded as a model of its own)",
        hint="add training: to this model, or remove the registry block",
        severity="warning",
    ),
    "models[].serving.model_uri (outside Cloud Storage)": Gap(
        "Vertex AI reads model artifacts from Cloud Storage only (gs://BUCKET/PATH, or a path in the stack's "
        "artifact bucket)",
        hint="copy the artifact to Cloud Storage and point model_uri there",
    ),
    "models[].serving.data_capture.capture_responses": Gap(
        "Vertex AI request-response logging always records responses with the requests; capturing requests only "
        "is not possible on GCP",
        hint="remove data_capture, or accept capture_responses: true",
    ),
    "models[].serving.autoscaling.scale_in_cooldown": Gap(
        f"scale_in_cooldown {_COOLDOWN}", hint=_COOLDOWN_HINT, severity="warning"
    ),
    "models[].serving.autoscaling.scale_out_cooldown": Gap(
        f"scale_out_cooldown {_COOLDOWN}", hint=_COOLDOWN_HINT, severity="warning"
    ),
    "governance.network: private (VPC Service Controls)": Gap(
        "VPC Service Controls are a prerequisite mlops-infra cannot create on GCP: a service perimeter belongs to the "
        "organization's access policy, outside a project-level stack; without one, credentials used outside the "
        "private network still reach the project's buckets, keys and Vertex AI over Google's public endpoints",
        hint="put the project in a perimeter restricting the services the stack uses (docs/networking-gcp.md), then "
        "name it in clouds.gcp.network.service_perimeter",
        severity="warning",
    ),
    "clouds.gcp.network.network (another project's network)": Gap(
        "a network of another project (a Shared VPC host) is not supported on GCP: Vertex AI custom jobs name their "
        "peered network by its project's number, which the stack knows only for its own project",
        hint="use a network of the stack's project (clouds.gcp.project)",
    ),
    "models[].serving.rollout.rollback_on_alarms": Gap(
        "Vertex AI has no automatic rollback on alarms: on GCP a canary or linear rollout shifts traffic between "
        "the old and the new deployed model and goes back to the old split only when a step itself fails; nothing "
        "watches the endpoint's alarms meanwhile",
        hint="watch the alarms during the rollout and roll back by hand with gcloud ai endpoints update "
        "--traffic-split; set rollback_on_alarms: false to acknowledge",
        severity="warning",
    ),
    # Serving modes, shadow and auth (read 2026-12-06).
    "models[].serving.mode.serverless": Gap(
        "Vertex AI online prediction runs every deployed model on dedicated nodes, at least one per deployed "
        "model (dedicatedResources.minReplicaCount >= 1; scale-to-zero is a Preview feature), billed per node-hour "
        "whether or not requests arrive: there is no per-invocation endpoint "
        "(cloud.google.com/vertex-ai/docs/predictions/autoscaling)",
        hint="serve realtime with autoscaling (min_replicas: 1), or mode_elsewhere: realtime",
    ),
    "models[].serving.mode.async": Gap(
        "Vertex AI endpoints answer synchronously only; its asynchronous form is batch prediction over objects in "
        "Cloud Storage, not a queue of requests in front of an endpoint "
        "(cloud.google.com/vertex-ai/docs/predictions/get-batch-predictions)",
        hint="score stored requests with models[].batch, or serve realtime (mode_elsewhere: realtime)",
    ),
    "models[].serving.shadow": Gap(
        "Vertex AI endpoints have no shadow (mirrored) traffic: an endpoint's trafficSplit routes each request to "
        "exactly one deployed model and returns that model's response, so a challenger there answers real clients "
        "(aiplatform v1 Endpoint.trafficSplit). What GCP can do instead: a canary (serving.rollout: {mode: canary}), "
        "whose responses are returned; or scoring the captured requests with the challenger offline "
        "(models[].batch with its model_uri); or calling a second endpoint from the client",
        hint="remove shadow, and use rollout: {mode: canary, canary_percent: N} or a batch comparison",
    ),
    "models[].serving.auth.key": Gap(
        "Vertex AI endpoints authenticate callers with Google identities only (an OAuth 2.0 access token of a "
        "principal holding aiplatform.endpoints.predict); Google Cloud API keys work for Gemini on Vertex AI, "
        "not for endpoints of custom models (cloud.google.com/vertex-ai/docs/general/iam-permissions, "
        "cloud.google.com/vertex-ai/generative-ai/docs/start/api-keys)",
        hint="use auth: iam and give each client a service account with roles/aiplatform.user on the endpoint's "
        "project (or a narrower custom role with aiplatform.endpoints.predict)",
    ),
    "models[].batch (private network)": Gap(
        "Vertex AI batch prediction jobs cannot join the stack's private network: a BatchPredictionJob has no "
        "network field (aiplatform v1, unlike custom jobs), so the job runs on Google's managed network; only a "
        "VPC Service Controls perimeter keeps its data inside",
        hint="put the project in a service perimeter (docs/networking-gcp.md), which covers batch prediction",
        severity="warning",
    ),
    "feature_store.groups[].source": Gap(
        "on GCP a feature group's offline store is a BigQuery table the stack creates (Vertex AI Feature Store reads "
        "BigQuery only); mlops-infra does not load it from a bucket prefix",
        hint="remove source and write the group's rows to its table (bq load, or a data_prep job), whose name "
        "`plan` shows",
    ),
    "models[].monitoring.bias": Gap(
        _MONITORING_V1 + "; none measures bias between groups of a facet, so on GCP nothing is deployed for it",
        hint="compute bias metrics in a data_prep or evaluation job, or monitor bias on a cloud that offers it",
        severity="warning",
    ),
    "models[].monitoring.model_quality": Gap(
        _MONITORING_V1 + "; none joins ground truth to predictions, so on GCP nothing is deployed for it",
        hint="score the captured requests against the ground truth in a scheduled data_prep job, or monitor "
        "model quality on a cloud that offers it",
        severity="warning",
    ),
}


class GcpBackend(Backend):
    name = "gcp"
    display_name = "GCP"
    sdk_package = "pulumi_gcp"
    settings_model = GcpSettings
    naming_styles = STYLES
    settings_example = "clouds: {gcp: {project: acme-ml-dev, region: us-central1}}"
    # APIs, their service agents and the agents' key grants: what deploying a model needs in
    # place. Grants that grow with the models (group identities' project, folder and bucket
    # grants) are none of these: each acting resource waits for its own grants, so every
    # deployment's dependency list stays bounded whatever the fleet's size.
    prerequisite_types = frozenset(
        {
            "gcp:projects/service:Service",
            "gcp:projects/serviceIdentity:ServiceIdentity",
            "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember",
        }
    )
    unsupported: ClassVar[dict[str, str]] = {}  # every stage deploys on GCP
    gaps: ClassVar[dict[str, Gap]] = GAPS

    # A default destroy keeps the data (buckets with their versioning, encryption, lifecycle and
    # public access prevention, captured-request datasets, image repositories, experiments), the
    # key and its service agents' grants (without them kept data could not be read), the audit
    # configuration, and the custom roles, whose ids GCP would hold for up to 37 days.
    kept_types = frozenset(
        {
            "gcp:storage/bucket:Bucket",
            "gcp:bigquery/dataset:Dataset",
            "gcp:artifactregistry/repository:Repository",
            "gcp:vertex/aiMetadataStore:AiMetadataStore",
            "gcp:vertex/aiTensorboard:AiTensorboard",
            "gcp:kms/keyRing:KeyRing",
            "gcp:kms/cryptoKey:CryptoKey",
            "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember",
            "gcp:projects/iAMAuditConfig:IAMAuditConfig",
            "gcp:projects/iAMCustomRole:IAMCustomRole",
            "gcp:workbench/instance:Instance",
        }
    )
    # Repositories need no force input: deleting one deletes its images (facts/reserved-names.json).
    force_delete_inputs = {
        "gcp:storage/bucket:Bucket": "forceDestroy",
        "gcp:bigquery/dataset:Dataset": "deleteContentsOnDestroy",
    }
    # Names unique in the project (or region, or globally for buckets). Managed folder names are
    # unique within their bucket and feature names within their feature group, so a comparison
    # pairs them with it ("bucket" and "featureGroup" are listed too).
    physical_name_inputs = frozenset(
        {"name", "bucket", "featureGroup", "accountId", "roleId", "repositoryId", "datasetId", "modelId"}
    )

    def keeps(self, resource_type: str, inputs: Any) -> bool:
        """kept_types, and the feature store's offline tables (BigQuery tables holding data; the
        drift stage's external tables over baseline objects hold none and go)."""
        if resource_type == BIGQUERY_TABLE:
            return "externalDataConfiguration" not in inputs
        return super().keeps(resource_type, inputs)

    def singletons(self, spec: Any, settings: GcpSettings) -> list[Singleton]:
        return fleet.singletons(spec, settings)

    def name_scope(self, settings: GcpSettings) -> str:
        # Bucket names are global: the project id keeps two stacks in two projects apart.
        return settings.project

    def create_provider(self, spec: Any, settings: GcpSettings) -> Any:
        import pulumi
        import pulumi_gcp as gcp

        # No default_labels: provider-level labels never show in plans; every taggable
        # resource gets ctx.tags() explicitly instead.
        return gcp.Provider("gcp", project=settings.project, region=settings.region, opts=pulumi.ResourceOptions())

    def mock_call(self, token: str, args: dict[str, Any]) -> dict[str, Any]:
        if token == STORAGE_AGENT_INVOKE:
            return {
                "emailAddress": STORAGE_AGENT_PLACEHOLDER,
                "member": f"serviceAccount:{STORAGE_AGENT_PLACEHOLDER}",
                "id": UNKNOWN,
                "project": args.get("project") or UNKNOWN,
            }
        if token == PROJECT_INVOKE:
            # The project number (Compute Engine's agent email holds it) is only known to the cloud.
            return {"number": UNKNOWN, "projectId": args.get("projectId") or UNKNOWN, "id": UNKNOWN}
        if token == BIGQUERY_AGENT_INVOKE:
            return {
                "email": BIGQUERY_AGENT_PLACEHOLDER,
                "member": f"serviceAccount:{BIGQUERY_AGENT_PLACEHOLDER}",
                "id": UNKNOWN,
                "project": args.get("project") or UNKNOWN,
            }
        return {}

    # --- validation ---------------------------------------------------------
    endpoint_service = "Vertex AI online endpoints"
    scale_to_zero_hint = "set min_replicas: 1 (Vertex AI scale-to-zero is a preview feature mlops-infra does not use)"
    archive_tier = "ARCHIVE storage"
    archive_minimum_days = ARCHIVE_MINIMUM_DAYS
    storage_service = "GCS"

    def override_field(self, purpose: str) -> str:
        return f"{purpose}_machine_type"

    def resolve_compute(self, compute: Any, purpose: str, settings: GcpSettings) -> Any:
        return catalog.machine_spec(compute, purpose, settings)

    def check_cloud(self, spec: Any, settings: GcpSettings) -> list[Problem]:
        """The clouds.gcp block itself; each stage's own checks are in its module (Backend.check runs them)."""
        problems = overrides.override_problems(spec, settings)
        if GOOGLE_LIKE.search(settings.project):
            problems.append(
                finding(
                    ("clouds", "gcp", "project"),
                    f"GCP project ids cannot contain 'google' ({settings.project!r})",
                    hint="use the id of an existing project (Resource Manager restricts 'google' in project ids)",
                    value=settings.project,
                )
            )
        return problems

    def gap(self, feature: str, path: tuple, *, value: Any = None, hint: str | None = None) -> Problem:
        """Backend.gap, with a hint naming this spec's own resources where one helps (a command)."""
        problem = super().gap(feature, path, value=value)
        return replace(problem, hint=hint) if hint else problem
