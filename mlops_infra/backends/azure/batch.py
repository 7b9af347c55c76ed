"""Azure batch scoring: per model an Azure ML batch endpoint, its deployment and a schedule.

Per model with a `batch` block, in the stack's Azure ML workspace:
- a compute cluster (AmlCompute) of the catalog's "processing" VM size for batch.compute, from 0
  to instance_count nodes, running as the model's group identity (never shared across groups),
  no SSH, no node public IP when governance.network is private;
- a batch endpoint (Microsoft Entra token auth: the only kind batch endpoints take) and one
  batch deployment on it: the model version (below) on that cluster with instance_count
  instances, predictions appended to one file per run, mini-batch retries bounded by max_runtime;
- the model version it scores: batch.model_uri, or the model's training output under
  models/<model>/ of the artifact bucket (what the registry's versions hold on Azure: there is
  no approval gate, see the registry gap), registered in the registry's model container (or a
  container of its own without a registry) as an MLflow model: Azure ML batch deployments run
  MLflow models without a scoring script or environment (a warning says so at validate);
- the schedule: a Logic App (Consumption) whose Recurrence trigger fires at the spec's cron in
  its time zone (batch_schedule.py) and POSTs a job to the endpoint's invocation URI as the
  model's group identity (templates/azure/batch_workflow.json.j2): the job reads batch.input and
  writes to batch.output through a datastore of the output bucket (identity-based, no stored
  credentials), which batch endpoints require for outputs;
- failures reach the monitoring stage's action group: a metric alert on the workflow's failed runs
  (the job could not be created) and one on the workspace's Failed Runs for the endpoint's jobs
  (dimension ExperimentName: the endpoint's name, under which Azure ML files its batch jobs).

Why a Logic App and not an Azure ML schedule: the schedule action that invokes batch endpoints
(InvokeBatchEndpoint) has an undocumented definition ("TBD" in the REST API, 2025-12-01), while
invoking an endpoint over HTTP with a Microsoft Entra token is documented ("Authorization on
batch endpoints", Microsoft Learn, read 2026-12-06).

What Azure cannot do as the spec asks (validate, gaps.py): on_new_data (no event trigger is built
for batch), crons restricted by day of month or month, a schedule on a private network (the
consumption Logic App cannot reach the workspace's private endpoint), a run-wide time limit.

Grants: a custom role with exactly the actions Azure documents for invoking batch endpoints
("Configure RBAC for batch endpoints invoke"), assignable to and assigned on the stack's
workspace only, to each model group identity that scores in batch (stack-wide: the shared stack of
a split spec). The group identity already reads its batch input and writes its batch output
prefixes (governance_access.py, from access.py), and holds the stack key grant.
Encryption: outputs land in the stack's storage account (customer-managed key with
governance.encryption: customer-managed) and follow the output bucket's lifecycle rules.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mlops_infra.backends.azure import catalog
from mlops_infra.backends.azure.batch_schedule import recurrence
from mlops_infra.backends.azure.common import after, assignment_name, custom_role, identity_workflow
from mlops_infra.backends.azure.governance import AzureGovernance, GovernanceGrants
from mlops_infra.backends.azure.monitoring import metric_alert
from mlops_infra.backends.azure.schedules import Untranslatable, windows_zone, zone_problem
from mlops_infra.backends.azure.serving_rules import SCORING_HOST, model_source
from mlops_infra.backends.azure.storage_workspace import WorkspaceRef
from mlops_infra.backends.azure.training import asset_name, compute_cluster
from mlops_infra.backends.base import CatalogMiss
from mlops_infra.layout import group_of
from mlops_infra.naming import stable_hash
from mlops_infra.spec.models import Model
from mlops_infra.stages.base import finding
from mlops_infra.stages.batch import BatchOutputs
from mlops_infra.stages.governance import GovernanceOutputs
from mlops_infra.stages.monitoring import MonitoringOutputs
from mlops_infra.stages.registry import RegistryOutputs
from mlops_infra.stages.storage import ARTIFACTS, StorageOutputs
from mlops_infra.stages.training import output_prefix
from mlops_infra.templating import render_json

if TYPE_CHECKING:
    from mlops_infra.backends.azure.settings import AzureSettings
    from mlops_infra.backends.context import StageContext
    from mlops_infra.spec.models import SpecBase
    from mlops_infra.spec.problems import Path, Problem

WORKFLOW_TEMPLATE = "azure/batch_workflow.json.j2"
AUDIENCE = "https://ml.azure.com"  # batch endpoints take Entra tokens for this resource
MODEL_TYPE = "mlflow_model"
OUTPUT_FILE = "predictions.csv"
RETRIES = 3
VERSION_LENGTH = 8
WORKSPACE_TYPE = "Microsoft.MachineLearningServices/workspaces"
WORKFLOW_TYPE = "Microsoft.Logic/workflows"
FAILED_JOBS = "Failed Runs"  # workspace metric, dimension ExperimentName
FAILED_CALLS = "RunsFailed"  # Logic Apps workflow metric
SEVERITY = 2
# The actions Azure documents for invoking batch endpoints, nothing else (no wildcards).
# Source: "Authorization on batch endpoints", Microsoft Learn (how-to-authenticate-batch-endpoint), read 2026-12-06.
INVOKER_ACTIONS = tuple(
    f"Microsoft.MachineLearningServices/workspaces/{action}"
    for action in (
        "read",
        "data/versions/write",
        "datasets/registered/read",
        "datasets/registered/write",
        "datasets/unregistered/read",
        "datasets/unregistered/write",
        "datastores/read",
        "datastores/write",
        "datastores/listsecrets/action",
        "listStorageAccountKeys/action",
        "batchEndpoints/read",
        "batchEndpoints/write",
        "batchEndpoints/deployments/read",
        "batchEndpoints/deployments/write",
        "batchEndpoints/deployments/jobs/write",
        "batchEndpoints/jobs/write",
        "computes/read",
        "computes/listKeys/action",
        "metadata/secrets/read",
        "metadata/snapshots/read",
        "metadata/artifacts/read",
        "metadata/artifacts/write",
        "experiments/read",
        "experiments/runs/submit/action",
        "experiments/runs/read",
        "experiments/runs/write",
        "metrics/resource/write",
        "modules/read",
        "models/read",
        "endpoints/pipelines/read",
        "endpoints/pipelines/write",
        "environments/read",
        "environments/write",
        "environments/build/action",
        "environments/readSecrets/action",
    )
)


# --- what Azure refuses, and why ------------------------------------------------------------------
def check(spec: SpecBase, settings: AzureSettings) -> list[Problem]:
    from mlops_infra.backends.azure import BACKEND

    namer = BACKEND.namer(spec, settings)
    account = namer.name("azure.storage.account")
    container = namer.name("azure.storage.container", ARTIFACTS)
    problems: list[Problem] = []
    for i, model in enumerate(spec.models):
        batch = model.batch
        if batch is None:
            continue
        base: Path = ("models", i, "batch")
        try:
            catalog.instance_type(batch.compute, "processing", settings)
        except CatalogMiss as miss:
            problems.append(finding((*base, "compute"), miss.message, hint=miss.hint, value=batch.compute.label))
        if batch.on_new_data:
            problems.append(BACKEND.gap("models[].batch.on_new_data", (*base, "on_new_data"), value=True))
        if batch.schedule:
            problems += _schedule_problems(spec, batch, base)
        if batch.model_uri:
            problems += _model_uri_problems(spec, model, base, account=account, container=container)
        problems.append(BACKEND.gap("models[].batch MLflow models", base))
        problems.append(BACKEND.gap("models[].batch.max_runtime", (*base, "max_runtime"), value=batch.max_runtime))
    return problems


def _model_uri_problems(spec: SpecBase, model: Model, base: Path, *, account: str, container: str) -> list[Problem]:
    """A model_uri Azure cannot read (an error), or one the group's identity may not read (a warning)."""
    from mlops_infra.backends.azure import BACKEND

    batch = model.batch
    assert batch is not None and batch.model_uri
    source = model_source(batch.model_uri, account=account, container=container, model=model.name)
    if source.kind == "unsupported":
        return [BACKEND.gap("models[].batch.model_uri outside Azure storage", (*base, "model_uri"), value=batch.model_uri)]
    group = group_of(model)
    readable = [output_prefix(m.name) for m in spec.models if m.training is not None and group_of(m) == group]
    if source.kind == "artifacts" and any(source.path.startswith(prefix) for prefix in readable):
        return []
    if source.kind == "external" and source.uri.startswith("azureml://registries/"):
        return []  # an Azure ML registry's model: the workspace reads it, no storage grant is involved
    return [
        finding(
            (*base, "model_uri"),
            f"the batch cluster runs as model group {group!r}'s identity, which may read only its trained models "
            "in the artifact bucket: it gets no read access to this model",
            hint=f"put it under {output_prefix(model.name)} of a model of group {group!r} that trains, or give that "
            "identity Storage Blob Data Reader on it",
            value=batch.model_uri,
            severity="warning",
        )
    ]


