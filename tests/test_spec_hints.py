"""Every spec problem carries a hint: region typos, YAML 1.2 booleans, types, time zones, tags."""

from __future__ import annotations

import json
import re
import textwrap
from importlib import resources
from pathlib import Path

import pytest
import yaml

from mlops_infra.backends import registry
from mlops_infra.errors import SpecInvalid
from mlops_infra.spec.validate import check_text
from tests.planning import CLOUDS

ROOT = Path(__file__).resolve().parent.parent
CLOUD_BLOCKS = {
    "aws": "aws: {region: %s, account_id: \"123456789012\"}",
    "gcp": "gcp: {project: acme-ml-dev, region: %s}",
    "azure": "azure: {location: %s, subscription_id: \"00000000-0000-0000-0000-000000000000\"}",
}
FIELDS = {"aws": "clouds.aws.region", "gcp": "clouds.gcp.region", "azure": "clouds.azure.location"}


def problems_of(body: str) -> list:
    with pytest.raises(SpecInvalid) as info:
        check_text(textwrap.dedent(body), "spec.yaml")
    return info.value.problems


def spec_with(cloud: str, region: str, extra: str = "") -> str:
    return (
        f"apiVersion: mlops-infra/v1\nproject: churn\nenvironment: dev\ncloud: {cloud}\n"
        f"clouds:\n  {CLOUD_BLOCKS[cloud] % region}\n{extra}"
    )


@pytest.mark.parametrize(
    ("cloud", "typo", "meant"),
    [("aws", "us-esat-1", "us-east-1"), ("gcp", "us-centrall", "us-central1"), ("azure", "westeurop", "westeurope")],
)
def test_misspelled_region_is_caught_with_did_you_mean(cloud: str, typo: str, meant: str) -> None:
    (problem,) = problems_of(spec_with(cloud, typo))
    assert problem.dotted_path == FIELDS[cloud] and problem.line == 6
    assert typo in problem.message and "pattern" not in problem.message and "^" not in problem.message
    assert f"did you mean {meant!r}" in problem.hint and f"backends/{cloud}/regions.json" in problem.hint


def _has_region_list(cloud: str) -> bool:
    return resources.files(f"mlops_infra.backends.{cloud}").joinpath("regions.json").is_file()


# A backend without regions.json (a cluster you bring) has no region to misspell.
@pytest.mark.parametrize("cloud", [c for c in CLOUDS if _has_region_list(c)])
def test_a_region_nowhere_near_a_known_one_lists_the_known_ones(cloud: str) -> None:
    (problem,) = problems_of(spec_with(cloud, "mars"))
    assert "did you mean" not in problem.hint and "one of:" in problem.hint


@pytest.mark.parametrize("cloud", sorted(registry()))
def test_every_cloud_keeps_its_region_list_with_source_and_date(cloud: str) -> None:
    if not resources.files(f"mlops_infra.backends.{cloud}").joinpath("regions.json").is_file():
        # A cluster has no regions (Kubernetes): its settings name none either.
        settings = yaml.safe_load((ROOT / "stacks" / "dev.yaml").read_text())["clouds"][cloud]
        assert "region" not in settings and "location" not in settings
        return
    raw = json.loads(resources.files(f"mlops_infra.backends.{cloud}").joinpath("regions.json").read_text())
    assert raw["_source"].startswith("https://") and re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw["_read"])
    assert raw["_limits"] and len(raw["regions"]) >= 20
    for stack in ("dev", "prod"):
        settings = yaml.safe_load((ROOT / "stacks" / f"{stack}.yaml").read_text())["clouds"][cloud]
        assert (settings.get("region") or settings.get("location")) in raw["regions"]


def test_gcp_region_without_vertex_ai_is_refused() -> None:
    # A Google Cloud region that the Vertex AI SDK's list does not name (Querétaro).
    (problem,) = problems_of(spec_with("gcp", "northamerica-south1"))
    assert "Vertex AI region" in problem.message


def test_yaml_1_2_booleans_are_strings_and_the_hint_says_so() -> None:
    (problem,) = problems_of(spec_with("aws", "us-east-1", "governance: {audit_logs: yes}\n"))
    assert problem.dotted_path == "governance.audit_logs" and "YAML 1.2" in problem.hint and "'yes'" in problem.hint


def test_type_errors_have_hints() -> None:
    problems = problems_of(
        spec_with(
            "aws",
            "us-east-1",
            "governance: {key_rotation_days: lots}\nstorage: {buckets: [{name: raw, expire_after_days: '30'}]}\n",
        )
    )
    found = {p.dotted_path: p for p in problems}
    assert "number" in found["governance.key_rotation_days"].hint
    assert "remove the quotes" in found["storage.buckets[0].expire_after_days"].hint


def test_unknown_time_zone_has_a_did_you_mean() -> None:
    body = spec_with(
        "aws",
        "us-east-1",
        "models:\n  - name: m1\n    training: {image: 'r.io/t:1', compute: {size: cpu-small}}\n"
        "    retraining: {schedule: '0 3 * * 1', timezone: Europe/Pariss}\n",
    )
    (problem,) = problems_of(body)
    assert problem.dotted_path == "models[0].retraining.timezone" and "did you mean 'Europe/Paris'" in problem.hint


def test_tag_key_error_says_which_rule_and_how_to_fix() -> None:
    (problem,) = problems_of(spec_with("aws", "us-east-1", "tags: {Cost.Center: x}\n"))
    assert problem.message.startswith("tag key 'Cost.Center' must start with a lowercase letter")
    assert problem.hint == "write 'cost-center'"
    (problem,) = problems_of(spec_with("aws", "us-east-1", "tags: {owner: ML Platform}\n"))
    assert "' '" in problem.message and "'ml-platform'" in problem.hint


@pytest.mark.parametrize(
    "extra",
    [
        "storage: {buckets: [{name: raw, versioning: maybe}]}\n",
        "storage: {buckets: raw}\n",
        "storage: {buckets: [{name: raw, archive_after_days: -3}]}\n",
        "governance: {encryption: quantum}\n",
        "models: [{name: m1, training: {image: 'r.io/t:1', compute: {size: cpu-huge}}}]\n",
        "models: [{name: m1, training: {compute: {size: cpu-small}}}]\n",
        "monitoring: {notify: {emails: [not-an-email]}}\n",
        "tags: {owner: 42}\n",
    ],
)
def test_every_structural_problem_has_a_hint(extra: str) -> None:
    problems = problems_of(spec_with("aws", "us-east-1", extra))
    assert problems and all(p.hint for p in problems), [p.render() for p in problems]
