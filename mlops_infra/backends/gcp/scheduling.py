"""Cloud Scheduler jobs that start a Workflows execution (drift checks, scheduled retraining).

Public networks: the job calls the Workflow Executions API with an OAuth token of the automation
identity. Private networks (automation.schedules_through_pubsub): the job publishes to a topic
of the model's (CMEK, stored in the stack's region) and an Eventarc trigger starts the workflow
as the automation identity, the path new-data and drift triggers already take; Pub/Sub in the
job's own project is a target VPC Service Controls allows Cloud Scheduler, an HTTP call to an
API is not in every version of that list (cloud.google.com/scheduler/docs/secure-with-vpcsc).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_infra.backends.gcp import automation as auto
from mlops_infra.backends.gcp.naming import topic_id, trigger_name
from mlops_infra.backends.gcp.shared import ProjectServices, PushGrant
from mlops_infra.stages.governance import GovernanceOutputs, Identity

if TYPE_CHECKING:
    import pulumi
    import pulumi_gcp as gcp

    from mlops_infra.backends.context import StageContext


TOKEN_CREATOR = "roles/iam.serviceAccountTokenCreator"
SCHEDULE_SUFFIX = "schedule"  # topic and trigger of a private schedule: "<purpose>-schedule"


def workflow_job(
    ctx: StageContext,
    logical: str,
    *,
    name: str,
    model: str,
    purpose: str,
    description: str,
    schedule: str,
    time_zone: str,
    workflow_path: Any,
    opts: pulumi.ResourceOptions,
) -> gcp.cloudscheduler.Job:
    """A job that starts `workflow_path` as the automation identity with {"trigger": "schedule", "model"}.

    `purpose` ("drift", "retrain") names the job's topic and trigger on a private network."""
    import pulumi
    import pulumi_gcp as gcp

    automation = ctx.upstream.of(GovernanceOutputs).identities["automation"]
    argument = {"trigger": "schedule", "model": model}
    target: dict[str, Any] = {}
    if auto.schedules_through_pubsub(ctx.spec):
        topic = _schedule_topic(ctx, model=model, purpose=purpose, workflow_path=workflow_path, opts=opts)
        target["pubsub_target"] = {
            "topic_name": topic,
            "data": auto.message_data(argument),
            "attributes": {"mlops-model": model, "mlops-trigger": "schedule"},
        }
    else:
        target["http_target"] = pulumi.Output.all(workflow_path, automation.id).apply(
            lambda v: auto.scheduler_target(v[0], service_account=v[1], argument=argument)
        )
    return gcp.cloudscheduler.Job(
        logical,
        name=name,
        project=ctx.settings.project,
        region=ctx.settings.region,
        description=description,
        schedule=schedule,
        time_zone=time_zone,
        # A failed start is tried again; a started run is the workflow's to finish.
        retry_config={"retry_count": 3, "min_backoff_duration": "60s"},
        attempt_deadline="60s",
        opts=opts,
        **target,
    )


def _schedule_topic(
    ctx: StageContext, *, model: str, purpose: str, workflow_path: Any, opts: pulumi.ResourceOptions
) -> Any:
    """The private schedule's topic and the Eventarc trigger that starts the workflow from it."""
    import pulumi_gcp as gcp

    project = ctx.settings.project
    part = f"{purpose}-{SCHEDULE_SUFFIX}"
    labels = {**ctx.tags(), "mlops-model": model}
    topic = gcp.pubsub.Topic(
        ctx.logical(f"{purpose}-schedule-topic", model),
        name=topic_id(ctx.namer, model, part),
        project=project,
        kms_key_name=ctx.upstream.of(ProjectServices).service_keys["pubsub"],
        message_storage_policy={"allowed_persistence_regions": [ctx.settings.region]},
        labels=labels,
        opts=ctx.opts(),
    )
    topic_path = topic.name.apply(lambda n: f"projects/{project}/topics/{n}")
    push = ctx.upstream.find(PushGrant)
    gcp.eventarc.Trigger(
        ctx.logical(f"{purpose}-schedule-trigger", model),
        name=trigger_name(ctx.namer, model, part),
        project=project,
        location=ctx.settings.region,
        matching_criterias=[{"attribute": "type", "value": auto.MESSAGE_PUBLISHED}],
        transport={"pubsub": {"topic": topic_path}},
        destination={"workflow": workflow_path},
        service_account=ctx.upstream.of(GovernanceOutputs).identities["automation"].id,
        labels=labels,
        # The workflow's own waits (grants, tables) hold for the runs the trigger starts too.
        opts=ctx.opts(depends_on=ctx.waits(push.grant if push else None, opts.depends_on)),
    )
    return topic_path


def push_grant(ctx: StageContext, automation: Identity, pubsub_agent: Any) -> gcp.serviceaccount.IAMMember:
    """Pub/Sub's service agent may mint tokens of the automation identity: Eventarc's Pub/Sub
    triggers push to Workflows with them (needed where the agent predates April 2021, harmless
    elsewhere). One grant on that account's own policy, whatever the number of triggers."""
    import pulumi_gcp as gcp

    project = ctx.settings.project
    return gcp.serviceaccount.IAMMember(
        ctx.logical("token-creator", "pubsub-agent"),
        service_account_id=automation.id.apply(lambda email: f"projects/{project}/serviceAccounts/{email}"),
        role=TOKEN_CREATOR,
        member=pubsub_agent,
        opts=ctx.opts(),
    )