def _schedule_problems(spec: SpecBase, batch: Any, base: Path) -> list[Problem]:
    from mlops_infra.backends.azure import BACKEND

    problems: list[Problem] = []
    if spec.governance.network == "private":
        problems.append(BACKEND.gap("models[].batch.schedule on a private network", (*base, "schedule"), value=batch.schedule))
    zone = windows_zone(batch.timezone)
    try:
        recurrence(batch.schedule, zone or "UTC")
    except Untranslatable as exc:
        problems.append(
            BACKEND.gap("models[].batch.schedule by day of month or month", (*base, "schedule"), value=batch.schedule,
                        detail=f" ({exc})")
        )
    wrong = zone_problem(batch.timezone, (*base, "timezone"), service="Logic Apps schedules")
    problems += [wrong] if wrong else []
    return problems


# --- what it builds -------------------------------------------------------------------------------
def build(ctx: StageContext) -> BatchOutputs:
    workspace = ctx.upstream.of(WorkspaceRef)
    scored = sorted((m for m in ctx.spec.models if m.batch is not None), key=lambda m: m.name)
    # Stack-wide (every stack of a split agrees): the invoker role and the output datastores.
    grants = _invokers(ctx, workspace, scored) if ctx.builds_stack else {}
    datastores = ctx.shared("datastores", lambda: _datastores(ctx, workspace, scored))
    jobs: dict[str, Any] = {}
    for model in (m for m in scored if ctx.part.builds(m.name)):
        jobs[model.name] = _model(ctx, model, workspace, datastores, grants.get(group_of(model)))
    return BatchOutputs(jobs=jobs)


