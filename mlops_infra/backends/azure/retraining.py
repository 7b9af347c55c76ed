"""Azure retraining: schedules and event triggers that start a model's training job.

Every trigger of a model starts the same job: its command component (training.py) bound to its
data, artifact prefixes, cluster and its group's identity (training.TrainingJobs).

- schedule: an Azure ML schedule with a cron trigger and a CreateJob action holding that command
  job. The neutral cron becomes an NCronTab expression and the IANA zone a Windows zone id
  (schedules.py); check() rejects the crons and zones that have no exact equivalent.
- on_new_data: Azure ML schedules cannot be triggered by events, and Event Grid cannot start an
  Azure ML job. What can, declaratively: a Logic App (Consumption) per model whose HTTP trigger
  receives Event Grid events and PUTs the job to the Azure ML jobs API as the automation identity
  (templates/azure/retrain_workflow.json.j2). An Event Grid system topic on the stack's storage
  account (one per stack) carries a subscription per model: Microsoft.Storage.BlobCreated whose
  subject begins with /blobServices/default/containers/<container>/blobs/<prefix>, delivered to
  the model's Logic App (webhook; its callback URL, a secret, is read at deployment and kept by
  Event Grid). Every new blob starts a run: upload a batch as one blob, or behind a marker blob.
- on_drift: Azure ML model monitors notify by email only, so there is no alert for an action
  group to forward. The breach is an event: an Event Grid system topic on the Azure ML workspace
  (one per stack) carries a subscription per model filtered on RunStatusChanged with the
  documented breach tag containing the model's signal name (monitoring_rules.drift_filter), delivered
  to the same Logic App. A metric alert on that subscription's matched events ("drift", named
  naming.alert_name) tells the monitoring action group, webhook included, that drift started a
  retraining.

Identity: the Logic Apps run as the governance "automation" identity, whose one grant is a custom
role on the stack's Azure ML workspace (and nowhere else) that may read the workspace and its
assets and write jobs: the narrowest Azure RBAC allows. Built-in roles are broader (AzureML Data
Scientist also deletes and reads datastore secrets); Azure RBAC cannot restrict a principal to one
component or job, so "only this stack's jobs" is as narrow as it gets. Schedules submit jobs as
Azure ML itself; the jobs run as their model group's identity.

Split specs: the custom role, its assignment and the two system topics are stack-wide (the
shared stack; model stacks read the topics' names and ids from it); schedules, Logic Apps, event
subscriptions and drift alerts are per model (the model's stack).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_infra.backends.azure import monitoring_rules as rules
from mlops_infra.backends.azure.common import after, assign_custom, custom_role, identity_workflow
from mlops_infra.backends.azure.governance import AzureGovernance
from mlops_infra.backends.azure.monitoring import metric_alert
from mlops_infra.backends.azure.naming import alert_name
from mlops_infra.backends.azure.schedules import Untranslatable, ncrontab, windows_zone, zone_problem
from mlops_infra.backends.azure.storage_workspace import WorkspaceRef
from mlops_infra.backends.azure.training import TrainingJob, TrainingJobs, asset_name
from mlops_infra.backends.azure.training_evaluation import run_args, run_body
from mlops_infra.spec.models import Model, Retraining
from mlops_infra.stages.base import finding
from mlops_infra.stages.governance import GovernanceOutputs
from mlops_infra.stages.monitoring import MonitoringOutputs
from mlops_infra.stages.retraining import RetrainingOutputs
from mlops_infra.stages.storage import StorageOutputs
from mlops_infra.templating import render_json

if TYPE_CHECKING:
    import pulumi
    from pulumi_azure_native import authorization, eventgrid, logic
    from pulumi_azure_native import machinelearningservices as ml

    from mlops_infra.backends.azure.settings import AzureSettings
    from mlops_infra.backends.context import StageContext
    from mlops_infra.spec.models import SpecBase
    from mlops_infra.spec.problems import Problem

WORKFLOW_TEMPLATE = "azure/retrain_workflow.json.j2"
TRIGGER = "events"  # the workflow's HTTP trigger (the template names it)
ARM = "https://management.azure.com"  # Azure public cloud
JOBS_API_VERSION = "2025-12-01"  # the Azure ML API version pulumi-azure-native 3.29 uses for jobs
BLOB_CREATED = "Microsoft.Storage.BlobCreated"
STORAGE_TOPIC_TYPE = "Microsoft.Storage.StorageAccounts"
ML_TOPIC_TYPE = "Microsoft.MachineLearningServices.Workspaces"
SYSTEM_TOPIC_TYPE = "Microsoft.EventGrid/systemTopics"
MATCHED_EVENTS = "MatchedEventCount"  # system topic metric, dimension EventSubscriptionName
DELIVERY_ATTEMPTS = 10
EVENT_TTL_MINUTES = 1440
# The custom role of the automation identity on the workspace. Explicit operations, no wildcard:
# read the workspace and what a job references (cluster, environment, component, datastores),
# create jobs and read them back. Source: Azure resource provider operations,
# Microsoft.MachineLearningServices.
JOB_SUBMITTER_ACTIONS = (
    "Microsoft.MachineLearningServices/workspaces/read",
    "Microsoft.MachineLearningServices/workspaces/computes/read",
    "Microsoft.MachineLearningServices/workspaces/environments/read",
    "Microsoft.MachineLearningServices/workspaces/environments/versions/read",
    "Microsoft.MachineLearningServices/workspaces/components/read",
    "Microsoft.MachineLearningServices/workspaces/components/versions/read",
    "Microsoft.MachineLearningServices/workspaces/datastores/read",
    "Microsoft.MachineLearningServices/workspaces/jobs/read",
    "Microsoft.MachineLearningServices/workspaces/jobs/write",
    "Microsoft.MachineLearningServices/workspaces/experiments/runs/submit/action",
)


def check(spec: SpecBase, settings: AzureSettings) -> list[Problem]:
    """Crons and time zones an Azure ML schedule cannot express exactly (schedules.py)."""
    problems: list[Problem] = []
    for i, model in enumerate(spec.models):
        retrain = model.retraining
        if retrain is None or not retrain.schedule:
            continue
        problems += schedule_problems(retrain.schedule, retrain.timezone, ("models", i, "retraining"))
    return problems


def schedule_problems(cron: str | None, timezone: str, base: tuple[Any, ...]) -> list[Problem]:
    """What an Azure ML cron trigger cannot express of `cron` in `timezone` (fields under `base`)."""
    from mlops_infra.backends.azure import BACKEND

    problems: list[Problem] = []
    if cron:
        try:
            ncrontab(cron)
        except Untranslatable as exc:
            problems.append(
                BACKEND.gap("models[].retraining.schedule with both day fields", (*base, "schedule"),
                            value=cron, detail=f" ({exc})")
            )
    zone = zone_problem(timezone, (*base, "timezone"), service="Azure ML schedules")
    problems += [zone] if zone else []
    return problems


def build(ctx: StageContext) -> RetrainingOutputs:
    workspace = ctx.upstream.of(WorkspaceRef)
    jobs = ctx.upstream.of(TrainingJobs).jobs  # this part's models only
    # Stack-wide resources follow every model of the spec, so all stacks of a split agree on them.
    evented = [m for m in _retrained(ctx.spec.models) if _retraining(m).new_data_ref is not None or _on_drift(m)]
    grant = _submitter(ctx, workspace) if evented and ctx.builds_stack else None
    storage_topic = (
        ctx.shared("storage-topic", lambda: _topic(ctx, "storage", STORAGE_TOPIC_TYPE, workspace.account_id))
        if any(_retraining(m).new_data_ref is not None for m in evented)
        else None
    )
    ml_topic = (
        ctx.shared("ml-topic", lambda: _topic(ctx, "ml", ML_TOPIC_TYPE, workspace.id))
        if any(_on_drift(m) for m in evented)
        else None
    )

    triggers: dict[str, list[Any]] = {}
    for model in _retrained(ctx.models()):
        job, found = jobs[model.name], []
        assert model.retraining is not None  # filtered above
        if model.retraining.schedule:
            found.append(_schedule(ctx, model, job, workspace).id)
        if model in evented:
            target = _workflow(ctx, model, job, workspace, grant)
            found.append(target[0].id)
            if model.retraining.new_data_ref is not None and storage_topic is not None:
                found += _new_data(ctx, model, storage_topic, target)
            if _on_drift(model) and ml_topic is not None:
                found += _drift(ctx, model, ml_topic, target)
        triggers[model.name] = found
    return RetrainingOutputs(triggers=triggers)


def _retrained(models: list[Model]) -> list[Model]:
    """The models with a retraining block and a training job to start, by name.

    validate reports retraining without training.
    """
    return sorted((m for m in models if m.retraining is not None and m.training is not None), key=lambda m: m.name)


def _retraining(model: Model) -> Retraining:
    """The retraining block of a model this stage builds (its models all have one)."""
    assert model.retraining is not None
    return model.retraining


def _on_drift(model: Model) -> bool:
    """on_drift with a drift monitor to listen to (validate reports on_drift without drift)."""
    return bool(_retraining(model).on_drift and model.monitoring and model.monitoring.drift)


# --- cron schedules ----------------------------------------------------------------------------
def cron_trigger(cron: str, timezone: str) -> ml.CronTriggerArgs:
    """An Azure ML cron trigger firing at `cron` in `timezone` (NCronTab, a Windows zone)."""
    from pulumi_azure_native import machinelearningservices as ml

    try:
        expression = ncrontab(cron)
    except Untranslatable:
        expression = cron  # check() reports it; never a different schedule
    zone = windows_zone(timezone) or timezone  # likewise: never silently UTC
    return ml.CronTriggerArgs(trigger_type="Cron", expression=expression, time_zone=zone)


def cron_schedule(
    ctx: StageContext, *, key: str, name: str, workspace: Any, display_name: str, description: str, cron: str,
    timezone: str, job: Any, depends_on: list[Any] | None = None,
) -> ml.Schedule:
    """An enabled Azure ML schedule creating `job` (a job definition) at `cron` in `timezone`."""
    from pulumi_azure_native import machinelearningservices as ml

    return ml.Schedule(
        ctx.logical("schedule", key),
        name=name,
        resource_group_name=workspace.resource_group,
        workspace_name=workspace.name,
        properties=ml.SchedulePropertiesArgs(
            display_name=display_name,
            description=description,
            is_enabled=True,
            trigger=cron_trigger(cron, timezone),
            action=ml.JobScheduleActionArgs(action_type="CreateJob", job_definition=job),
            tags=ctx.tags(),
        ),
        opts=ctx.opts(depends_on=depends_on) if depends_on is not None else ctx.opts(),
    )


def _schedule(ctx: StageContext, model: Model, job: TrainingJob, workspace: Any) -> ml.Schedule:
    from pulumi_azure_native import machinelearningservices as ml

    retrain = model.retraining
    assert retrain is not None and retrain.schedule
    when = f"{retrain.schedule} ({retrain.timezone})"
    return cron_schedule(
        ctx,
        key=model.name,
        name=asset_name(model.name, "retrain"),
        workspace=workspace,
        display_name=f"{model.name} retraining",
        description=f"mlops-infra: retrains {model.name} at {when}",
        cron=retrain.schedule,
        timezone=retrain.timezone,
        job=run_args(
            job,
            display_name=f"{model.name} training (schedule)",
            description=f"mlops-infra: scheduled retraining of {model.name} at {when}",
            tags={**ctx.tags(), "mlops-infra/trigger": "schedule"},
        ),
    )


# --- the automation identity's one grant -------------------------------------------------------
def _submitter(ctx: StageContext, workspace: Any) -> authorization.RoleAssignment:
    """A custom role that may submit jobs in this workspace only, assigned to the automation identity."""
    automation = ctx.upstream.of(GovernanceOutputs).identities["automation"]
    spec = ctx.spec
    role = custom_role(
        ctx,
        slug="job-submitter",
        words="job submitter",
        description=f"mlops-infra: submit and read Azure ML jobs in the workspace of {spec.project} ({spec.environment})",
        actions=JOB_SUBMITTER_ACTIONS,
        scope=workspace.id,
        subscription_id=ctx.upstream.of(AzureGovernance).subscription_id,
    )
    return assign_custom(
        ctx,
        role=role,
        slug="job-submitter",
        principal="automation",
        principal_id=automation.principal,
        scope=workspace.id,
        target="workspace",
        description="mlops-infra: retraining triggers submit this stack's training jobs",
    )


# --- the event target: a Logic App per model ---------------------------------------------------
def _workflow(
    ctx: StageContext, model: Model, job: TrainingJob, workspace: Any, grant: Any
) -> tuple[logic.Workflow, pulumi.Output[str]]:
    import pulumi
    from pulumi_azure_native import logic

    governance = ctx.upstream.of(GovernanceOutputs)
    automation = governance.identities["automation"]
    name = ctx.namer.name("azure.logic.workflow", model.name, "retrain")
    definition = render_json(WORKFLOW_TEMPLATE, model=model.name, arm=ARM, api_version=JOBS_API_VERSION)
    body = run_body(
        job,
        display_name=f"{model.name} training (event)",
        description=f"mlops-infra: retraining of {model.name} started by new data or drift",
        tags={**ctx.tags(), "mlops-infra/trigger": "event"},
    )
    string = logic.ParameterType.STRING
    workflow = identity_workflow(
        ctx,
        key=model.name,
        name=name,
        identity_id=automation.id,
        definition=definition,
        parameters={
            "workspaceId": (string, workspace.id),
            "automationIdentity": (string, automation.id),
            "jobPrefix": (string, f"{model.name}-retrain-"),
            "job": (logic.ParameterType.OBJECT, body),
        },
        # Its first run must find the grant in place (in a model stack, the shared stack made it).
        depends_on=ctx.waits(grant),
    )
    callback = logic.list_workflow_trigger_callback_url_output(
        resource_group_name=governance.scope,
        workflow_name=after(workflow.tags, name),
        trigger_name=TRIGGER,
        opts=pulumi.InvokeOutputOptions(provider=ctx.provider, parent=ctx.parent),
    )
    # The URL carries the trigger's signature: a secret.
    return workflow, pulumi.Output.secret(callback.value)


@dataclass(frozen=True)
class Topic:
    """An Event Grid system topic's name (known while planning, once the topic exists) and id.

    Values only: model stacks read them from the shared stack, which builds the topic.
    """

    name: Any
    id: Any


def _topic(ctx: StageContext, word: str, topic_type: str, source: Any) -> Topic:
    from pulumi_azure_native import eventgrid

    # No rule for system topics in the rules table yet: the subscription rule is stricter.
    name = ctx.namer.name("azure.eventgrid.subscription", word, "events")
    resource = eventgrid.SystemTopic(
        ctx.logical("events", word),
        system_topic_name=name,
        resource_group_name=ctx.upstream.of(GovernanceOutputs).scope,
        location=ctx.settings.location,
        source=source,
        topic_type=topic_type,
        tags=ctx.tags(),
        opts=ctx.opts(),
    )
    return Topic(name=after(resource.tags, name), id=resource.id)


def _webhook(url: Any) -> eventgrid.WebHookEventSubscriptionDestinationArgs:
    from pulumi_azure_native import eventgrid

    return eventgrid.WebHookEventSubscriptionDestinationArgs(
        endpoint_type="WebHook", endpoint_url=url, max_events_per_batch=1, preferred_batch_size_in_kilobytes=64
    )


def _subscription(
    ctx: StageContext, logical: str, name: str, topic: Any, target: Any, event_filter: Any
) -> eventgrid.SystemTopicEventSubscription:
    """An event subscription delivering to `target` (workflow, callback URL), one event per call."""
    from pulumi_azure_native import eventgrid

    workflow, url = target
    return eventgrid.SystemTopicEventSubscription(
        logical,
        event_subscription_name=name,
        resource_group_name=ctx.upstream.of(GovernanceOutputs).scope,
        system_topic_name=topic.name,
        destination=_webhook(url),
        event_delivery_schema=eventgrid.EventDeliverySchema.EVENT_GRID_SCHEMA,
        filter=event_filter,
        retry_policy=eventgrid.RetryPolicyArgs(
            max_delivery_attempts=DELIVERY_ATTEMPTS, event_time_to_live_in_minutes=EVENT_TTL_MINUTES
        ),
        # Event Grid validates the endpoint when the subscription is created: the workflow first.
        opts=ctx.opts(depends_on=[workflow]),
    )


def _new_data(ctx: StageContext, model: Model, topic: Any, target: Any) -> list[Any]:
    import pulumi
    from pulumi_azure_native import eventgrid

    ref = _retraining(model).new_data_ref
    assert ref is not None
    bucket = ctx.upstream.of(StorageOutputs).buckets.get(ref.bucket)
    if bucket is None:
        return []  # validate reports unknown buckets
    subject = pulumi.Output.concat("/blobServices/default/containers/", bucket.physical, "/blobs/", ref.prefix)
    subscription = _subscription(
        ctx,
        ctx.logical("newdata", model.name),
        ctx.namer.name("azure.eventgrid.subscription", model.name, "new-data"),
        topic,
        target,
        eventgrid.EventSubscriptionFilterArgs(
            included_event_types=[BLOB_CREATED], subject_begins_with=subject, is_subject_case_sensitive=True
        ),
    )
    return [subscription.id]


def _drift(ctx: StageContext, model: Model, topic: Any, target: Any) -> list[Any]:
    from pulumi_azure_native import eventgrid, monitor

    name = ctx.namer.name("azure.eventgrid.subscription", model.name, "drift")
    subscription = _subscription(
        ctx,
        ctx.logical("driftevents", model.name),
        name,
        topic,
        target,
        eventgrid.EventSubscriptionFilterArgs(
            included_event_types=[rules.RUN_STATUS_CHANGED],
            advanced_filters=[
                eventgrid.StringContainsAdvancedFilterArgs(
                    operator_type="StringContains", key=item["key"], values=item["values"]
                )
                for item in rules.drift_filter(model.name)
            ],
        ),
    )
    found = [subscription.id]
    monitoring = ctx.upstream.find(MonitoringOutputs)
    if monitoring is not None:
        alarm = metric_alert(
            ctx,
            logical=ctx.logical("alarm", "drift", model.name),
            name=alert_name(ctx.namer, model.name, "drift"),
            description=f"mlops-infra: data drift detected on {model.name}; retraining started",
            scope=topic.id,
            resource_type=SYSTEM_TOPIC_TYPE,
            criterion=monitor.MetricCriteriaArgs(
                criterion_type="StaticThresholdCriterion",
                name="drift-events",
                metric_name=MATCHED_EVENTS,
                metric_namespace=SYSTEM_TOPIC_TYPE,
                operator=monitor.Operator.GREATER_THAN,
                threshold=0.0,
                time_aggregation=monitor.AggregationTypeEnum.TOTAL,
                # Event Grid reports subscription names upper-cased in this dimension.
                dimensions=[monitor.MetricDimensionArgs(name="EventSubscriptionName", operator="Include", values=[name.upper()])],
            ),
            group=monitoring.channel,
            severity=rules.SEVERITY["drift"],
        )
        found.append(alarm.id)
    return found
