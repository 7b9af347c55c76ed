"""Shared by the Azure lifecycle-stage tests: an Azure-only spec and what validate says about one."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from mlops_infra.errors import SpecInvalid
from mlops_infra.spec.problems import Problem
from mlops_infra.spec.validate import check_text
from tests.planning import BASE_SPEC


def azure_spec(**changes: Any) -> dict[str, Any]:
    """BASE_SPEC on Azure alone (the other clouds' lifecycle stages are not this test's business)."""
    raw = copy.deepcopy(BASE_SPEC)
    raw["cloud"] = "azure"
    raw["clouds"] = {"azure": raw["clouds"]["azure"]}
    raw.update(copy.deepcopy(changes))
    return raw


def validated(raw: dict[str, Any]) -> list[Problem]:
    """Every problem validate reports for Azure, errors and warnings."""
    try:
        return list(check_text(yaml.safe_dump(raw, sort_keys=False), "spec.yaml", clouds=["azure"]).warnings)
    except SpecInvalid as exc:
        return [*exc.problems, *exc.warnings]


def problems_at(raw: dict[str, Any]) -> dict[str, list[Problem]]:
    """Dotted path -> the problems there."""
    found: dict[str, list[Problem]] = {}
    for problem in validated(raw):
        found.setdefault(problem.dotted_path, []).append(problem)
    return found