def _invokers(ctx: StageContext, workspace: Any, scored: list[Model]) -> dict[str, Any]:
    """A custom role that may invoke batch endpoints in this workspace, assigned to each group
    identity that scores in batch: group -> its assignment."""
    from pulumi_azure_native import authorization

    governance = ctx.upstream.of(GovernanceOutputs)
    spec = ctx.spec
    seed = (ctx.namer.scope, spec.project, spec.environment)
    definition_guid, role_id = custom_role(
        ctx,
        slug="batch-invoker",
        words="batch invoker",
        description=f"mlops-infra: start batch scoring jobs in the workspace of {spec.project} ({spec.environment})",
        actions=INVOKER_ACTIONS,
        scope=workspace.id,
        subscription_id=ctx.upstream.of(AzureGovernance).subscription_id,
    )
    found: dict[str, Any] = {}
    for group in sorted({group_of(m) for m in scored}):
        found[group] = authorization.RoleAssignment(
            ctx.logical("grant", group, "batch-invoker", "workspace"),
            role_assignment_name=assignment_name(*seed, "workspace", definition_guid, "group", group),
            principal_id=governance.groups[group].principal,
            principal_type=authorization.PrincipalType.SERVICE_PRINCIPAL,
            role_definition_id=role_id,
            scope=workspace.id,
            description=f"mlops-infra: model group {group} starts its batch scoring jobs",
            opts=ctx.opts(delete_before_replace=True),
        )
    return found


def _datastores(ctx: StageContext, workspace: Any, scored: list[Model]) -> dict[str, Any]:
    """An identity-based datastore per bucket that batch outputs go to: bucket -> its name."""
    from pulumi_azure_native import machinelearningservices as ml

    storage = ctx.upstream.of(StorageOutputs)
    governance = ctx.upstream.of(AzureGovernance)
    found: dict[str, Any] = {}
    for bucket in sorted({m.batch.output.bucket for m in scored if m.batch is not None}):
        if bucket not in storage.buckets:
            continue  # validate reports unknown buckets
        name = ctx.namer.name("azure.ml.datastore", "batch", bucket)
        datastore = ml.Datastore(
            ctx.logical("datastore", bucket),
            name=name,
            resource_group_name=workspace.resource_group,
            workspace_name=workspace.name,
            properties=ml.AzureBlobDatastoreArgs(
                datastore_type="AzureBlob",
                account_name=ctx.namer.name("azure.storage.account"),
                container_name=storage.buckets[bucket].physical,
                # No stored credentials: each job reaches the container with its own identity.
                credentials=ml.NoneDatastoreCredentialsArgs(credentials_type="None"),
                endpoint="core.windows.net",
                protocol="https",
                resource_group=workspace.resource_group,
                subscription_id=governance.subscription_id,
                description=f"mlops-infra: batch predictions in bucket {bucket}",
                tags=ctx.tags(),
            ),
            opts=ctx.opts(),
        )
        found[bucket] = after(datastore.name, name)
    return found


