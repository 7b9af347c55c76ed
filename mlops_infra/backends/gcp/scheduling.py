"""Cloud Scheduler jobs that start a Workflows execution (drift checks, scheduled retraining)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_infra.backends.gcp import automation as auto
from mlops_infra.stages.governance import GovernanceOutputs

if TYPE_CHECKING:
    import pulumi
    import pulumi_gcp as gcp

    from mlops_infra.backends.context import StageContext


def workflow_job(
    ctx: StageContext,
    logical: str,
    *,
    name: str,
    model: str,
    description: str,
    schedule: str,
    time_zone: str,
    workflow_path: Any,
    opts: pulumi.ResourceOptions,
) -> gcp.cloudscheduler.Job:
    """A job that starts `workflow_path` as the automation identity with {"trigger": "schedule", "model"}."""
    import pulumi
    import pulumi_gcp as gcp

    automation = ctx.upstream.of(GovernanceOutputs).identities["automation"]
    return gcp.cloudscheduler.Job(
        logical,
        name=name,
        project=ctx.settings.project,
        region=ctx.settings.region,
        description=description,
        schedule=schedule,
        time_zone=time_zone,
        http_target=pulumi.Output.all(workflow_path, automation.id).apply(
            lambda v: auto.scheduler_target(v[0], service_account=v[1], argument={"trigger": "schedule", "model": model})
        ),
        # A failed start is tried again; a started run is the workflow's to finish.
        retry_config={"retry_count": 3, "min_backoff_duration": "60s"},
        attempt_deadline="60s",
        opts=opts,
    )
