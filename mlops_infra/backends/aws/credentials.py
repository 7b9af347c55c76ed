"""Where the AWS SDKs (and so pulumi-aws) find credentials, checked before an engine run."""

from mlops_infra.backends.base import CredentialSources

CREDENTIALS = CredentialSources(
    env_groups=(
        ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
        ("AWS_PROFILE",),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"),  # EKS IRSA, GitHub OIDC
        ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",),  # ECS tasks
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI",),  # EKS Pod Identity
    ),
    files=(".aws/credentials", ".aws/config"),
    login_hint="run `aws configure` or `aws sso login --profile NAME` (then export AWS_PROFILE=NAME), "
    "or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; in CI use OIDC (aws-actions/configure-aws-credentials)",
    error_markers=(
        "NoCredentialProviders",
        "no valid credential sources",
        "ExpiredToken",
        "InvalidClientTokenId",
        "failed to refresh cached credentials",
        "UnrecognizedClientException",
    ),
)