def _model(ctx: StageContext, model: Model, workspace: Any, datastores: dict[str, Any], grant: Any) -> Any:
    from pulumi_azure_native import machinelearningservices as ml

    batch = model.batch
    assert batch is not None
    identity = ctx.upstream.of(GovernanceOutputs).reader(model)
    rg, tags = workspace.resource_group, ctx.tags()

    compute = compute_cluster(
        ctx,
        name=ctx.namer.name("azure.ml.compute_cluster", model.name, "batch"),
        key=model.name,
        workspace=workspace,
        identity=identity,
        vm_size=catalog.instance_type(batch.compute, "processing", ctx.settings),
        count=batch.instance_count,
        spot=False,
        description=f"mlops-infra: batch scoring of {model.name}",
    )

    endpoint_name = ctx.namer.name("azure.ml.online_endpoint", model.name, "batch")
    endpoint = ml.BatchEndpoint(
        ctx.logical("endpoint", model.name),
        endpoint_name=endpoint_name,
        resource_group_name=rg,
        workspace_name=workspace.name,
        location=workspace.location,
        properties=ml.BatchEndpointPropertiesArgs(
            auth_mode=ml.EndpointAuthMode.AAD_TOKEN, description=f"mlops-infra: batch scoring of {model.name}"
        ),
        tags=tags,
        opts=ctx.opts(),
    )

    version = _model_version(ctx, model, workspace)
    deployment_name = ctx.namer.name("azure.ml.online_deployment", model.name, "batch")
    deployment = ml.BatchDeployment(
        ctx.logical("deployment", model.name),
        deployment_name=deployment_name,
        endpoint_name=after(endpoint.tags, endpoint_name),
        resource_group_name=rg,
        workspace_name=workspace.name,
        location=workspace.location,
        properties=ml.BatchDeploymentPropertiesArgs(
            description=f"mlops-infra: {model.name} scores {batch.input.bucket}/{batch.input.prefix}",
            compute=compute.id,
            model=ml.IdAssetReferenceArgs(reference_type="Id", asset_id=version.id),
            resources=ml.DeploymentResourceConfigurationArgs(instance_count=batch.instance_count),
            output_action=ml.BatchOutputAction.APPEND_ROW,
            output_file_name=OUTPUT_FILE,
            retry_settings=ml.BatchRetrySettingsArgs(max_retries=RETRIES, timeout=f"PT{batch.max_runtime}S"),
            logging_level=ml.BatchLoggingLevel.INFO,
        ),
        tags=tags,
        opts=ctx.opts(),
    )

    if not batch.schedule:
        return endpoint.id  # on_new_data only: validate refuses it on Azure
    # The endpoint's scoringUri, built from its name (known while planning) once it exists.
    invocation = after(endpoint.tags, invocation_uri(endpoint_name, workspace.location))
    workflow = _workflow(ctx, model, workspace, invocation, after(deployment.tags, deployment_name), datastores, grant)
    _alerts(ctx, model, workspace, endpoint_name, workflow)
    return workflow.id


def invocation_uri(endpoint: str, location: str) -> str:
    """Where batch jobs are POSTed: https://<endpoint>.<location>.inference.ml.azure.com/jobs."""
    return f"https://{endpoint}.{location}.{SCORING_HOST}/jobs"


def _model_version(ctx: StageContext, model: Model, workspace: Any) -> Any:
    """The MLflow model version the deployment scores, named by a hash of its location."""
    from pulumi_azure_native import machinelearningservices as ml

    from mlops_infra.backends.azure.serving import artifact

    batch = model.batch
    assert batch is not None
    location, uri = artifact(ctx, batch.model_uri, model.name, workspace)
    registry = ctx.upstream.find(RegistryOutputs)
    if registry is not None and model.name in registry.registries:
        container_name = registry.registries[model.name].apply(lambda _: model.name)
    else:
        name = asset_name(model.name, "batch")
        container = ml.ModelContainer(
            ctx.logical("model", model.name),
            name=name,
            resource_group_name=workspace.resource_group,
            workspace_name=workspace.name,
            properties=ml.ModelContainerPropertiesArgs(
                description=f"mlops-infra: versions of {model.name} scored in batch", tags=ctx.tags()
            ),
            opts=ctx.opts(protect=True),  # holds every version scored so far: kept by destroy
        )
        container_name = container.name.apply(lambda _: name)
    key = json.dumps({"model": location, "type": MODEL_TYPE}, sort_keys=True)
    return ml.ModelVersion(
        ctx.logical("modelversion", model.name),
        name=container_name,
        version=str(int(stable_hash("batch", key, length=VERSION_LENGTH), 16)),
        resource_group_name=workspace.resource_group,
        workspace_name=workspace.name,
        properties=ml.ModelVersionPropertiesArgs(
            model_uri=uri,
            model_type=MODEL_TYPE,
            description=f"mlops-infra: the artifact {model.name}'s batch scoring runs",
            properties={"mlops-infra/source": "model_uri" if batch.model_uri else "training output"},
            tags=ctx.tags(),
        ),
        opts=ctx.opts(retain_on_delete=True),
    )


