"""GCP retraining: what starts a model's training workflow without anyone clicking.

Per model with `retraining` (and a training workflow, TrainingOutputs.pipelines):
- schedule: a Cloud Scheduler job on the neutral cron, written out in unix-cron
  (automation.scheduler_cron: same fields, same day-of-month/day-of-week OR rule) with the spec's
  IANA time zone as time_zone. It calls Workflow Executions (executions.create) for the model's
  workflow with an OAuth token of the automation identity; on a private network it publishes to
  a topic of the model's that an Eventarc trigger turns into the execution (scheduling.py).
- on_new_data: a Cloud Storage notification on the bucket, for OBJECT_FINALIZE under the
  prefix, into a topic of the model's (CMEK), and an Eventarc Pub/Sub trigger on that topic that
  starts the workflow. Not an Eventarc Cloud Storage trigger: direct Cloud Storage events filter
  on the bucket only (Eventarc path patterns apply to audit-log resource names), so a prefix
  would have to be checked by the workflow after every object of the bucket had started it. The
  notification filters on the prefix at the source, and Cloud Storage's service agent needs
  publish rights on this topic alone (a direct trigger wants them on the project).
- on_drift: an Eventarc Pub/Sub trigger on the model's drift topic, which its drift alert
  policy publishes to when an incident opens (monitoring.py). The topic is the monitoring
  stage's; its physical name comes from the namer and this stage waits for that stage.

Every trigger runs as the automation identity, which governance.py lets start workflows
(workflows.executions.create, project-wide: Workflows has no narrower IAM) and which runs the
workflows already. Pub/Sub pushes to Workflows with tokens of that identity: its service agent
gets roles/iam.serviceAccountTokenCreator on the automation service account only (needed where
the agent predates April 2021, harmless elsewhere); the governance stage makes that grant when
private schedules need it too (automation.push_grant_in_governance). Eventarc's own agent gets
its role when the API is first used. Nothing here lists every model: one resource per model and
trigger, and one stack-wide grant (in the shared stack of a split spec; model stacks hold their
models' triggers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_infra.backends.gcp import automation as auto
from mlops_infra.backends.gcp.naming import scheduler_job_name, topic_id, trigger_name
from mlops_infra.backends.gcp.scheduling import push_grant, workflow_job
from mlops_infra.backends.gcp.shared import DriftTopics, ProjectServices, PushGrant
from mlops_infra.spec.common import DataRef
from mlops_infra.spec.models import Model
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding
from mlops_infra.stages.governance import GovernanceOutputs
from mlops_infra.stages.retraining import RetrainingOutputs
from mlops_infra.stages.storage import StorageOutputs
from mlops_infra.stages.training import TrainingOutputs

if TYPE_CHECKING:
    from mlops_infra.backends.context import StageContext

PUBLISHER = "roles/pubsub.publisher"
NEW_OBJECTS = "OBJECT_FINALIZE"  # a new object, or a new generation of one, is complete


def check(spec: Any, settings: Any) -> list[Problem]:
    """Retraining GCP cannot run as written, knowable offline."""
    problems: list[Problem] = []
    index = {m.name: i for i, m in enumerate(spec.models)}
    for model in auto.retraining_models(spec):
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
        problems += auto.time_zone_problems(retraining.timezone, ("models", i, "retraining", "timezone"))
    return problems


def build(ctx: StageContext) -> RetrainingOutputs:
    governance = ctx.upstream.of(GovernanceOutputs)
    training = ctx.upstream.find(TrainingOutputs)
    pipelines: dict[str, Any] = dict(training.pipelines) if training is not None else {}
    retrained = auto.retraining_models(ctx.spec)  # every model's: the grant below is stack-wide
    automation = governance.identities["automation"]

    # In a model stack of a split spec the grant is the shared stack's (None here): the
    # triggers need not wait for it, it exists before a model stack is deployed. With private
    # schedules the governance stage makes it (automation.push_grant_in_governance).
    found = ctx.upstream.find(PushGrant)
    grant = found.grant if found is not None else None
    if grant is None and ctx.builds_stack and not auto.push_grant_in_governance(ctx.spec) \
            and any(_events(ctx, m) for m in retrained):
        grant = push_grant(ctx, automation, ctx.upstream.of(ProjectServices).service_agents["pubsub"])

    built = {m.name for m in ctx.models()}
    triggers: dict[str, list[Any]] = {}
    for model in retrained:
        if model.name not in built or model.name not in pipelines:
            continue
        triggers[model.name] = _triggers(ctx, model, workflow=pipelines[model.name], push_grant=grant)
    return RetrainingOutputs(triggers=triggers)


def _events(ctx: StageContext, model: Model) -> list[str]:
    """The Eventarc triggers a model gets: "new-data", "drift"."""
    assert model.retraining is not None
    events = ["new-data"] if model.retraining.new_data_ref is not None else []
    if model.name in {m.name for m in auto.drift_retrained(ctx.spec)}:
        events.append("drift")
    return events


def _triggers(ctx: StageContext, model: Model, *, workflow: Any, push_grant: Any) -> list[Any]:
    retraining = model.retraining
    assert retraining is not None
    project = ctx.settings.project
    stack = f"{ctx.spec.project}/{ctx.spec.environment}"
    labels = {**ctx.tags(), "mlops-model": model.name}
    ids: list[Any] = []

    if retraining.schedule:
        job = workflow_job(
            ctx,
            ctx.logical("schedule", model.name),
            name=scheduler_job_name(ctx.namer, model.name, "retrain"),
            model=model.name,
            purpose="retrain",
            description=f"retrains model {model.name} on {retraining.schedule!r} ({retraining.timezone}, mlops-infra {stack})",
            schedule=auto.scheduler_cron(retraining.schedule),
            time_zone=retraining.timezone,
            workflow_path=workflow,
            opts=ctx.opts(),
        )
        ids.append(job.name)

    events = _events(ctx, model)
    if "new-data" in events:
        assert retraining.new_data_ref is not None
        topic_path = new_data_topic(ctx, model.name, retraining.new_data_ref, purpose="new-data", labels=labels)
        ids.append(
            eventarc_trigger(
                ctx, model.name, "new-data", topic_path=topic_path, workflow=workflow, labels=labels, push_grant=push_grant
            )
        )
    if "drift" in events:
        # The monitoring stage's topic (named by the same namer); this stage waits for that one.
        topic_path = f"projects/{project}/topics/{topic_id(ctx.namer, model.name, 'drift')}"
        ids.append(
            eventarc_trigger(
                ctx, model.name, "drift", topic_path=topic_path, workflow=workflow, labels=labels, push_grant=push_grant,
                depends_on=[ctx.upstream.of(DriftTopics).by_model[model.name]],
            )
        )
    return ids


def new_data_topic(ctx: StageContext, model: str, ref: DataRef, *, purpose: str, labels: dict[str, str]) -> Any:
    """A model's topic for new objects under `ref` (a Cloud Storage notification feeds it), named
    for `purpose` ("new-data": retraining, "batch-new-data": batch scoring)."""
    import pulumi_gcp as gcp

    services = ctx.upstream.of(ProjectServices)
    storage = ctx.upstream.of(StorageOutputs)
    project = ctx.settings.project
    part = purpose.replace("-", "")
    topic = gcp.pubsub.Topic(
        ctx.logical(f"{part}-topic", model),
        name=topic_id(ctx.namer, model, purpose),
        project=project,
        kms_key_name=services.service_keys["pubsub"],
        message_storage_policy={"allowed_persistence_regions": [ctx.settings.region]},
        labels=labels,
        opts=ctx.opts(),
    )
    publisher = gcp.pubsub.TopicIAMMember(
        ctx.logical(f"{part}-publisher", model),
        project=project,
        topic=topic.name,
        role=PUBLISHER,
        member=services.service_agents["storage"],
        opts=ctx.opts(),
    )
    topic_path = topic.name.apply(lambda n: f"projects/{project}/topics/{n}")
    gcp.storage.Notification(
        ctx.logical(f"{part}-notification", model),
        bucket=storage.buckets[ref.bucket].physical,
        topic=topic_path,
        payload_format="JSON_API_V1",
        event_types=[NEW_OBJECTS],
        object_name_prefix=ref.prefix or None,  # None: the whole bucket
        custom_attributes={"mlops-model": model},
        # Cloud Storage checks its publish rights when the notification is created.
        opts=ctx.opts(depends_on=[publisher]),
    )
    return topic_path


def eventarc_trigger(
    ctx: StageContext,
    model: str,
    purpose: str,
    *,
    topic_path: Any,
    workflow: Any,
    labels: dict[str, str],
    push_grant: Any,
    depends_on: list[Any] | None = None,
) -> Any:
    import pulumi_gcp as gcp

    automation = ctx.upstream.of(GovernanceOutputs).identities["automation"]
    trigger = gcp.eventarc.Trigger(
        ctx.logical(f"{purpose.replace('-', '')}-trigger", model),
        name=trigger_name(ctx.namer, model, purpose),
        project=ctx.settings.project,
        location=ctx.settings.region,
        matching_criterias=[{"attribute": "type", "value": auto.MESSAGE_PUBLISHED}],
        transport={"pubsub": {"topic": topic_path}},
        destination={"workflow": workflow},
        service_account=automation.id,
        labels=labels,
        opts=ctx.opts(depends_on=ctx.waits(push_grant, depends_on)),
    )
    return trigger.name
