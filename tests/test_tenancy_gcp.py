"""dev, staging and prod of one tenant in one GCP project; names unique across organizations.

Exactly one stack owns the project's singletons (Data Access audit configuration, Vertex AI's
`default` metadata store); the others reference them. Physical names never repeat between the
three stacks, and names GCP holds globally carry the project id.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_infra.backends.gcp import BACKEND
from mlops_infra.errors import SpecInvalid
from mlops_infra.plan import plan_document
from mlops_infra.spec.validate import check_file
from tests.planning import ROOT, spec_from

PROJECT = "acme-churn-shared"
AUDIT = "gcp:projects/iAMAuditConfig:IAMAuditConfig"
STORE = "gcp:vertex/aiMetadataStore:AiMetadataStore"
ENVIRONMENTS = {"dev": "external", "staging": "external", "prod": "owned"}


def _stack(environment: str, singletons: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "stacks" / "prod.yaml").read_text())
    data["environment"] = environment
    data["cloud"] = "gcp"
    data["clouds"] = {"gcp": {**data["clouds"]["gcp"], "project": PROJECT, "name_generation": 1}}
    data["governance"]["singletons"] = singletons
    return data


def _write(folder: Path, owners: dict[str, str]) -> None:
    for environment, singletons in owners.items():
        (folder / f"{environment}.yaml").write_text(yaml.safe_dump(_stack(environment, singletons), sort_keys=False))


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, dict[str, Any]]]:
    """environment -> (its validate result, its plan), all three in one folder and one project."""
    folder = tmp_path_factory.mktemp("stacks")
    _write(folder, ENVIRONMENTS)
    found = {}
    for environment in ENVIRONMENTS:
        checked = check_file(folder / f"{environment}.yaml", clouds=["gcp"])
        found[environment] = (checked, plan_document(checked.spec, "gcp", stack=environment))
    return found


def physical_names(plan: dict[str, Any]) -> set[tuple[str, ...]]:
    """Each resource's physical name: the values of its physical-name inputs, together (a managed
    folder's name is unique within its bucket, a feature's within its feature group, so each counts
    with its parent)."""
    keys = sorted(BACKEND.physical_name_inputs)
    found = set()
    for r in plan["resources"]:
        values = tuple(f"{k}={r['inputs'][k]}" for k in keys if isinstance(r["inputs"].get(k), str))
        if values and r["custom"] and not r["type"].startswith("pulumi:providers:"):
            found.add((r["type"], *values))
    return found


def test_three_stacks_in_one_project_share_no_physical_name(stacks: dict) -> None:
    names = {environment: physical_names(plan) for environment, (_, plan) in stacks.items()}
    assert all(len(n) > 40 for n in names.values())
    for a, b in (("dev", "staging"), ("dev", "prod"), ("staging", "prod")):
        assert not {n[1:] for n in names[a]} & {n[1:] for n in names[b]}, (a, b)


def test_only_the_owner_holds_the_project_singletons(stacks: dict) -> None:
    for environment, (_, plan) in stacks.items():
        owned = sorted(r["type"] for r in plan["resources"] if r["type"] in (AUDIT, STORE))
        assert owned == ([AUDIT, AUDIT, STORE] if ENVIRONMENTS[environment] == "owned" else []), environment
    # The others record their experiments in the owner's store: the same resource name.
    store = f"projects/{PROJECT}/locations/europe-west4/metadataStores/default"
    assert {plan["outputs"]["tracking"]["tracking_uri"] for _, plan in stacks.values()} == {store}
    # Each still has a TensorBoard of its own, and enables the APIs it needs (never disabled on destroy).
    for _, plan in stacks.values():
        assert [r for r in plan["resources"] if r["type"].endswith("AiTensorboard")]
        assert all(r["inputs"]["disableOnDestroy"] is False for r in plan["resources"] if r["type"].endswith("service:Service"))


def test_validate_explains_what_the_other_stacks_leave_to_the_owner(stacks: dict) -> None:
    for environment, (checked, _) in stacks.items():
        notes = [w for w in checked.warnings if w.path == ("governance", "singletons")]
        if ENVIRONMENTS[environment] == "owned":
            assert notes == []
            continue
        [note] = notes
        assert f"project {PROJECT}'s singletons" in note.message and "Data Access audit configuration" in note.message
        assert "`default` metadata store in europe-west4" in note.message and "owner's key" in note.message


def test_the_singletons_gcp_declares_name_their_project_and_region() -> None:
    spec = spec_from(_stack("prod", "owned"))
    keys = [s.key for s in BACKEND.singletons(spec, spec.settings_for("gcp"))]
    assert keys == [
        f"gcp/project/{PROJECT}/audit-config/storage.googleapis.com",
        f"gcp/project/{PROJECT}/audit-config/cloudkms.googleapis.com",
        f"gcp/project/{PROJECT}/europe-west4/metadata-store-default",
    ]
    quiet = _stack("prod", "owned")
    quiet["governance"]["audit_logs"] = False
    quiet["tracking"] = {"enabled": False}
    quiet_spec = spec_from(quiet)
    assert BACKEND.singletons(quiet_spec, quiet_spec.settings_for("gcp")) == []


def test_two_owners_in_one_project_are_refused_and_other_regions_do_not_count(tmp_path: Path) -> None:
    _write(tmp_path, {"dev": "owned", "prod": "owned"})
    with pytest.raises(SpecInvalid) as caught:
        check_file(tmp_path / "dev.yaml", clouds=["gcp"])
    problems = [p for p in caught.value.problems if p.path == ("governance", "singletons")]
    assert len(problems) == 3 and all("also owned by prod.yaml" in p.message for p in problems)
    # In another project, each owns its own.
    other = _stack("prod", "owned")
    other["clouds"]["gcp"]["project"] = "acme-churn-prod"
    (tmp_path / "prod.yaml").write_text(yaml.safe_dump(other))
    check_file(tmp_path / "dev.yaml", clouds=["gcp"])


def test_names_gcp_holds_globally_carry_the_project_id() -> None:
    """Two organizations calling their project `churn` never get the same bucket name."""
    ours, theirs = _stack("prod", "owned"), copy.deepcopy(_stack("prod", "owned"))
    theirs["clouds"]["gcp"]["project"] = "globex-ml-prod"

    def buckets(data: dict[str, Any]) -> set[str]:
        spec = spec_from(data)
        namer = BACKEND.namer(spec, spec.settings_for("gcp"))
        return {namer.name("gcp.storage.bucket", b) for b in ("raw", "features", "labels", "artifacts")}

    assert not buckets(ours) & buckets(theirs)
    assert buckets(ours) == buckets(copy.deepcopy(ours))  # deterministic
    assert all(len(name) <= 63 for name in buckets(ours) | buckets(theirs))
