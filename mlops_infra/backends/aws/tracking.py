"""AWS tracking: a SageMaker managed MLflow tracking server on the artifact bucket.

- iam.Role (service role of the server, assumed by SageMaker for this account only) with
  two inline policies: read/write the artifact bucket under mlflow/ (nothing else in it),
  and decrypt / generate data keys with the stack key (the bucket is SSE-KMS).
- sagemaker.MlflowTrackingServer: artifact store s3://<artifacts>/mlflow/, size from
  spec.tracking.size, automatic registration into the SageMaker Model Registry off
  (the training pipeline registers models). Protected: its backing store holds every
  experiment and run, which a replacement would lose. MLflow version: the service default.

pulumi-aws 7.51 has both MlflowTrackingServer and the newer MlflowApp; the tracking server
is used because the spec's size (small/medium/large) is a tracking server setting
(TrackingServerSize) that an MLflow App does not have.

The neutral tracking URI is the server's ARN: MLflow clients with the sagemaker-mlflow
plugin take it as their tracking URI (mlflow.set_tracking_uri(arn)). Training jobs run
network-isolated (see training.py), so they do not log to the server themselves.
"""

from __future__ import annotations

import json
from typing import Any

from mlops_infra.backends.aws import BACKEND, policies
from mlops_infra.backends.aws import training_jobs as jobs
from mlops_infra.backends.aws.naming import (
    inline_policy_name,
    role_name,
    tracking_server_name,
)
from mlops_infra.backends.aws.governance_network import private
from mlops_infra.backends.context import StageContext
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.governance import GovernanceOutputs
from mlops_infra.stages.storage import StorageOutputs
from mlops_infra.stages.tracking import TrackingOutputs

ROLE = "mlflow"  # the server's service role (not one of the workload identities)


def check(spec: Any, settings: Any) -> list[Problem]:
    """In a private network the server itself stays in SageMaker's (see GAPS["tracking"])."""
    if not private(spec):
        return []
    return [BACKEND.gap("tracking", ("tracking",))]


def build(ctx: StageContext) -> TrackingOutputs:
    import pulumi
    import pulumi_aws as aws

    spec, region = ctx.spec, ctx.settings.region
    assert spec.tracking is not None  # the stage is built only for a spec with tracking
    gov = ctx.upstream.of(GovernanceOutputs)
    storage = ctx.upstream.of(StorageOutputs)
    partition = policies.partition_of(region)

    role = aws.iam.Role(
        ctx.logical("role", ROLE),
        name=role_name(ctx.namer, ROLE, region),
        description=f"mlops-infra {spec.project}/{spec.environment} {ROLE}: the MLflow tracking server's artifact store",
        assume_role_policy=json.dumps(jobs.tracking_trust(ctx.settings.account_id)),
        max_session_duration=3600,
        tags=ctx.tags(),
        opts=ctx.opts(),
    )
    artifacts = storage.artifacts
    store = aws.iam.RolePolicy(
        ctx.logical("grant", ROLE),
        name=inline_policy_name(ctx.namer, "tracking"),
        role=role.name,
        policy=pulumi.Output.from_input(artifacts.physical).apply(
            lambda bucket: json.dumps(jobs.tracking_grants(partition=partition, artifacts=bucket))
        ),
        opts=ctx.opts(),
    )
    key = aws.iam.RolePolicy(
        ctx.logical("keygrant", ROLE),
        name=inline_policy_name(ctx.namer, "key"),
        role=role.name,
        policy=pulumi.Output.from_input(gov.key_id).apply(lambda arn: json.dumps(jobs.tracking_key_grant(arn))),
        opts=ctx.opts(),
    )
    server = aws.sagemaker.MlflowTrackingServer(
        ctx.logical("server", ROLE),
        tracking_server_name=tracking_server_name(ctx.namer),
        artifact_store_uri=pulumi.Output.from_input(artifacts.uri).apply(lambda uri: f"{uri}/{jobs.MLFLOW_PREFIX}"),
        role_arn=role.arn,
        tracking_server_size=jobs.TRACKING_SIZES[spec.tracking.size],
        automatic_model_registration=False,
        tags=ctx.tags(),
        # SageMaker checks at creation that the role can reach the artifact store.
        opts=ctx.opts(protect=True, depends_on=[store, key]),
    )
    return TrackingOutputs(tracking_uri=server.arn)
