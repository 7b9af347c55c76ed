"""Clarify explainability and bias monitoring, and model-quality monitoring, as pure data.

No SDK here. pulumi-aws has no resource for these three job definitions, so the stage declares
them through AWS Cloud Control (aws.cloudcontrol.Resource, CloudFormation types
AWS::SageMaker::Model{Explainability,Bias,Quality}JobDefinition, whose properties are the
Create*JobDefinition request's members). Each job reads the endpoint's captured requests,
compares what it computes with a baseline's constraints, and writes its report under
s3://<artifacts>/monitoring/<model>/<signal>/; executions that find violations complete
"CompletedWithViolations", which the stage's alarm counts (as for drift).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops_infra.backends.aws import data_prep_jobs as prep
from mlops_infra.backends.aws import monitoring_alarms as alarms
from mlops_infra.backends.aws import policies
from mlops_infra.backends.aws import training_jobs as jobs
from mlops_infra.facts import fact
from mlops_infra.stages.storage import ARTIFACTS

SIGNALS = ("explainability", "bias", "model_quality")
# Signal -> (CloudFormation type name, request prefix, MonitoringType of the schedule).
KINDS = {
    "explainability": ("AWS::SageMaker::ModelExplainabilityJobDefinition", "ModelExplainability",
                       "ModelExplainability"),
    "bias": ("AWS::SageMaker::ModelBiasJobDefinition", "ModelBias", "ModelBias"),
    "model_quality": ("AWS::SageMaker::ModelQualityJobDefinition", "ModelQuality", "ModelQuality"),
}
WORDS = {"explainability": "feature-attribution drift", "bias": "bias", "model_quality": "model quality"}
PROBLEM_TYPES = {"binary": "BinaryClassification", "multiclass": "MulticlassClassification", "regression": "Regression"}
CONFIG_FILE = "analysis_config.json"  # Clarify's analysis configuration (explainability and bias)
CONSTRAINTS_FILE = "constraints.json"


def clarify_image(partition: str, region: str) -> str | None:
    """The prebuilt Clarify image of a region (None where none is known: facts/clarify.json)."""
    image = fact("aws", "clarify", "image").value
    account = image["accounts"].get(region)
    if account is None:
        return None
    return f"{jobs.registry_host(partition, region, account)}/{image['repository']}:{image['tag']}"


def image_for(signal: str, partition: str, region: str) -> str | None:
    """Explainability and bias run Clarify; model quality runs Model Monitor's analyzer."""
    return alarms.analyzer_image(partition, region) if signal == "model_quality" else clarify_image(partition, region)


def baseline_prefix(signal: str, model: Any) -> tuple[str, str]:
    """(bucket, prefix) where a signal's baseline files are read: explainability and bias under
    their baseline's prefix (in a folder each, beside drift's files); model quality, which has
    no baseline data in the spec, under the model's monitoring reports (bucket ARTIFACTS: the
    artifact bucket; else a data bucket's spec name)."""
    mon = model.monitoring
    if signal == "model_quality":
        return ARTIFACTS, f"{alarms.MONITORING_PREFIX}{model.name}/model-quality/baseline/"
    ref = getattr(mon, signal).baseline
    return ref.bucket, f"{ref.prefix}{signal.replace('_', '-')}/"


def output_prefix(signal: str, model: str) -> str:
    return f"{alarms.MONITORING_PREFIX}{model}/{signal.replace('_', '-')}/"


@dataclass(frozen=True)
class SignalJob:
    """Everything one monitoring job definition is made of."""

    signal: str
    name: str
    image: str
    endpoint: Any
    baseline: Any  # s3 URI of the folder holding constraints.json (and analysis_config.json)
    output: Any  # s3 URI of the reports
    ground_truth: Any  # s3 URI of the ground-truth labels (bias, model quality), else None
    problem_type: str | None  # model quality only
    key_arn: Any
    role_arn: Any
    instance_type: str
    volume_encrypted: bool
    tags: tuple[tuple[str, str], ...] = ()
    vpc: dict[str, Any] | None = None


