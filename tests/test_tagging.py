from __future__ import annotations

import pytest

from mlops_infra.tagging import MAX_USER_TAGS, check_tags, stack_tags


def test_stack_tags_adds_managed_tags_sorted() -> None:
    tags = stack_tags(project="churn", environment="dev", user={"owner": "ml"}, stage="storage")
    assert list(tags) == sorted(tags)
    assert tags["managed-by"] == "mlops-infra" and tags["mlops-stage"] == "storage" and tags["owner"] == "ml"


@pytest.mark.parametrize(
    ("tags", "fragment"),
    [
        ({"Owner": "ml"}, "not valid on every cloud"),
        ({"owner": "ML Platform"}, "value is not valid"),
        ({"aws-team": "x"}, "reserved prefix"),
        ({"owner": "x" * 64}, "value is not valid"),
        ({"k" * 64: "x"}, "not valid on every cloud"),
        ({"1key": "x"}, "not valid on every cloud"),
    ],
)
def test_invalid_tags_are_rejected_not_rewritten(tags: dict, fragment: str) -> None:
    problems = check_tags(tags)
    assert problems and fragment in problems[0].message
    assert problems[0].path[0] == "tags"


def test_too_many_tags() -> None:
    tags = {f"k{i}": "v" for i in range(MAX_USER_TAGS + 1)}
    assert any("too many tags" in p.message for p in check_tags(tags))
    assert check_tags({f"k{i}": "v" for i in range(MAX_USER_TAGS)}) == []
