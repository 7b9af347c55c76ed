"""Where Google's auth libraries (and so pulumi-gcp) find credentials, checked before an engine run."""

from mlops_infra.backends.base import CredentialSources

CREDENTIALS = CredentialSources(
    env_groups=(
        ("GOOGLE_APPLICATION_CREDENTIALS",),
        ("GOOGLE_CREDENTIALS",),  # pulumi-gcp: the key JSON itself
        ("GOOGLE_OAUTH_ACCESS_TOKEN",),
        ("CLOUDSDK_AUTH_ACCESS_TOKEN",),
    ),
    files=(".config/gcloud/application_default_credentials.json",),
    login_hint="run `gcloud auth application-default login`, or export GOOGLE_APPLICATION_CREDENTIALS=key.json; "
    "in CI use workload identity federation (google-github-actions/auth)",
    error_markers=(
        "could not find default credentials",
        "invalid_grant",
        "Reauthentication is needed",
        "oauth2: cannot fetch token",
    ),
)
