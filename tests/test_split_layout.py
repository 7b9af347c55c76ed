"""Split specs outside the stage modules: validation, part selection, the handover, the engine commands."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from mlops_infra import layout
from mlops_infra.cli import main
from mlops_infra.errors import DeployFailed, UsageError
from mlops_infra.spec.validate import check_text
from tests.fakes import FakeEngine
from tests.planning import BASE_SPEC, ROOT, spec_from


def _models(*names: str, **groups: str) -> list[dict[str, Any]]:
    found = []
    for name in names:
        model: dict[str, Any] = {"name": name}
        if name in groups:
            model["group"] = groups[name]
        found.append(model)
    return found


def _problems(data: dict[str, Any]) -> list[Any]:
    from mlops_infra.errors import SpecInvalid

    try:
        checked = check_text(yaml.safe_dump(data), "spec.yaml", clouds=["aws"])
    except SpecInvalid as exc:
        return [*exc.problems, *exc.warnings]
    return list(checked.warnings)


def test_split_problems_are_located() -> None:
    data = dict(BASE_SPEC, split={"enabled": True, "max_models_per_stack": 2})
    data["models"] = _models("a-model", "b-model", "c-model", "d-model", "e-model",
                             **{"b-model": "big", "c-model": "big", "d-model": "big", "e-model": "shared"})
    found = {(".".join(map(str, p.path)), p.severity): p for p in _problems(data)}
    assert "more than split.max_models_per_stack (2)" in found[("models.3.group", "error")].message
    assert "names the shared stack" in found[("models.4.group", "error")].message
    ambiguous = dict(data, models=_models("a-model", "b-model", **{"a-model": "xy", "b-model": "a-model"}))
    (problem,) = [p for p in _problems(ambiguous) if p.severity == "error"]
    assert problem.path == ("models", 1, "group") and "ambiguous" in (problem.hint or "")


def test_a_group_without_split_is_fine_it_groups_identities() -> None:
    from mlops_infra.access import reader_groups

    data = dict(BASE_SPEC, models=_models("a-model", "b-model", **{"a-model": "grp", "b-model": "grp"}))
    assert list(_problems(data)) == []
    training = {"image": "registry.example.com/train:1", "compute": {"size": "cpu-small"}, "inputs": ["raw"]}
    data["models"] = [dict(m, training=training) for m in data["models"]]
    assert [g.models for g in reader_groups(spec_from(data)).values()] == [("a-model", "b-model")]


def test_parts_and_selection() -> None:
    spec = spec_from(split={"enabled": True}, models=_models("a-model", "b-model", "c-model", **{"c-model": "b-model"}))
    parts = layout.parts(spec)
    assert [p.name for p in parts] == ["shared", "a-model", "b-model"]
    assert parts[2].models == frozenset({"b-model", "c-model"}) and not parts[2].builds_stack
    assert parts[2].pulumi_stack("prod-aws") == "prod-aws--b-model" and parts[0].pulumi_stack("prod-aws") == "prod-aws"
    assert layout.select(spec, "c-model") == [parts[2]]
    with pytest.raises(UsageError, match="no such part"):
        layout.select(spec, "nope")
    with pytest.raises(UsageError, match="one stack"):
        layout.select(spec_from(), "shared")
    assert layout.parts(spec_from()) == [layout.WHOLE]


def test_handover_round_trip_keeps_constants_and_reads_outputs() -> None:
    import pulumi

    from mlops_infra.stages.governance import GovernanceOutputs, Identity
    from mlops_infra.wire import Handover

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        arn = pulumi.Output.from_input("arn:key")
        value = GovernanceOutputs(key_id=arn, identities={"training": Identity("training", "role-t", arn)},
                                  scope=["aws", arn, 3])
        shared = Handover()
        shared.record("governance", "", value)
        exported = shared.exported()
        assert sorted(exported) == ["governance.identities.training.principal", "governance.key_id",
                                    "governance.scope.1"]
        reads: list[str] = []
        model = Handover(shapes=shared.recorded_shapes(), read=lambda path: reads.append(path) or f"<{path}>")
        rebuilt = model.fetch("governance", "")
        assert rebuilt.key_id == "<governance.key_id>" and rebuilt.scope[0] == "aws"
        assert rebuilt.identities["training"] == Identity("training", "role-t", "<governance.identities.training.principal>")
        assert rebuilt.scope == ["aws", "<governance.scope.1>", 3]
        with pytest.raises(Exception, match="hands over no 'monitoring.topic'"):
            model.fetch("monitoring", "topic")
    finally:
        from mlops_infra.plan import reset_runtime

        reset_runtime(loop)


def test_a_resource_cannot_cross_stacks() -> None:
    from mlops_infra.wire import shape_of

    class NotAValue:
        pass

    with pytest.raises(Exception, match="cannot hand over a NotAValue"):
        shape_of({"x": NotAValue()}, "monitoring.topic")


def test_a_model_stack_reads_the_shared_stack_through_a_stack_reference() -> None:
    """The real-engine reader: the values come from the StackReference's `handover` output."""
    import pulumi

    from mlops_infra.layout import Part
    from mlops_infra.plan import _make_monitor, handover_shapes, reset_runtime
    from mlops_infra.program import build_program

    trained = {"name": "a-model", "training": {"image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/t:1", "inputs": ["raw"], "compute": {"size": "cpu-small"}}}
    spec = spec_from(split={"enabled": True}, models=[trained])
    shapes = handover_shapes(spec, "aws", stack="dev")
    seen: dict[str, Any] = {}

    class Mocks(pulumi.runtime.Mocks):
        def new_resource(self, args: Any) -> tuple[str, dict]:
            if args.typ == "pulumi:pulumi:StackReference":
                seen["stack"] = args.inputs["name"]
                handed = {"governance.key_id": "arn:aws:kms:us-east-1:1:key/k"}
                return args.name, {"name": args.inputs["name"], "outputs": {"handover": handed}, "secret_output_names": []}
            seen[args.name] = args.inputs
            return args.name, dict(args.inputs)

        def call(self, args: Any) -> tuple[dict, list]:
            return {"accountId": "123456789012", "partition": "aws"}, []

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        mocks = Mocks()
        pulumi.runtime.set_mocks(mocks, project="churn", stack="dev--a-model", preview=False, monitor=_make_monitor(mocks))
        part = Part(name="a-model", models=frozenset({"a-model"}), builds_stack=False)
        program = build_program(spec, "aws", part, shapes=shapes, shared_stack="dev-aws")
        from pulumi.runtime.stack import run_pulumi_func

        loop.run_until_complete(run_pulumi_func(program))
    finally:
        reset_runtime(loop)
    assert seen["stack"] == "dev-aws"
    assert any(name.startswith("training-") for name in seen), "the model stack built the model's training"
    assert not any(name.startswith(("governance-", "storage-")) for name in seen), "shared resources rebuilt"
    # The key ARN reached the model's resources from the shared stack's `handover` output.
    assert any("arn:aws:kms:us-east-1:1:key/k" in json.dumps(inputs, default=str) for inputs in seen.values())


