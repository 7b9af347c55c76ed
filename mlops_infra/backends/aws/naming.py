"""How each AWS physical name is built (rules: data/cloud-name-rules.json).

Kinds and their scope of uniqueness on AWS:
- aws.s3.bucket: global per partition -> always hashed (the hash seed includes the region).
- aws.iam.role: unique per account, across regions -> the region is one of the name's words,
  so the same project/environment can be deployed to two regions of one account.
- aws.iam.policy (inline role policy): unique per role.
- aws.kms.alias, aws.cloudtrail.trail: unique per account and region.
- aws.ecr.repository, aws.sagemaker.*: unique per account and region.
- aws.sagemaker.training_job: the per-model prefix of every training job the stack starts
  (pipeline runs and one-off jobs); capped at JOB_PREFIX_MAX characters so that a one-off
  job's content hash, and the suffix SageMaker Pipelines appends, still fit in 63.
"""

from __future__ import annotations

from mlops_infra.naming import Namer, NameStyle

JOB_PREFIX_MAX = 40

STYLES = {
    "aws.s3.bucket": NameStyle(global_unique=True),
    "aws.iam.role": NameStyle(),
    "aws.iam.policy": NameStyle(),
    "aws.kms.alias": NameStyle(prefix="alias/"),
    "aws.cloudtrail.trail": NameStyle(),
    "aws.ecr.repository": NameStyle(),
    "aws.sagemaker.pipeline": NameStyle(),
    "aws.sagemaker.training_job": NameStyle(max_length=JOB_PREFIX_MAX),
    "aws.sagemaker.model_package_group": NameStyle(),
    "aws.sagemaker.mlflow_tracking_server": NameStyle(),
}


def bucket_name(namer: Namer, bucket: str) -> str:
    return namer.name("aws.s3.bucket", bucket)


def role_name(namer: Namer, role: str, region: str) -> str:
    return namer.name("aws.iam.role", role, region)


def key_alias(namer: Namer) -> str:
    return namer.name("aws.kms.alias", "key")


def trail_name(namer: Namer) -> str:
    return namer.name("aws.cloudtrail.trail", "audit")


def inline_policy_name(namer: Namer, purpose: str) -> str:
    return namer.name("aws.iam.policy", purpose)


def repository_name(namer: Namer, model: str) -> str:
    """The ECR repository a model's training image is pushed to."""
    return namer.name("aws.ecr.repository", model, "training")


def pipeline_name(namer: Namer, model: str) -> str:
    return namer.name("aws.sagemaker.pipeline", model, "training")


def job_prefix(namer: Namer, model: str) -> str:
    """What every training job of a model starts with (IAM grants name jobs by it)."""
    return namer.name("aws.sagemaker.training_job", model)


def model_package_group_name(namer: Namer, model: str) -> str:
    return namer.name("aws.sagemaker.model_package_group", model)


def tracking_server_name(namer: Namer) -> str:
    return namer.name("aws.sagemaker.mlflow_tracking_server", "mlflow")
