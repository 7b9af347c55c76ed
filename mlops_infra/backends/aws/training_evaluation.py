"""The evaluation gate of a training pipeline, as pure data (no SDK here).

With models[].training.evaluation the pipeline (training.py) runs, after its Training step:
- a Processing step "Evaluate": the evaluation image (default: the training image) with the
  evaluation command as its entry point, the Training step's model artifact copied to
  /opt/ml/processing/model; whatever it writes to /opt/ml/processing/evaluation lands under
  s3://<artifacts>/models/<model>/evaluation/<execution id>/, encrypted with the stack key. It
  must write evaluation.json holding {"metrics": {"<metric>": <value>}}; with
  compare_to_approved also {"approved": {"<metric>": <value of the approved version>}} (the
  container finds the latest approved version of MODEL_PACKAGE_GROUP and reads its registered
  evaluation report: its ModelMetrics.ModelQuality.Statistics; with none approved, it writes
  the threshold). Network isolation is on unless the container must reach the registry
  (compare_to_approved), then it reaches SageMaker's API only (the stack's VPC in a private
  network).
- a Condition step "CheckEvaluation": the metric at least (maximize) or at most (minimize) the
  threshold, and with compare_to_approved at least as good as the approved version's. If it
  holds, the RegisterModel step runs (registering the evaluation report as the version's model
  quality statistics); else a Fail step ends the execution as failed, which the training stage's
  alarm reports to the stack's alert topic.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from mlops_infra.backends.aws import data_prep_jobs as prep
from mlops_infra.backends.aws import policies
from mlops_infra.backends.aws import training_jobs as jobs

EVALUATE_STEP = "Evaluate"
CONDITION_STEP = "CheckEvaluation"
FAIL_STEP = "EvaluationGateFailed"
REPORT = "EvaluationReport"  # the PropertyFile name
REPORT_FILE = "evaluation.json"
OUTPUT_NAME = "evaluation"
MODEL_PATH = "/opt/ml/processing/model"
OUTPUT_PATH = "/opt/ml/processing/evaluation"
EVALUATION_SIZE = "cpu-medium"  # the catalog's "processing" type evaluation runs on
COMPARISONS = {"maximize": "ConditionGreaterThanOrEqualTo", "minimize": "ConditionLessThanOrEqualTo"}
REGISTRY_READ = ("sagemaker:DescribeModelPackage",)
# ListModelPackages takes no resource-level permission (Service Authorization Reference, Amazon
# SageMaker): "*" is its only form.
REGISTRY_LIST = ("sagemaker:ListModelPackages",)


def evaluation_prefix(model: str) -> str:
    """Where a model's evaluation reports land (under its output prefix, which its group writes)."""
    return f"models/{model}/evaluation"


@dataclass(frozen=True)
class Gate:
    """Everything a model's evaluation gate is made of, as plain values."""

    job_name: str  # the ProcessingJobName prefix Pipelines extends
    image: str
    command: tuple[str, ...]
    metric: str
    threshold: float
    direction: str
    compare_to_approved: bool
    package_group: str
    role_arn: str
    key_arn: str
    instance_type: str
    volume_encrypted: bool
    output: str  # s3://<artifacts>/models/<model>/evaluation
    tags: tuple[tuple[str, str], ...]
    vpc: dict[str, Any] | None = None


def _evaluate_step(gate: Gate, train_step: str) -> dict[str, Any]:
    values = prep.PrepValues(
        job_name=gate.job_name, image=gate.image, role_arn=gate.role_arn, key_arn=gate.key_arn,
        instance_type=gate.instance_type, volume_encrypted=gate.volume_encrypted, max_runtime=3600,
        inputs=(), output="", environment=(("MODEL_PACKAGE_GROUP", gate.package_group),) if gate.compare_to_approved
        else (), tags=gate.tags, vpc=gate.vpc,
    )
    request = prep.processing_request(values)
    request["ProcessingInputs"] = [{"InputName": "model", "S3Input": {
        "S3Uri": {"Get": f"Steps.{train_step}.ModelArtifacts.S3ModelArtifacts"}, "LocalPath": MODEL_PATH,
        "S3DataType": "S3Prefix", "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated"}}]
    request["ProcessingOutputConfig"]["Outputs"] = [{"OutputName": OUTPUT_NAME, "S3Output": {
        "S3Uri": {"Std:Join": {"On": "/", "Values": [gate.output, {"Get": "Execution.PipelineExecutionId"}]}},
        "LocalPath": OUTPUT_PATH, "S3UploadMode": "EndOfJob"}}]
    if gate.command:
        request["AppSpecification"]["ContainerEntrypoint"] = list(gate.command)
    # The registry is reached through SageMaker's API: isolation would cut it off.
    request["NetworkConfig"]["EnableNetworkIsolation"] = not gate.compare_to_approved
    return {"Name": EVALUATE_STEP, "Type": "Processing", "Arguments": request,
            "PropertyFiles": [{"PropertyFileName": REPORT, "OutputName": OUTPUT_NAME, "FilePath": REPORT_FILE}]}


