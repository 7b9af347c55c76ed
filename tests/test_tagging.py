from __future__ import annotations

import pytest
from pydantic import ValidationError

from mlops_infra.tagging import MAX_USER_TAGS, stack_tags
from tests.planning import BASE_SPEC, spec_from


def test_stack_tags_adds_managed_tags_sorted() -> None:
    tags = stack_tags(project="churn", environment="dev", user={"owner": "ml"}, stage="storage")
    assert list(tags) == sorted(tags)
    assert tags["managed-by"] == "mlops-infra" and tags["mlops-stage"] == "storage" and tags["owner"] == "ml"


@pytest.mark.parametrize(
    ("tags", "fragment", "loc"),
    [
        ({"Owner": "ml"}, "must start with a lowercase letter", ("tags", "Owner", "[key]")),
        ({"owner": "ML Platform"}, "GCP labels allow only lowercase", ("tags", "owner")),
        ({"aws-team": "x"}, "prefix reserved for the clouds", ("tags", "aws-team", "[key]")),
        ({"mlops-stage": "x"}, "prefix reserved for mlops-infra", ("tags", "mlops-stage", "[key]")),
        ({"owner": "x" * 64}, "GCP labels allow 63", ("tags", "owner")),
        ({"k" * 64: "x"}, "64 characters long", ("tags", "k" * 64, "[key]")),
        ({"1key": "x"}, "must start with a lowercase letter", ("tags", "1key", "[key]")),
    ],
)
def test_invalid_tags_are_rejected_not_rewritten(tags: dict, fragment: str, loc: tuple) -> None:
    with pytest.raises(ValidationError) as info:
        spec_from(BASE_SPEC, tags=tags)
    error = info.value.errors()[0]
    assert fragment in error["msg"] and error["loc"] == loc


def test_too_many_tags() -> None:
    with pytest.raises(ValidationError, match="at most 46"):
        spec_from(BASE_SPEC, tags={f"k{i}": "v" for i in range(MAX_USER_TAGS + 1)})
    assert len(spec_from(BASE_SPEC, tags={f"k{i}": "v" for i in range(MAX_USER_TAGS)}).tags) == MAX_USER_TAGS


def test_numeric_values_must_be_quoted() -> None:
    with pytest.raises(ValidationError):
        spec_from(BASE_SPEC, tags={"cost-center": 42})
