"""SageMaker batch transform as pure data: the scoring pipeline, its grants, its failure events.

No SDK here: the batch stage (batch.py) turns these into pulumi-aws arguments, batch.check and
governance_grants measure the same documents, and the tests read them. Facts, with their
sources (read 2026-12-06):

- CreateTransformJob (botocore sagemaker service model): TransformInput.DataSource.S3DataSource
  (S3DataType S3Prefix: every object under the prefix), TransformOutput.S3OutputPath and KmsKeyId
  (the key encrypts the predictions in S3), TransformResources InstanceType (the
  TransformInstanceType enum: catalog purpose "transform"), InstanceCount, VolumeKmsKeyId (the
  instances' EBS volumes; not for types with local storage). It takes no stopping condition:
  a transform job runs until its input is scored (batch.max_runtime is a gap).
- The job's containers run the model (its image, data, execution role, network isolation,
  VpcConfig): the batch model has the model group's identity as execution role and, in a
  private network, the stack's VpcConfig, so the transform job runs in the VPC.
- Pipelines (pipeline definition schema): a "Transform" step takes CreateTransformJob
  arguments; {"Get": "Execution.PipelineExecutionId"} and {"Std:Join": ...} build per-run paths.
  The pipeline's role (the group identity) starts the job: sagemaker:CreateTransformJob,
  DescribeTransformJob, StopTransformJob and AddTags (tags on create) on the job.
- Logs: /aws/sagemaker/TransformJobs, streams "<job name>/<instance>", written with the model's
  execution role.
- EventBridge: SageMaker sends "SageMaker Model Building Pipeline Execution Status Change"
  (source aws.sagemaker) with detail.pipelineArn and detail.currentPipelineExecutionStatus
  (Executing, Stopping, Stopped, Failed, Succeeded)
  (https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops_infra.backends.aws import governance_network as network
from mlops_infra.backends.aws import policies
from mlops_infra.backends.aws import retraining_triggers as triggers
from mlops_infra.backends.aws import serving_endpoints as endpoints
from mlops_infra.backends.aws import training_jobs as jobs
from mlops_infra.backends.aws.naming import repository_name, stack_prefix
from mlops_infra.naming import Namer
from mlops_infra.stages.training import output_prefix

STEP = "Score"
LOG_GROUP = "/aws/sagemaker/TransformJobs"
JOB_CONTROL = ("sagemaker:CreateTransformJob", "sagemaker:DescribeTransformJob", "sagemaker:StopTransformJob",
               "sagemaker:AddTags")
FAILED = ("Failed",)
PIPELINE_STATUS_EVENT = "SageMaker Model Building Pipeline Execution Status Change"


@dataclass(frozen=True)
class TransformValues:
    """One model's transform request in the pipeline (strings may be known stand-ins or resolved values)."""

    job_name: str  # the model's transform job prefix
    model_name: str
    input_uri: str  # s3://bucket/prefix (every object under it)
    output_uri: str  # s3://bucket/prefix/, each run under <execution id>/
    key_arn: str
    instance_type: str
    instance_count: int
    volume_encrypted: bool
    tags: tuple[tuple[str, str], ...]


def pipeline_definition(job: TransformValues) -> dict[str, Any]:
    """The batch pipeline's definition, rendered from templates/aws/batch-pipeline.json.j2."""
    from mlops_infra.templating import render_json

    values = {name: getattr(job, name) for name in job.__dataclass_fields__}
    values["tags"] = [list(t) for t in job.tags]
    return render_json("aws/batch-pipeline.json.j2", job=values, step=STEP)


def scoring_image(model: Any) -> tuple[str, str] | None:
    """(spec image, repository purpose) the batch model runs: the serving image (what an endpoint
    of this model runs), else the training image (as the registry registers it); None without both."""
    if model.serving is not None:
        return model.serving.image, "serving"
    if model.training is not None:
        return model.training.image, "training"
    return None


def model_data(model: Any, artifacts_uri: str) -> str:
    """What the batch model loads: batch.model_uri, else the model's training output (like an endpoint)."""
    return model.batch.model_uri or f"{artifacts_uri}/{output_prefix(model.name)}"


def pulled(model: Any, namer: Namer, *, partition: str, region: str, account: str) -> str:
    image, purpose = scoring_image(model) or ("", "serving")
    return jobs.pulled_image(image=image, partition=partition, region=region, account=account,
                             repository=repository_name(namer, model.name, purpose))