def _workflow(
    ctx: StageContext, model: Model, workspace: Any, endpoint: Any, deployment: Any, datastores: dict[str, Any],
    grant: Any,
) -> Any:
    import pulumi
    from pulumi_azure_native import logic

    batch = model.batch
    assert batch is not None and batch.schedule
    governance = ctx.upstream.of(GovernanceOutputs)
    identity = governance.reader(model)
    storage = ctx.upstream.of(StorageOutputs)
    zone = windows_zone(batch.timezone) or batch.timezone  # check() reports unmapped zones
    try:
        when = recurrence(batch.schedule, zone)
    except Untranslatable:
        when = {"frequency": "Day", "interval": 1, "schedule": {}, "timeZone": zone}  # check() reports it
    definition = render_json(WORKFLOW_TEMPLATE, model=model.name, recurrence=when, audience=AUDIENCE)
    source = storage.buckets.get(batch.input.bucket)
    input_uri = pulumi.Output.concat(source.uri, "/", batch.input.prefix) if source else ""
    store = datastores.get(batch.output.bucket, "")
    output_uri = pulumi.Output.concat("azureml://datastores/", store, "/paths/", batch.output.prefix)
    string = logic.ParameterType.STRING
    return identity_workflow(
        ctx,
        key=model.name,
        name=ctx.namer.name("azure.logic.workflow", model.name, "batch"),
        identity_id=identity.id,
        definition=definition,
        parameters={
            "invocationUri": (string, endpoint),
            "deployment": (string, deployment),
            "identity": (string, identity.id),
            "inputUri": (string, input_uri),
            "outputUri": (string, output_uri),
        },
        # Its first run must find the group's invoker and data grants in place.
        depends_on=ctx.waits(grant, _group_grant(ctx, model)),
    )


def _group_grant(ctx: StageContext, model: Model) -> Any:
    grants = ctx.upstream.find(GovernanceGrants)  # none in a split's model stack: the shared stack holds them
    return grants.groups.get(group_of(model)) if grants else None


def _alerts(ctx: StageContext, model: Model, workspace: Any, endpoint_name: str, workflow: Any) -> list[Any]:
    """Failed runs notify the monitoring stage's action group (when the spec has one): a run the
    schedule could not start (the workflow's failed runs), and a scoring job that failed (the
    workspace's failed runs of the endpoint's jobs)."""
    from pulumi_azure_native import monitor

    monitoring = ctx.upstream.find(MonitoringOutputs)
    if monitoring is None:
        return []
    watched = (
        ("start", "could not be started", workflow.id, WORKFLOW_TYPE, FAILED_CALLS, None),
        ("failed", "failed", workspace.id, WORKSPACE_TYPE, FAILED_JOBS,
         [monitor.MetricDimensionArgs(name="ExperimentName", operator="Include", values=[endpoint_name])]),
    )
    return [
        metric_alert(
            ctx,
            logical=ctx.logical("alarm", kind, model.name),
            # Neither an endpoint alarm (naming.alarm_name) nor a serving alert: a kind of its own.
            name=ctx.namer.name("azure.monitor.metric_alert", model.name, f"batch-{kind}"),
            description=f"mlops-infra: a batch scoring run of {model.name} {what}",
            scope=scope,
            resource_type=resource_type,
            criterion=monitor.MetricCriteriaArgs(
                criterion_type="StaticThresholdCriterion",
                name=f"batch-{kind}",
                metric_name=metric,
                metric_namespace=resource_type,
                operator=monitor.Operator.GREATER_THAN,
                threshold=0.0,
                time_aggregation=monitor.AggregationTypeEnum.TOTAL,
                dimensions=dimensions,
            ),
            group=monitoring.channel,
            severity=SEVERITY,
        ).id
        for kind, what, scope, resource_type, metric, dimensions in watched
    ]
