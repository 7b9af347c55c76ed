"""Where FakeCloud would find credentials."""

from mlops_infra.backends.base import CredentialSources

CREDENTIALS = CredentialSources(
    env_groups=(("FAKECLOUD_TOKEN",),),
    files=(".fakecloud/token",),
    login_hint="export FAKECLOUD_TOKEN",
    error_markers=("fakecloud: unauthenticated",),
)
