"""Several stacks in one account: exactly one owns each singleton (mlops_infra/tenancy.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlops_infra.backends import get_backend
from mlops_infra.backends.base import Singleton
from mlops_infra.errors import SpecInvalid
from mlops_infra.spec.validate import check_file
from tests.planning import BASE_SPEC


@pytest.fixture()
def one_singleton(monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS stacks claim one object per region here, whatever AWS really has."""
    backend = get_backend("aws")
    monkeypatch.setattr(
        type(backend), "singletons",
        lambda self, spec, settings: [Singleton(key=f"aws/{settings.region}/probe", what="the probe setting")],
    )


def write_stacks(folder: Path, owners: dict[str, str]) -> None:
    folder.mkdir(exist_ok=True)
    for environment, singletons in owners.items():
        data = {**BASE_SPEC, "environment": environment, "cloud": "aws", "governance": {"singletons": singletons}}
        (folder / f"{environment}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def test_two_owners_of_one_object_are_refused(tmp_path: Path, one_singleton: None) -> None:
    write_stacks(tmp_path, {"dev": "owned", "staging": "external", "prod": "owned"})
    with pytest.raises(SpecInvalid) as caught:
        check_file(tmp_path / "dev.yaml", clouds=["aws"])
    (problem,) = caught.value.problems
    assert problem.path == ("governance", "singletons") and problem.line is not None
    assert "also owned by prod.yaml" in problem.message and "external" in (problem.hint or "")


def test_one_owner_and_the_others_external_is_valid(tmp_path: Path, one_singleton: None) -> None:
    write_stacks(tmp_path, {"dev": "external", "staging": "external", "prod": "owned"})
    for environment in ("dev", "staging", "prod"):
        checked = check_file(tmp_path / f"{environment}.yaml", clouds=["aws"])
        assert not [w for w in checked.warnings if w.path == ("governance", "singletons")]


def test_leaving_an_object_nobody_owns_is_a_warning(tmp_path: Path, one_singleton: None) -> None:
    write_stacks(tmp_path, {"dev": "external"})
    (warning,) = [w for w in check_file(tmp_path / "dev.yaml", clouds=["aws"]).warnings
                  if w.path == ("governance", "singletons")]
    assert "no spec beside it owns it" in warning.message


def test_other_regions_and_broken_neighbours_do_not_count(tmp_path: Path, one_singleton: None) -> None:
    write_stacks(tmp_path, {"dev": "owned", "prod": "owned"})
    prod = yaml.safe_load((tmp_path / "prod.yaml").read_text())
    prod["clouds"]["aws"]["region"] = "eu-west-1"
    (tmp_path / "prod.yaml").write_text(yaml.safe_dump(prod))
    (tmp_path / "broken.yaml").write_text("project: [unclosed\n")
    check_file(tmp_path / "dev.yaml", clouds=["aws"])
