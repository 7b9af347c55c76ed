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
        ({"Owner": "ml"}, "not valid on every cloud", ("tags", "Owner", "[key]")),
        ({"owner": "ML Platform"}, "value is not valid", ("tags", "owner")),
        ({"aws-team": "x"}, "reserved prefix", ("tags", "aws-team", "[key]")),
        ({"mlops-stage": "x"}, "reserved prefix", ("tags", "mlops-stage", "[key]")),
        ({"owner": "x" * 64}, "value is not valid", ("tags", "owner")),
        ({"k" * 64: "x"}, "not valid on every cloud", ("tags", "k" * 64, "[key]")),
        ({"1key": "x"}, "not valid on every cloud", ("tags", "1key", "[key]")),
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