@pytest.fixture()
def split_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    data = yaml.safe_load((tmp_path / "stacks" / "prod.yaml").read_text())
    data["split"] = {"enabled": True}
    (tmp_path / "stacks" / "prod.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_up_runs_the_shared_stack_first_and_destroy_last(split_project: Path, fake: FakeEngine) -> None:
    fake.summary = {"create": 2}
    up = CliRunner().invoke(main, ["up", "--stack", "prod", "--cloud", "aws", "--yes", "--json"])
    assert up.exit_code == 0, up.stderr
    stacks = [target.pulumi_stack for _, target, _ in fake.calls]
    assert stacks == ["prod-aws", "prod-aws--churn-classifier", "prod-aws--ltv-regressor"]
    document = json.loads(up.stdout)
    assert [p["part"] for p in document["parts"]] == ["shared", "churn-classifier", "ltv-regressor"]
    assert document["summary"] == {"create": 6} and document["ok"]
    fake.calls.clear()
    down = CliRunner().invoke(main, ["destroy", "--stack", "prod", "--cloud", "aws", "--yes"])
    assert down.exit_code == 0, down.stderr
    assert [t.pulumi_stack for _, t, _ in fake.calls] == list(reversed(stacks))


def test_one_part_and_a_failure_in_the_middle(split_project: Path, fake: FakeEngine) -> None:
    one = CliRunner().invoke(main, ["preview", "--stack", "prod", "--cloud", "gcp", "--part", "ltv-regressor"])
    assert one.exit_code == 0, one.stderr
    assert [t.pulumi_stack for _, t, _ in fake.calls] == ["prod-gcp--ltv-regressor"]
    fake.calls.clear()
    fake.fail = DeployFailed("up failed (storage-bucket-raw): AccessDenied")
    failed = CliRunner().invoke(main, ["up", "--stack", "prod", "--cloud", "gcp", "--yes", "--json"])
    assert failed.exit_code == 4
    document = json.loads(failed.stdout)
    assert document["format"] == "mlops-infra/error/v1" and document["error"].startswith("prod-gcp: up failed")
    assert document["parts"] == [] and document["not_run"] == [
        "prod-gcp", "prod-gcp--churn-classifier", "prod-gcp--ltv-regressor"
    ]
    bad = CliRunner().invoke(main, ["up", "--stack", "prod", "--cloud", "gcp", "--yes", "--part", "nope"])
    assert bad.exit_code == 2 and "no such part" in bad.stderr


def test_outputs_of_a_split_spec_are_per_part(split_project: Path, fake: FakeEngine) -> None:
    result = CliRunner().invoke(main, ["outputs", "--stack", "prod", "--cloud", "azure", "--json"])
    assert result.exit_code == 0, result.stderr
    assert sorted(json.loads(result.stdout)["outputs"]) == ["churn-classifier", "ltv-regressor", "shared"]


def test_plain_pulumi_refuses_a_split_spec(split_project: Path) -> None:
    import pulumi

    from mlops_infra.plan import run_offline
    from tests.test_pulumi_entry import EntryProgram

    with pytest.raises(pulumi.RunError, match="split into several Pulumi stacks"):
        run_offline(EntryProgram("aws", split_project), project="churn", stack="prod")


def test_plan_one_part_against_a_whole_split_plan(split_project: Path) -> None:
    runner = CliRunner()
    whole = runner.invoke(main, ["plan", "--stack", "prod", "--cloud", "aws", "--out", "old.json"])
    assert whole.exit_code == 0, whole.stderr
    assert "== Pulumi stack prod-aws--ltv-regressor (ltv-regressor: ltv-regressor)" in whole.stdout
    one = runner.invoke(main, ["plan", "--stack", "prod", "--cloud", "aws", "--part", "ltv-regressor",
                               "--against", "old.json", "--expect-no-changes"])
    assert one.exit_code == 0, one.stdout + one.stderr
    assert one.stdout.strip() == "No changes."


def test_the_real_adapter_builds_a_model_stack_from_the_shared_handover(
    split_project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Up to the Pulumi CLI: the model stack's program gets the shapes and the shared stack's name."""
    from pulumi import automation as auto

    from mlops_infra import api
    from mlops_infra.automation import AutomationEngine
    from tests.test_engine_commands import stub_pulumi

    bin_dir = tmp_path_factory.mktemp("bin")
    stub_pulumi(bin_dir)
    env = {"PATH": str(bin_dir), "PULUMI_CONFIG_PASSPHRASE": "x", "MLOPS_INFRA_AMBIENT_CREDENTIALS": "1"}
    monkeypatch.setenv("PATH", str(bin_dir))  # the Automation API runs `pulumi version` from PATH
    selected: dict[str, Any] = {}
    monkeypatch.setattr(auto, "create_or_select_stack", lambda **kwargs: selected.update(kwargs) or "stack")
    source = api.resolve_source(stack="prod", spec=None)
    (target,), _ = api.engine_targets(source=source, cloud="aws", backend_url=None, part="ltv-regressor")
    assert AutomationEngine(env, home=tmp_path_factory.mktemp("home"))._stack(target) == "stack"
    program = selected["program"]
    assert selected["stack_name"] == "prod-aws--ltv-regressor" and program.shared_stack == "prod-aws"
    assert program.part.models == frozenset({"ltv-regressor"}) and program.handed is None
    assert {"governance", "storage", "monitoring.topic"} <= set(program.handover.shapes)


def test_too_long_a_pulumi_stack_name_is_refused(split_project: Path, fake: FakeEngine) -> None:
    # Short enough for the stack-name rule (89 with "kubernetes" registered), too long with "--ltv-regressor".
    long_name = "p" * 85
    shutil.copy(split_project / "stacks" / "prod.yaml", split_project / "stacks" / f"{long_name}.yaml")
    result = CliRunner().invoke(main, ["preview", "--stack", long_name, "--cloud", "aws"])
    assert result.exit_code == 2 and "longer than 100 characters" in result.stderr and not fake.calls
