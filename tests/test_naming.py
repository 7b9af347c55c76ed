"""Physical names: deterministic, always within each cloud's rules, unique for distinct inputs."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_infra.backends import registry
from mlops_infra.errors import InternalError
from mlops_infra.naming import HASH_LENGTH, NameStyle, Namer, name_rules

SLUG = st.from_regex(r"[a-z](?:[a-z0-9]|-(?=[a-z0-9])){1,31}", fullmatch=True)
ALL_KINDS = sorted((cloud, kind) for cloud, b in registry().items() for kind in b.naming_styles)


def namer_for(cloud: str, project: str, environment: str) -> Namer:
    backend = registry()[cloud]
    return Namer(
        cloud=cloud, project=project, environment=environment, styles=backend.naming_styles, scope="scope-1"
    )


@pytest.mark.parametrize(("cloud", "kind"), ALL_KINDS)
def test_every_style_has_a_reference_rule(cloud: str, kind: str) -> None:
    assert kind in name_rules(), f"{cloud} names {kind} but the reference rules lack it"
    assert kind.startswith(f"{cloud}."), f"{kind} is styled by the {cloud} backend"


@pytest.mark.parametrize(("cloud", "kind"), ALL_KINDS)
@settings(max_examples=40, deadline=None)
@given(project=SLUG, environment=SLUG, part=SLUG)
def test_generated_names_obey_the_rule(cloud: str, kind: str, project: str, environment: str, part: str) -> None:
    namer = namer_for(cloud, project, environment)
    name = namer.name(kind, part, "bucket")
    rule = name_rules()[kind]
    assert rule.min <= len(name) <= rule.max
    assert re.fullmatch(rule.regex, name)
    assert name == namer_for(cloud, project, environment).name(kind, part, "bucket"), "not deterministic"


@pytest.mark.parametrize(
    ("kind", "limit"),
    [("azure.storage.account", 24), ("azure.keyvault.vault", 24), ("gcp.iam.service_account_id", 30), ("aws.s3.bucket", 63)],
)
def test_long_and_hyphen_heavy_names_fit(kind: str, limit: int) -> None:
    cloud = kind.split(".")[0]
    if kind not in registry()[cloud].naming_styles:
        pytest.skip(f"{cloud} does not generate {kind}")
    namer = namer_for(cloud, "a-very-long-project-name", "production-eu")
    names = {namer.name(kind, f"bucket-{i}-with-many-hyphens") for i in range(50)}
    assert len(names) == 50, "distinct inputs must give distinct names"
    assert all(len(n) <= limit for n in names)


def test_hash_suffix_only_when_needed() -> None:
    rule = name_rules()["aws.iam.role"]
    namer = Namer(cloud="aws", project="churn", environment="dev", styles={"aws.iam.role": NameStyle()})
    assert namer.name("aws.iam.role", "training") == "churn-dev-training"
    long = namer.name("aws.iam.role", "x" * 80)
    assert len(long) == rule.max and re.search(rf"-[0-9a-f]{{{HASH_LENGTH}}}$", long)


def test_global_unique_kinds_depend_on_scope() -> None:
    styles = {"aws.s3.bucket": NameStyle(global_unique=True)}
    a = Namer(cloud="aws", project="churn", environment="dev", styles=styles, scope="us-east-1")
    b = Namer(cloud="aws", project="churn", environment="dev", styles=styles, scope="eu-west-1")
    assert a.name("aws.s3.bucket", "raw") != b.name("aws.s3.bucket", "raw")
    assert a.name("aws.s3.bucket", "raw").startswith("churn-dev-raw-")


def test_unknown_kind_is_an_internal_error() -> None:
    namer = Namer(cloud="aws", project="churn", environment="dev", styles={})
    with pytest.raises(InternalError):
        namer.name("aws.s3.bucket", "raw")
