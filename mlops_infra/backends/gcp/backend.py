"""GCP: provider setup and the facts validate needs (no SDK import at module level)."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from mlops_infra.backends import checks
from mlops_infra.backends.base import Backend, Singleton
from mlops_infra.backends.gcp import automation, catalog, endpoints, fleet
from mlops_infra.backends.gcp.naming import (
    STYLES,
    TRAINING_SOURCES,
    UPLOAD_SOURCES,
    drift_workflow_name,
    endpoint_id,
    image_source,
    mirror_target,
    model_id,
    repository_id,
    workflow_name,
)
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

# Cloud Storage bucket naming: no "goog" prefix, no "google" (or close misspellings) anywhere.
# Source: cloud.google.com/storage/docs/buckets#naming ("also" in data/cloud-name-rules.json).
_GOOGLE_LIKE = re.compile(r"g[o0]{2}g[l1]e")
# Objects in ARCHIVE are billed for at least 365 days (cloud.google.com/storage/docs/storage-classes).
ARCHIVE_MINIMUM_DAYS = 365
# Container environment names the training workflow sets itself (backends/gcp/training.py).
RESERVED_ENV_PREFIX = "MLOPS_"


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
    unsupported: ClassVar[dict[str, str]] = {}

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
        }
    )
    # Repositories need no force input: deleting one deletes its images (facts/reserved-names.json).
    force_delete_inputs = {
        "gcp:storage/bucket:Bucket": "forceDestroy",
        "gcp:bigquery/dataset:Dataset": "deleteContentsOnDestroy",
    }
    # Names unique in the project (or region, or globally for buckets). Managed folder names are
    # unique within their bucket, so a comparison pairs them with it ("bucket" is listed too).
    physical_name_inputs = frozenset(
        {"name", "bucket", "accountId", "roleId", "repositoryId", "datasetId", "modelId"}
    )

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
        problems = self._check_overrides(spec, settings)
        problems += self._check_bucket_names(spec)
        if _GOOGLE_LIKE.search(settings.project):
            problems.append(
                finding(
                    ("clouds", "gcp", "project"),
                    f"GCP project ids cannot contain 'google' ({settings.project!r})",
                    hint="use the id of an existing project (Resource Manager restricts 'google' in project ids)",
                    value=settings.project,
                )
            )
        serves = any(m.serving is not None for m in spec.models)
        problems += checks.private_network_has_no_effect(
            spec,
            message=(
                "network: private on GCP makes the Vertex AI endpoints private (Private Service Connect, this "
                "project allow-listed) but nothing else yet: buckets, keys and the Vertex AI APIs are reached over "
                "Google's public TLS endpoints, guarded by IAM, and training jobs run without VPC peering"
                if serves
                else "network: private has no effect on GCP yet: buckets, keys and Vertex AI are reached over "
                "Google's public TLS endpoints, guarded by IAM, and training jobs run without VPC peering"
            ),
            hint=(
                "to call an endpoint, create a Private Service Connect forwarding rule in your VPC for its service "
                "attachment (gcloud ai endpoints describe ENDPOINT shows it); VPC Service Controls are not configured"
                if serves
                else "Private Service Connect applies to serving endpoints; VPC Service Controls are not configured"
            ),
        )
        problems += self._check_ml(spec, settings)
        problems += self._check_serving(spec, settings)
        problems += self._check_automation(spec, settings)
        namer = self.namer(spec, settings)
        problems += fleet.access_problems(spec, settings, namer)
        problems += fleet.external_problems(spec, settings)
        problems += fleet.reserved_name_problems(spec, settings, namer)
        return problems

    def _check_automation(self, spec: Any, settings: GcpSettings) -> list[Problem]:
        """Monitoring and retraining facts of GCP, knowable offline."""
        problems: list[Problem] = []
        namer = self.namer(spec, settings)
        index = {m.name: i for i, m in enumerate(spec.models)}
        # Workflow ids are unique per project and region: a drift workflow may not take the name
        # of another model's training workflow (model "x" drifts in "P-E-x-drift", which is the
        # training workflow of a model called "x-drift").
        trained = {workflow_name(namer, m.name): m.name for m in spec.models if m.training is not None}
        for model in automation.drift_models(spec):
            other = trained.get(drift_workflow_name(namer, model.name))
            if other is not None:
                problems.append(
                    finding(
                        ("models", index[other], "name"),
                        f"on GCP the training workflow of model {other!r} and the drift workflow of model "
                        f"{model.name!r} would both be {drift_workflow_name(namer, model.name)!r}",
                        hint="rename one of the two models",
                        value=other,
                    )
                )
        for model in automation.retraining_models(spec):
            i = index[model.name]
            retraining = model.retraining
            if model.registry is not None and model.serving is None:
                problems.append(
                    finding(
                        ("models", i, "retraining"),
                        "on GCP this model's training workflow registers each run with the serving image it is "
                        "started with (the model has no serving section), and schedules and triggers start it "
                        "without one: every retraining run would fail",
                        hint="add serving: with its image, or remove the registry block",
                    )
                )
            if retraining.timezone in automation.NOT_TZ_DATABASE:
                problems.append(
                    finding(
                        ("models", i, "retraining", "timezone"),
                        f"{retraining.timezone!r} is this machine's zone file, not a tz database name Cloud Scheduler takes",
                        hint="name the zone, e.g. Europe/Amsterdam or UTC",
                        value=retraining.timezone,
                    )
                )
        return problems

    def _check_serving(self, spec: Any, settings: GcpSettings) -> list[Problem]:
        """What Vertex AI endpoints cannot do as the spec says, knowable offline."""
        problems: list[Problem] = []
        namer = self.namer(spec, settings)
        artifacts = namer.name("gcp.storage.bucket", "artifacts")
        serving_email = f"{namer.name('gcp.iam.service_account_id', 'serving')}@{settings.project}.iam.gserviceaccount.com"
        for i, model in enumerate(spec.models):
            serving = model.serving
            if serving is None:
                continue
            base = ("models", i, "serving")
            problems += _image_findings(
                serving.image, (*base, "image"), accepted=UPLOAD_SOURCES, use="model upload",
                sources="Artifact Registry or Container Registry", settings=settings,
                repository=repository_id(namer, model.name),
            )
            source = endpoints.model_source(model, artifacts_bucket=artifacts)
            if source.kind == endpoints.UPLOAD and model.training is not None and model.registry is not None:
                problems.append(
                    finding(
                        (*base, "model_uri"),
                        f"the endpoint serves this artifact, not the versions the training workflow registers in "
                        f"{model_id(namer, model.name)}: registry and endpoint would disagree on what is served",
                        hint="remove model_uri to serve the registry version called "
                        f"{endpoints.SERVING_ALIAS!r}, or remove the registry block",
                        value=serving.model_uri,
                        severity="warning",
                    )
                )
            if source.kind == endpoints.UNSUPPORTED:
                problems.append(
                    finding(
                        (*base, "model_uri"),
                        "Vertex AI reads model artifacts from Cloud Storage only (gs://BUCKET/PATH, or a path in the "
                        "stack's artifact bucket)",
                        hint="copy the artifact to Cloud Storage and point model_uri there",
                        value=serving.model_uri,
                    )
                )
            elif source.bucket is not None:
                problems.append(
                    finding(
                        (*base, "model_uri"),
                        f"the model is uploaded from gs://{source.bucket}, outside the stack's artifact bucket: "
                        "mlops-infra grants the serving identity no access there",
                        hint=f"grant roles/storage.objectViewer on gs://{source.bucket} (or its prefix) to "
                        f"serviceAccount:{serving_email}, or use a path in the artifact bucket gs://{artifacts}",
                        value=serving.model_uri,
                        severity="warning",
                    )
                )
            elif source.kind == endpoints.MISSING and model.training is not None:
                problems.append(
                    finding(
                        base,
                        "on GCP a trained model reaches its endpoint through the Vertex AI model registry (each "
                        "training run writes its own folder, so there is no single artifact to deploy): this model "
                        "has training but neither registry nor serving.model_uri",
                        hint="add registry: {approval: automatic} (every successful run is deployed) or "
                        "{approval: manual}, or set serving.model_uri to the artifact to serve",
                    )
                )
            elif source.kind == endpoints.REGISTRY and model.registry.approval == "manual":
                problems.append(
                    finding(
                        (*base[:2], "registry", "approval"),
                        f"the endpoint serves the version of {model_id(namer, model.name)} called "
                        f"{endpoints.SERVING_ALIAS!r}: with manual approval it stays empty until a person approves a "
                        "trained version, and the next `up` deploys it",
                        hint=f"approve with: gcloud ai models add-version-aliases {model_id(namer, model.name)}@VERSION "
                        f"--version-aliases={endpoints.SERVING_ALIAS} --region={settings.region} --project={settings.project}",
                        value="manual",
                        severity="warning",
                    )
                )
            capture = serving.data_capture
            if capture is not None and not capture.capture_responses:
                problems.append(
                    finding(
                        (*base, "data_capture", "capture_responses"),
                        "Vertex AI request-response logging always records responses with the requests; "
                        "capturing requests only is not possible on GCP",
                        hint="remove data_capture, or accept capture_responses: true",
                        value=False,
                    )
                )
            problems += _serving_numbers(serving, base)
            problems += _rollout_findings(serving, base, settings=settings, endpoint=endpoint_id(namer, model.name))
        return problems

    def _check_ml(self, spec: Any, settings: GcpSettings) -> list[Problem]:
        """Training, registry and tracking settings GCP handles differently (all knowable offline)."""
        problems: list[Problem] = []
        namer = self.namer(spec, settings)
        for i, model in enumerate(spec.models):
            training, base = model.training, ("models", i)
            repository = repository_id(namer, model.name)
            if training is not None:
                problems += _image_findings(
                    training.image, (*base, "training", "image"), accepted=TRAINING_SOURCES, use="custom training",
                    sources="Artifact Registry, Container Registry or Docker Hub", settings=settings, repository=repository,
                )
                if training.run_on_deploy:
                    problems.append(
                        finding(
                            (*base, "training", "run_on_deploy"),
                            "run_on_deploy has no effect on GCP: Pulumi has no resource that starts a Workflows "
                            "execution or a Vertex AI custom job once, so deploying declares the training workflow only",
                            hint=f"start the run after `up` with: gcloud workflows run {workflow_name(namer, model.name)} "
                            f"--project={settings.project} --location={settings.region}",
                            value=True,
                            severity="warning",
                        )
                    )
                reserved = sorted(k for k in training.environment if k.startswith(RESERVED_ENV_PREFIX))
                for name in reserved:
                    problems.append(
                        finding(
                            (*base, "training", "environment", name),
                            f"{RESERVED_ENV_PREFIX}* variables are set by mlops-infra on GCP; where it sets {name} too, "
                            "its value replaces the spec's",
                            hint="rename it (mlops-infra sets MLOPS_MODEL, MLOPS_OUTPUT_URI, MLOPS_MODEL_DIR, "
                            "MLOPS_CHECKPOINT_URI, MLOPS_INPUTS, MLOPS_INPUT_<BUCKET> and MLOPS_TRACKING_URI)",
                            value=name,
                            severity="warning",
                        )
                    )
            if model.registry is None:
                continue
            if training is None:
                problems.append(
                    finding(
                        (*base, "registry"),
                        "on GCP models enter the Vertex AI model registry through their training workflow; without "
                        "training nothing registers this model (its endpoint serves serving.model_uri, uploaded as a "
                        "model of its own)",
                        hint="add training: to this model, or remove the registry block",
                        severity="warning",
                    )
                )
            elif model.serving is None:
                problems.append(
                    finding(
                        (*base, "registry"),
                        "a Vertex AI model version needs a serving container, and this model has no serving section: "
                        "each workflow run must be started with the argument {\"serving_image\": \"...\"}",
                        hint=f"add serving: with its image, or start runs with: gcloud workflows run "
                        f"{workflow_name(namer, model.name)} --data='{{\"serving_image\": \"IMAGE\"}}'",
                        severity="warning",
                    )
                )
        if spec.tracking is not None and spec.tracking.enabled and spec.tracking.size != "small":
            problems.append(
                finding(
                    ("tracking", "size"),
                    "tracking.size has no effect on GCP: the Vertex AI metadata store and TensorBoard are serverless",
                    hint="remove it, or keep it for the clouds where it sizes the tracking server",
                    value=spec.tracking.size,
                    severity="warning",
                )
            )
        return problems

    def _check_overrides(self, spec: Any, settings: GcpSettings) -> list[Problem]:
        problems: list[Problem] = []
        models = {m.name: m for m in spec.models}
        for name, override in settings.overrides.models.items():
            base = ("clouds", "gcp", "overrides", "models", name)
            for purpose in ("training", "serving"):
                problems += self._check_override(override, purpose, base, models.get(name))
        return problems

    def _check_override(self, override: Any, purpose: str, base: tuple, model: Any) -> list[Problem]:
        problems: list[Problem] = []
        machine = getattr(override, f"{purpose}_machine_type")
        accelerator = getattr(override, f"{purpose}_accelerator_type")
        count = getattr(override, f"{purpose}_accelerator_count")
        m_path = (*base, f"{purpose}_machine_type")
        a_path = (*base, f"{purpose}_accelerator_type")
        c_path = (*base, f"{purpose}_accelerator_count")
        valid = True
        if machine is not None and (message := catalog.check_override(machine, purpose)):
            problems.append(finding(m_path, message, hint=_list_hint(purpose), value=machine))
            valid = False
        if accelerator is not None and (message := catalog.check_accelerator(accelerator)):
            problems.append(
                finding(a_path, message, hint=f"one of: {', '.join(catalog.accelerator_types())}", value=accelerator)
            )
            valid = False
        if machine is None and (accelerator is not None or count is not None):
            path = a_path if accelerator is not None else c_path
            problems.append(
                finding(
                    path,
                    f"an accelerator override needs {purpose}_machine_type too",
                    hint="GPUs belong to a machine type: name both (e.g. n1-standard-8 with NVIDIA_TESLA_T4, or g2-standard-8)",
                    value=accelerator if accelerator is not None else count,
                )
            )
            valid = False
        if valid and machine is not None and (message := catalog.check_pairing(machine, accelerator, count)):
            problems.append(
                finding(
                    a_path if accelerator is not None else c_path if count is not None else m_path,
                    message,
                    hint="a2 machines come with A100s, g2 with L4s, a3 with H100s; n1 takes T4, V100, P100 or P4",
                )
            )
            valid = False
        section = getattr(model, purpose, None) if model is not None else None
        if model is not None and machine is not None and section is None:
            problems.append(
                finding(
                    m_path,
                    f"model {model.name!r} has no {purpose} section: this override has no effect",
                    hint=f"remove it, or add {purpose} to the model",
                    value=machine,
                    severity="warning",
                )
            )
        elif valid and section is not None and machine is not None:
            got = catalog.shape(catalog.override_spec(machine, accelerator, count))
            need = section.compute.requirements
            short = [
                f"{label} {have:g} < {want}"
                for label, have, want in (
                    ("vCPUs", got.cpus, need["cpus"]),
                    ("memory GiB", got.memory_gib, need["memory_gib"]),
                    ("GPUs", got.gpus, need["gpus"]),
                )
                if have < want
            ]
            if short:
                problems.append(
                    finding(
                        m_path,
                        f"override {machine} provides less than the model's {purpose} compute "
                        f"({section.compute.label}): {', '.join(short)}",
                        hint="the override wins; raise it or lower the compute requirement",
                        value=machine,
                        severity="warning",
                    )
                )
        return problems

    def _check_bucket_names(self, spec: Any) -> list[Problem]:
        problems: list[Problem] = []
        words: list[tuple[tuple, str]] = [(("project",), spec.project), (("environment",), spec.environment)]
        words += [(("storage", "buckets", i, "name"), b.name) for i, b in enumerate(spec.storage.buckets)]
        for path, word in words:
            if _GOOGLE_LIKE.search(word) or (path == ("project",) and word.startswith("goog")):
                problems.append(
                    finding(
                        path,
                        f"{word!r} would put 'goog'/'google' into Cloud Storage bucket names, which GCS rejects",
                        hint="bucket names may not start with 'goog' or contain 'google' or close misspellings",
                        value=word,
                    )
                )
        return problems

def _image_findings(
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


def _serving_numbers(serving: Any, base: tuple) -> list[Problem]:
    """Whole percentages (Vertex AI autoscaling targets are integers; traffic shares are whole in the
    neutral spec) and the cool-downs Vertex AI does not let anyone set."""
    problems: list[Problem] = []
    numbers = (
        (("autoscaling", "target_cpu_percent"), serving.autoscaling.target_cpu_percent, "autoscaling targets"),
    )
    for path, value, what in numbers:
        if not endpoints.whole_percent(value):
            problems.append(
                finding(
                    (*base, *path),
                    f"Vertex AI {what} are whole percentages, not {value:g}",
                    hint=f"use {int(value)} or {int(value) + 1}",
                    value=value,
                )
            )
    autoscaling = serving.autoscaling
    for field in ("scale_in_cooldown", "scale_out_cooldown"):
        if field in autoscaling.model_fields_set:
            problems.append(
                finding(
                    (*base, "autoscaling", field),
                    f"{field} has no effect on GCP: Vertex AI resizes every {endpoints.SCALE_OUT_SECONDS} s from the "
                    f"last {endpoints.SCALE_IN_WINDOW_SECONDS // 60} minutes of load (it scales out within "
                    f"{endpoints.SCALE_OUT_SECONDS} s and in only when the whole window allows it); no setting changes that",
                    hint="remove it, or keep it for the clouds where it sets the cool-down",
                    value=getattr(autoscaling, field),
                    severity="warning",
                )
            )
    return problems


def _rollout_findings(serving: Any, base: tuple, *, settings: GcpSettings, endpoint: str) -> list[Problem]:
    rollout = serving.rollout
    if rollout.mode == "all-at-once" or not rollout.rollback_on_alarms:
        return []
    steps = f"{int(rollout.canary_percent)}% then 100%" if rollout.mode == "canary" else f"+{int(rollout.step_percent)}% per step"
    minutes = endpoints.rollout_duration(rollout) / 60
    return [
        finding(
            (*base, "rollout", "rollback_on_alarms"),
            f"Vertex AI has no automatic rollback on alarms: on GCP a {rollout.mode} rollout shifts traffic between "
            f"the old and the new deployed model ({steps}, {rollout.wait} s apart, about {minutes:g} min of `up`) and "
            "goes back to the old split only when a step itself fails; nothing watches the endpoint's alarms meanwhile",
            hint="watch the alarms during the rollout and roll back by hand with: gcloud ai endpoints update "
            f"{endpoint} --region={settings.region} --traffic-split=OLD_DEPLOYED_MODEL_ID=100; "
            "set rollback_on_alarms: false to acknowledge",
            value=True,
            severity="warning",
        )
    ]


def _list_hint(purpose: str) -> str:
    names = catalog.machine_types(purpose)
    return f"Vertex AI {purpose} accepts {len(names)} machine types, e.g. {', '.join(names[:4])}, ... (see backends/gcp/catalog.py)"