# --- IAM -----------------------------------------------------------------------------------
def group_grant(
    *, partition: str, region: str, account_id: str, namer: Namer, models: list[Any], key_arn: str,
    physical: dict[str, str], artifacts: str, vpc_id: str | None = None,
) -> dict[str, Any]:
    """A model group identity's inline "batch" policy, for its models with batch scoring: run the
    stack's transform jobs and write their logs, pull the stack's serving and training images (and
    any spec-named ECR image of these models), use the stack key (S3 and EBS volumes), write
    predictions under each model's batch.output only, read a batch.model_uri outside the trained
    models, and in a private network attach to the stack's VPC. The input is read through the
    group's "data" policy (mlops_infra/access.py lists batch inputs)."""
    sm = f"arn:{partition}:sagemaker:{region}:{account_id}"
    logs = f"arn:{partition}:logs:{region}:{account_id}:log-group:{LOG_GROUP}"
    prefix = stack_prefix(namer, "aws.sagemaker.transform_job")
    repositories = stack_prefix(namer, "aws.ecr.repository")
    # An unknown output bucket is reported by validate (this also sizes the policy there) and granted nothing.
    outputs = sorted({f"{policies.bucket_arn(partition, physical[m.batch.output.bucket])}/{m.batch.output.prefix}*"
                      for m in models if m.batch.output.bucket in physical})
    statements: list[dict[str, Any]] = [
        {"Sid": "RunTransformJobs", "Effect": "Allow", "Action": list(JOB_CONTROL),
         "Resource": f"{sm}:transform-job/{prefix.lower()}*"},
        {"Sid": "UseTransformLogGroup", "Effect": "Allow", "Action": list(jobs.LOGS_GROUP), "Resource": logs},
        {"Sid": "WriteTransformLogs", "Effect": "Allow", "Action": list(jobs.LOGS_STREAM),
         "Resource": f"{logs}:log-stream:{prefix}*"},
        {"Sid": "PullScoringImages", "Effect": "Allow", "Action": list(jobs.ECR_PULL), "Resource": [
            jobs.repository_arn(partition, region, account_id, f"{repositories}*-{purpose}")
            for purpose in ("serving", "training")]},
        # ecr:GetAuthorizationToken supports no resource-level permission: "*" is the only form.
        {"Sid": "LogInToEcr", "Effect": "Allow", "Action": list(jobs.ECR_LOGIN), "Resource": "*"},
        policies.key_use_statement(key_arn),
        jobs.volume_key_grant(key_arn),
        {"Sid": "WritePredictions", "Effect": "Allow", "Action": list(policies.S3_WRITE_OBJECT), "Resource": outputs},
    ]
    elsewhere = sorted({arn for m in models if (arn := _spec_repository(m, partition, region)) is not None})
    if elsewhere:
        statements.append({"Sid": "PullSpecImages", "Effect": "Allow", "Action": list(jobs.ECR_PULL),
                           "Resource": elsewhere})
    data = sorted({uri for m in models if (uri := m.batch.model_uri) and endpoints.parse_s3(uri)
                   and not endpoints.covered_by_storage_grant(uri, artifacts)})
    for i, uri in enumerate(data):
        for statement in endpoints.model_data_grant(partition, uri)["Statement"]:
            statements.append({**statement, "Sid": f"{statement['Sid']}{i}"})
    if vpc_id:
        statements += network.network_grants(partition=partition, region=region, account_id=account_id, vpc_id=vpc_id)
    return policies.document(statements)


def _spec_repository(model: Any, partition: str, region: str) -> str | None:
    chosen = scoring_image(model)
    return None if chosen is None else jobs.spec_repository_arn(partition, jobs.image_source(chosen[0], region))


def automation_grant(*, partition: str, region: str, account_id: str, pipelines: str) -> dict[str, Any]:
    """The automation identity starts the stack's batch pipelines ("<stack prefix>*-batch") and nothing else."""
    return policies.document([{
        "Sid": "StartStackBatchPipelines", "Effect": "Allow", "Action": list(triggers.START_PIPELINE),
        "Resource": triggers.pipeline_arn(partition, region, account_id, f"{pipelines}*-batch"),
    }])


# --- failures ----------------------------------------------------------------------------------
def failure_pattern(pipeline_arn: str) -> dict[str, Any]:
    """EventBridge pattern: an execution of the batch pipeline `pipeline_arn` failed."""
    return {
        "source": ["aws.sagemaker"],
        "detail-type": [PIPELINE_STATUS_EVENT],
        "detail": {"pipelineArn": [pipeline_arn], "currentPipelineExecutionStatus": list(FAILED)},
    }