def definition(job: SignalJob) -> dict[str, Any]:
    """The job definition's desired state (Cloud Control), everything a Create*JobDefinition request holds."""
    prefix = KINDS[job.signal][1]
    app: dict[str, Any] = {"ImageUri": job.image}
    if job.signal == "model_quality":
        app["ProblemType"] = job.problem_type
    else:
        app["ConfigUri"] = f"{job.baseline}{CONFIG_FILE}"
    job_input: dict[str, Any] = {"EndpointInput": {
        "EndpointName": job.endpoint, "LocalPath": alarms.CAPTURE_LOCAL_PATH,
        "S3DataDistributionType": "FullyReplicated", "S3InputMode": "File"}}
    if job.ground_truth is not None:
        job_input["GroundTruthS3Input"] = {"S3Uri": job.ground_truth}
    cluster = prep.cluster_config(instance_type=job.instance_type, volume_encrypted=job.volume_encrypted,
                                  key_arn=job.key_arn)
    network = prep.network_config(job.vpc)
    return {
        "JobDefinitionName": job.name,
        f"{prefix}AppSpecification": app,
        f"{prefix}BaselineConfig": {"ConstraintsResource": {"S3Uri": f"{job.baseline}{CONSTRAINTS_FILE}"}},
        f"{prefix}JobInput": job_input,
        f"{prefix}JobOutputConfig": {"KmsKeyId": job.key_arn, "MonitoringOutputs": [{"S3Output": {
            "S3Uri": job.output, "LocalPath": alarms.OUTPUT_LOCAL_PATH, "S3UploadMode": "EndOfJob"}}]},
        "JobResources": {"ClusterConfig": cluster},
        "NetworkConfig": network,
        "RoleArn": job.role_arn,
        "StoppingCondition": {"MaxRuntimeInSeconds": alarms.MONITOR_MAX_RUNTIME},
        "Tags": jobs.tag_list(dict(job.tags)),
    }


def signal_grants(
    *, partition: str, region: str, account_id: str, artifacts: str, models: list[str], key_arn: str,
    network: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    """A model group identity's "explainability" policy: read exactly its monitored models'
    captured requests, write their reports, pull the Clarify and analyzer images, write the
    processing logs, use the key (also for job volumes) and, in a private network, the VPC.
    Baselines and ground truth are data reads of the group's "data" policy (access.py)."""
    art = policies.bucket_arn(partition, artifacts)
    images = [jobs.repository_arn(partition, region, alarms.ANALYZER_ACCOUNTS.get(region, "<none>"),
                                  alarms.ANALYZER_REPOSITORY)]
    clarify = fact("aws", "clarify", "image").value
    images.append(jobs.repository_arn(partition, region, clarify["accounts"].get(region, "<none>"),
                                      clarify["repository"]))
    logs = f"arn:{partition}:logs:{region}:{account_id}:log-group:{alarms.PROCESSING_LOG_GROUP}"
    return policies.document([
        {"Sid": "ReadCapturedRequests", "Effect": "Allow", "Action": list(policies.S3_READ_OBJECT),
         "Resource": sorted(f"{art}/{policies.CAPTURE_PREFIX}{m}/*" for m in models)},
        {"Sid": "ListCapturedRequests", "Effect": "Allow", "Action": list(policies.S3_LIST_BUCKET), "Resource": art,
         "Condition": {"StringLike": {"s3:prefix": sorted(f"{policies.CAPTURE_PREFIX}{m}/*" for m in models)}}},
        {"Sid": "WriteReports", "Effect": "Allow", "Action": [*policies.S3_WRITE_OBJECT, *policies.S3_READ_OBJECT],
         "Resource": sorted(f"{art}/{alarms.MONITORING_PREFIX}{m}/*" for m in models)},
        {"Sid": "PullMonitorImages", "Effect": "Allow", "Action": list(jobs.ECR_PULL), "Resource": images},
        # ecr:GetAuthorizationToken supports no resource-level permission: "*" is the only form.
        {"Sid": "LogInToEcr", "Effect": "Allow", "Action": list(jobs.ECR_LOGIN), "Resource": "*"},
        {"Sid": "UseProcessingLogGroup", "Effect": "Allow", "Action": list(jobs.LOGS_GROUP), "Resource": logs},
        {"Sid": "WriteProcessingLogs", "Effect": "Allow", "Action": list(jobs.LOGS_STREAM),
         "Resource": f"{logs}:log-stream:*"},
        policies.key_use_statement(key_arn),
        jobs.volume_key_grant(key_arn),
        *network,
    ])
