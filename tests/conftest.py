"""Fixtures shared by the test modules: plans of the example stacks (a module sets CLOUD = "aws" |
"gcp" | "azure") and `fake`, the recording engine behind the engine commands."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes import fake  # noqa: F401 - a fixture, offered to every test module
from tests.planning import example_plan


@pytest.fixture(scope="module")
def dev(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The plan of stacks/dev.yaml on the module's CLOUD."""
    return example_plan("dev", request.module.CLOUD)


@pytest.fixture(scope="module")
def prod(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The plan of stacks/prod.yaml on the module's CLOUD."""
    return example_plan("prod", request.module.CLOUD)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fuzz",
        type=int,
        default=0,
        metavar="N",
        help="run the property-based CLI fuzz (tests/test_fuzz.py) with N random examples per property",
    )
