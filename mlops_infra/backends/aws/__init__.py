"""AWS backend: S3, KMS, IAM and SageMaker. Importing this loads no cloud SDK."""

from mlops_infra.backends.aws.backend import AwsBackend

BACKEND = AwsBackend()
