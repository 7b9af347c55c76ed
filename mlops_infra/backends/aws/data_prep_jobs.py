"""Data preparation as pure data: the processing request, its pipeline, failure events, grants.

No SDK here: data_prep.py renders these into the pipeline and its triggers, validate measures
nothing else, and the tests read them. A pipeline's Processing step carries the model's prep job
prefix as ProcessingJobName, which SageMaker Pipelines extends for each run (the Python SDK's
`use_custom_job_prefix`, as for the training step), so grants name jobs by the stack's prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops_infra.backends.aws import policies
from mlops_infra.backends.aws import training_jobs as jobs

PREP_STEP = "Prepare"
INPUT_PATH = "/opt/ml/processing/input"  # + /<n>: where input n is copied before the container starts
OUTPUT_PATH = "/opt/ml/processing/output"  # everything the container writes here lands under the output prefix
OUTPUT_NAME = "prepared"
LOG_GROUP = "/aws/sagemaker/ProcessingJobs"  # where SageMaker writes processing job logs
JOB_CONTROL = ("sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob", "sagemaker:StopProcessingJob",
               "sagemaker:AddTags")
PIPELINE_EVENT = "SageMaker Model Building Pipeline Execution Status Change"


@dataclass(frozen=True)
class PrepValues:
    """Everything a model's preparation job is made of, as plain values."""

    job_name: str  # the ProcessingJobName prefix Pipelines extends
    image: str
    role_arn: str
    key_arn: str
    instance_type: str
    volume_encrypted: bool
    max_runtime: int
    inputs: tuple[str, ...]  # s3 URIs
    output: str  # s3 URI
    environment: tuple[tuple[str, str], ...]
    tags: tuple[tuple[str, str], ...]
    vpc: dict[str, Any] | None = None  # a private network's VpcConfig (PrivateNetwork.vpc_config)


def cluster_config(*, instance_type: str, volume_encrypted: bool, key_arn: Any) -> dict[str, Any]:
    """One instance's ClusterConfig of a processing or monitoring job, its volume encrypted with
    the key (instance types with local NVMe storage have none to encrypt)."""
    cluster: dict[str, Any] = {"InstanceCount": 1, "InstanceType": instance_type, "VolumeSizeInGB": jobs.VOLUME_SIZE_GB}
    if volume_encrypted:
        cluster["VolumeKmsKeyId"] = key_arn
    return cluster


def network_config(vpc: dict[str, Any] | None) -> dict[str, Any]:
    """A job's NetworkConfig: isolated, encrypted between containers, in the stack's VPC when private."""
    network: dict[str, Any] = {"EnableNetworkIsolation": True, "EnableInterContainerTrafficEncryption": True}
    if vpc is not None:
        network["VpcConfig"] = {"SecurityGroupIds": list(vpc["security_group_ids"]), "Subnets": list(vpc["subnets"])}
    return network


def processing_request(v: PrepValues) -> dict[str, Any]:
    """The CreateProcessingJob request of a preparation run (the Processing step's Arguments)."""
    cluster = cluster_config(instance_type=v.instance_type, volume_encrypted=v.volume_encrypted, key_arn=v.key_arn)
    network = network_config(v.vpc)
    return {
        "ProcessingJobName": v.job_name,
        "ProcessingResources": {"ClusterConfig": cluster},
        "AppSpecification": {"ImageUri": v.image},
        "Environment": dict(v.environment),
        "RoleArn": v.role_arn,
        "StoppingCondition": {"MaxRuntimeInSeconds": v.max_runtime},
        "ProcessingInputs": [
            {"InputName": f"input-{n}", "S3Input": {
                "S3Uri": uri, "LocalPath": f"{INPUT_PATH}/{n}", "S3DataType": "S3Prefix", "S3InputMode": "File",
                "S3DataDistributionType": "FullyReplicated"}}
            for n, uri in enumerate(v.inputs)
        ],
        "ProcessingOutputConfig": {"KmsKeyId": v.key_arn, "Outputs": [{"OutputName": OUTPUT_NAME, "S3Output": {
            "S3Uri": v.output, "LocalPath": OUTPUT_PATH, "S3UploadMode": "EndOfJob"}}]},
        "NetworkConfig": network,
        "Tags": jobs.tag_list(dict(v.tags)),
    }


def pipeline_definition(v: PrepValues) -> dict[str, Any]:
    """A pipeline of one Processing step (PipelineDefinition schema 2020-12-01)."""
    return {"Version": "2020-12-01", "Metadata": {}, "Parameters": [],
            "Steps": [{"Name": PREP_STEP, "Type": "Processing", "Arguments": processing_request(v)}]}


def failed_pattern(pipeline_arn: str) -> dict[str, Any]:
    """EventBridge pattern: an execution of the pipeline `pipeline_arn` failed."""
    return {
        "source": ["aws.sagemaker"],
        "detail-type": [PIPELINE_EVENT],
        "detail": {"pipelineArn": [pipeline_arn], "currentPipelineExecutionStatus": ["Failed"]},
    }


def prep_grants(
    *, partition: str, region: str, account_id: str, job_prefix: str, key_arn: str, outputs: list[tuple[str, str]],
    repository: str | list[str] | None, network: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    """A model group identity's "dataprep" policy: run (as the pipeline) the stack's preparation
    jobs, write their logs, write exactly its models' output prefixes (bucket, prefix), pull the
    stack's preparation images (`repository`: ARN pattern, or the spec's ECR repository), use
    the key (also for job volumes) and, in a private network, the stack's VPC. Its reads come
    from the group's "data" policy (mlops_infra/access.py lists preparation inputs)."""
    sm = f"arn:{partition}:sagemaker:{region}:{account_id}"
    logs = f"arn:{partition}:logs:{region}:{account_id}:log-group:{LOG_GROUP}"
    objects = sorted({f"{policies.bucket_arn(partition, b)}/{p}*" for b, p in outputs})
    statements: list[dict[str, Any]] = [
        {"Sid": "RunPreparationJobs", "Effect": "Allow", "Action": list(JOB_CONTROL),
         "Resource": f"{sm}:processing-job/{job_prefix}*"},
        {"Sid": "UseProcessingLogGroup", "Effect": "Allow", "Action": list(jobs.LOGS_GROUP), "Resource": logs},
        {"Sid": "WriteProcessingLogs", "Effect": "Allow", "Action": list(jobs.LOGS_STREAM),
         "Resource": f"{logs}:log-stream:{job_prefix}*"},
        {"Sid": "WritePreparedData", "Effect": "Allow", "Action": list(policies.S3_WRITE_OBJECT), "Resource": objects},
        # ecr:GetAuthorizationToken supports no resource-level permission: "*" is the only form.
        {"Sid": "LogInToEcr", "Effect": "Allow", "Action": list(jobs.ECR_LOGIN), "Resource": "*"},
        policies.key_use_statement(key_arn),
        jobs.volume_key_grant(key_arn),
        *network,
    ]
    if repository is not None:
        statements.insert(1, {"Sid": "PullPreparationImages", "Effect": "Allow", "Action": list(jobs.ECR_PULL),
                              "Resource": repository})
    return policies.document(statements)


def start_grant(pipeline_arn: str) -> dict[str, Any]:
    """The automation identity's grant: start the stack's preparation pipelines (an ARN pattern)."""
    return policies.document([{"Sid": "StartPreparationPipelines", "Effect": "Allow",
                               "Action": ["sagemaker:StartPipelineExecution"], "Resource": pipeline_arn}])