def _value(path: str) -> dict[str, Any]:
    return {"Std:JsonGet": {"PropertyFile": {"Get": f"Steps.{EVALUATE_STEP}.PropertyFiles.{REPORT}"}, "Path": path}}


def conditions(gate: Gate) -> list[dict[str, Any]]:
    kind = COMPARISONS[gate.direction]
    out = [{"Type": kind, "LeftValue": _value(f"metrics.{gate.metric}"), "RightValue": gate.threshold}]
    if gate.compare_to_approved:
        out.append({"Type": kind, "LeftValue": _value(f"metrics.{gate.metric}"),
                    "RightValue": _value(f"approved.{gate.metric}")})
    return out


def gated(definition: dict[str, Any], gate: Gate, *, train_step: str, register_step: str) -> dict[str, Any]:
    """The training pipeline definition with the gate between training and registration."""
    out = copy.deepcopy(definition)
    steps = out["Steps"]
    register = next(s for s in steps if s["Name"] == register_step)
    report = {"Std:Join": {"On": "/", "Values": [
        {"Get": f"Steps.{EVALUATE_STEP}.ProcessingOutputConfig.Outputs['{OUTPUT_NAME}'].S3Output.S3Uri"},
        REPORT_FILE]}}
    register["Arguments"]["ModelMetrics"] = {"ModelQuality": {"Statistics": {
        "ContentType": "application/json", "S3Uri": report}}}
    better = "at least" if gate.direction == "maximize" else "at most"
    fail = {"Name": FAIL_STEP, "Type": "Fail", "Arguments": {
        "ErrorMessage": f"evaluation gate: {gate.metric} is not {better} {gate.threshold}"
        + (" or not as good as the approved version's" if gate.compare_to_approved else "")
        + "; the model was not registered"}}
    condition = {"Name": CONDITION_STEP, "Type": "Condition", "Arguments": {
        "Conditions": conditions(gate), "IfSteps": [register], "ElseSteps": [fail]}}
    out["Steps"] = [s for s in steps if s["Name"] != register_step] + [_evaluate_step(gate, train_step), condition]
    return out


def gate_grants(
    *, partition: str, region: str, account_id: str, job_prefix: str, key_arn: str, package_groups: list[str],
    repository: str | None,
) -> dict[str, Any]:
    """A model group identity's "evaluation" policy: run (as the pipeline) the stack's evaluation
    jobs, write their logs, pull a separate evaluation image, use the key, and read the registry
    of its models' package groups (compare_to_approved)."""
    sm = f"arn:{partition}:sagemaker:{region}:{account_id}"
    logs = f"arn:{partition}:logs:{region}:{account_id}:log-group:{prep.LOG_GROUP}"
    statements: list[dict[str, Any]] = [
        {"Sid": "RunEvaluationJobs", "Effect": "Allow", "Action": list(prep.JOB_CONTROL),
         "Resource": f"{sm}:processing-job/{job_prefix}*"},
        {"Sid": "UseProcessingLogGroup", "Effect": "Allow", "Action": list(jobs.LOGS_GROUP), "Resource": logs},
        {"Sid": "WriteProcessingLogs", "Effect": "Allow", "Action": list(jobs.LOGS_STREAM),
         "Resource": f"{logs}:log-stream:{job_prefix}*"},
        policies.key_use_statement(key_arn),
        jobs.volume_key_grant(key_arn),
    ]
    if repository is not None:
        statements.append({"Sid": "PullEvaluationImages", "Effect": "Allow", "Action": list(jobs.ECR_PULL),
                           "Resource": repository})
    if package_groups:
        statements += [
            {"Sid": "ListVersions", "Effect": "Allow", "Action": list(REGISTRY_LIST), "Resource": "*"},
            {"Sid": "ReadApprovedVersions", "Effect": "Allow", "Action": list(REGISTRY_READ),
             "Resource": sorted(f"{sm}:model-package/{g.lower()}/*" for g in package_groups)},
        ]
    return policies.document(statements)
