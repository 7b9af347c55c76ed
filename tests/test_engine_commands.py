"""preview / up / destroy / refresh / outputs: the command layer with a recording fake engine,
and the real Automation API adapter's error paths (no CLI, no passphrase, no credentials)."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlops_infra.cli import engine_commands, main
from mlops_infra.deploy import DeployResult, StepEvent, Target
from mlops_infra.errors import DeployFailed
from tests.fakes import FakeEngine

ROOT = Path(__file__).resolve().parent.parent
ENGINE_COMMANDS = [["preview"], ["up", "--yes"], ["destroy", "--yes"], ["refresh"], ["outputs"]]


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def bucket_event(kind: str, op: str = "create") -> StepEvent:
    return StepEvent(kind=kind, name="storage-bucket-raw", type="aws:s3/bucket:Bucket", stage="storage", op=op,
                     diffs=("versioning",) if op == "update" else ())


def test_up_runs_the_engine_on_one_stack_per_cloud(project: Path, fake: FakeEngine) -> None:
    fake.events = [bucket_event("start"), bucket_event("done")]
    fake.summary = {"create": 1}
    result = CliRunner().invoke(main, ["up", "--cloud", "gcp", "--yes", "--json"])
    assert result.exit_code == 0, result.stderr
    (operation, target, delete_data) = fake.calls[0]
    assert operation == "up" and target.pulumi_stack == "dev-gcp" and not delete_data
    assert target.state_url == f"file://{(project / '.mlops-infra' / 'state').resolve()}"
    document = json.loads(result.stdout)
    assert document["format"] == "mlops-infra/result/v1" and document["pulumi_stack"] == "dev-gcp"
    assert document["resources"] == [
        {"name": "storage-bucket-raw", "type": "aws:s3/bucket:Bucket", "stage": "storage", "op": "create",
         "status": "done", "changed_properties": []}
    ]
    assert "created storage-bucket-raw" in result.stderr and "by stage: storage 1" in result.stderr


def test_backend_url_is_passed_and_checked(project: Path, fake: FakeEngine) -> None:
    ok = CliRunner().invoke(main, ["preview", "--backend", "s3://state-bucket"])
    assert ok.exit_code == 0 and fake.calls[0][1].state_url == "s3://state-bucket"
    bad = CliRunner().invoke(main, ["preview", "--backend", "ftp://x"])
    assert bad.exit_code == 2 and "unsupported --backend" in bad.stderr


@pytest.mark.parametrize("operation", ["up", "destroy"])
def test_up_and_destroy_refuse_without_yes_and_terminal(project: Path, fake: FakeEngine, operation: str) -> None:
    result = CliRunner().invoke(main, [operation], input="")
    assert result.exit_code == 2 and "without --yes" in result.stderr
    assert fake.calls == []


def test_interactive_confirmation(project: Path, fake: FakeEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_commands, "stdin_is_terminal", lambda: True)
    declined = CliRunner().invoke(main, ["up"], input="n\n")
    assert declined.exit_code == 2 and fake.calls == []
    accepted = CliRunner().invoke(main, ["up"], input="y\n")
    assert accepted.exit_code == 0 and fake.calls[0][0] == "up"


def test_destroy_keeps_data_and_says_what_it_kept(project: Path, fake: FakeEngine) -> None:
    fake.kept = [{"name": "storage-bucket-raw", "type": "aws:s3/bucket:Bucket"}]
    fake.summary = {"delete": 12}
    result = CliRunner().invoke(main, ["destroy", "--yes"])
    assert result.exit_code == 0 and fake.calls[0][2] is False
    assert "Kept 1 resources: data, keys and what guards them" in result.stdout
    assert "storage-bucket-raw" in result.stdout


def test_delete_data_needs_the_stack_name_typed(project: Path, fake: FakeEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_commands, "stdin_is_terminal", lambda: True)
    wrong = CliRunner().invoke(main, ["destroy", "--delete-data"], input="yes\n")
    assert wrong.exit_code == 2 and fake.calls == []
    right = CliRunner().invoke(main, ["destroy", "--delete-data"], input="dev-aws\n")
    assert right.exit_code == 0 and fake.calls[0][2] is True


def test_yes_never_stands_in_for_the_stack_name(project: Path, fake: FakeEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_commands, "stdin_is_terminal", lambda: True)
    typed_wrong = CliRunner().invoke(main, ["destroy", "--yes", "--delete-data"], input="y\n")
    assert typed_wrong.exit_code == 2 and "nothing was deleted" in typed_wrong.stderr and fake.calls == []
    monkeypatch.setattr(engine_commands, "stdin_is_terminal", lambda: False)
    scripted = CliRunner().invoke(main, ["destroy", "--yes", "--delete-data"], input="")
    assert scripted.exit_code == 2 and "--confirm dev-aws" in scripted.stderr and fake.calls == []


def test_confirm_names_the_stack_without_a_terminal(project: Path, fake: FakeEngine) -> None:
    wrong = CliRunner().invoke(main, ["destroy", "--delete-data", "--confirm", "prod-aws"])
    assert wrong.exit_code == 2 and "does not name this stack" in wrong.stderr and fake.calls == []
    alone = CliRunner().invoke(main, ["destroy", "--confirm", "dev-aws"])
    assert alone.exit_code == 2 and "only applies with --delete-data" in alone.stderr and fake.calls == []
    right = CliRunner().invoke(main, ["destroy", "--delete-data", "--confirm", "dev-aws"])
    assert right.exit_code == 0, right.stderr
    assert [(op, t.pulumi_stack, data) for op, t, data in fake.calls] == [("destroy", "dev-aws", True)]


def test_checks_that_can_fail_come_before_the_question(
    project: Path, fake: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlops_infra.errors import ToolingMissing

    monkeypatch.setattr(engine_commands, "stdin_is_terminal", lambda: True)
    fake.missing = ToolingMissing("no AWS credentials found for `aws`", hint="aws sso login")
    for args in (["up"], ["destroy"], ["destroy", "--delete-data"]):
        result = CliRunner().invoke(main, args, input="y\n")
        assert result.exit_code == 3 and "no AWS credentials" in result.stderr, args
        assert "?" not in result.stderr and "Type the stack name" not in result.stderr, args
    assert fake.calls == []


def state_entry(name: str, type_: str, *, protect: bool = False, needs: tuple[str, ...] = (), custom: bool = True) -> dict:
    return {"urn": f"urn:pulumi:dev-aws::churn::{type_}::{name}", "type": type_, "custom": custom,
            "protect": protect, "needs": [f"urn:pulumi:dev-aws::churn::{t}::{n}" for t, n in needs]}


STATE = [
    state_entry("storage", "mlops-infra:aws:Storage", custom=False),
    state_entry("aws", "pulumi:providers:aws"),
    state_entry("storage-bucket-raw", "aws:s3/bucket:Bucket", protect=True,
                needs=(("mlops-infra:aws:Storage", "storage"), ("pulumi:providers:aws", "aws"))),
    state_entry("storage-versioning-raw", "aws:s3/bucketVersioning:BucketVersioning", protect=True,
                needs=(("aws:s3/bucket:Bucket", "storage-bucket-raw"),)),
    state_entry("governance-key-alias", "aws:kms/alias:Alias", needs=(("mlops-infra:aws:Storage", "storage"),)),
    state_entry("serving-endpoint-churn", "aws:sagemaker/endpoint:Endpoint"),
]


def test_dry_run_lists_what_goes_and_what_stays_and_runs_nothing(project: Path, fake: FakeEngine) -> None:
    fake.state = STATE
    result = CliRunner().invoke(main, ["destroy", "--dry-run", "--json"], input="")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["dry_run"] is True and fake.calls == []
    assert [r["name"] for r in document["would_delete"]] == ["governance-key-alias", "serving-endpoint-churn"]
    assert [r["name"] for r in document["kept"]] == ["storage-bucket-raw", "storage-versioning-raw"]
    assert fake.preflights == [("dev-aws", False)]  # the state needs no cloud credentials
    everything = CliRunner().invoke(main, ["destroy", "--dry-run", "--delete-data"], input="")
    assert everything.exit_code == 0 and fake.calls == []
    assert "would delete 4, keep 0" in everything.stdout and "emptied before" in everything.stdout


def test_destroy_split_keeps_what_protected_resources_need() -> None:
    from mlops_infra.deploy import destroy_split

    provider_needed = [
        state_entry("aws", "pulumi:providers:aws"),
        state_entry("trail", "aws:cloudtrail/trail:Trail", protect=True,
                    needs=(("aws:s3/bucketPolicy:BucketPolicy", "audit-policy"),)),
        state_entry("audit-policy", "aws:s3/bucketPolicy:BucketPolicy"),
        state_entry("grant", "aws:iam/rolePolicy:RolePolicy"),
    ]
    gone, kept = destroy_split(provider_needed, delete_data=False)
    assert [k["name"] for k in kept] == ["trail", "audit-policy"] and [g["name"] for g in gone] == ["grant"]


def test_preview_expect_no_changes(project: Path, fake: FakeEngine) -> None:
    fake.summary = {"same": 20}
    assert CliRunner().invoke(main, ["preview", "--expect-no-changes"]).exit_code == 0
    fake.summary = {"same": 19, "update": 1}
    fake.events = [bucket_event("done", op="update")]
    result = CliRunner().invoke(main, ["preview", "--expect-no-changes"])
    assert result.exit_code == 1 and "updated storage-bucket-raw [versioning]" in result.stderr


def test_engine_failure_is_exit_4_without_traceback(project: Path, fake: FakeEngine) -> None:
    fake.fail = DeployFailed("up failed (storage-bucket-raw): BucketAlreadyExists")
    result = CliRunner().invoke(main, ["up", "--yes"])
    assert result.exit_code == 4 and "BucketAlreadyExists" in result.stderr and "Traceback" not in result.stderr


def test_outputs_json(project: Path, fake: FakeEngine) -> None:
    result = CliRunner().invoke(main, ["outputs", "--json"])
    assert json.loads(result.stdout)["outputs"] == {"storage": {"artifacts_uri": "s3://x"}}


def test_invalid_spec_stops_before_the_engine(project: Path, fake: FakeEngine) -> None:
    (project / "stacks" / "dev.yaml").write_text("apiVersion: mlops-infra/v1\nproject: X\nenvironment: dev\n")
    result = CliRunner().invoke(main, ["up", "--yes"])
    assert result.exit_code == 2 and fake.calls == []


def test_install_cli_is_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    installed: list[Path] = []
    monkeypatch.setattr(engine_commands, "install_pulumi_cli", installed.append)
    refused = CliRunner().invoke(main, ["install-cli"], input="")
    assert refused.exit_code == 2 and installed == []
    done = CliRunner().invoke(main, ["install-cli", "--yes"])
    from mlops_infra.automation import installed_cli_root

    assert done.exit_code == 0 and installed == [installed_cli_root()]
    assert installed[0].parent.name == "versions"
    as_json = CliRunner().invoke(main, ["install-cli", "--yes", "--json"])
    assert json.loads(as_json.stdout) == {
        "format": "mlops-infra/install-cli/v1", "version": installed[0].name, "root": str(installed[0])
    }


# --- the real adapter, for real: only what can run without a CLI, a network or an account ---------


@pytest.fixture()
def bare_env(project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """No pulumi on PATH, an empty home, no cloud or Pulumi variables."""
    home = tmp_path_factory.mktemp("home")
    bin_dir = tmp_path_factory.mktemp("bin")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PATH", str(bin_dir))
    import os

    for name in list(os.environ):
        if name.startswith(("AWS_", "GOOGLE_", "CLOUDSDK_", "ARM_", "AZURE_", "PULUMI_", "MLOPS_INFRA_")):
            monkeypatch.delenv(name)
    return bin_dir


def stub_pulumi(bin_dir: Path) -> None:
    script = bin_dir / "pulumi"
    script.write_text("#!/bin/sh\necho v3.272.0\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


@pytest.mark.parametrize("command", ENGINE_COMMANDS, ids=lambda c: c[0])
def test_no_cli_is_exit_3_with_install_hint(bare_env: Path, command: list[str]) -> None:
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 3, result.stderr
    assert "Pulumi CLI is not installed" in result.stderr and "install-cli" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_passphrase_is_exit_3(bare_env: Path) -> None:
    stub_pulumi(bare_env)
    result = CliRunner().invoke(main, ["preview"])
    assert result.exit_code == 3 and "PULUMI_CONFIG_PASSPHRASE" in result.stderr


@pytest.mark.parametrize(("cloud", "login"), [("aws", "aws configure"), ("gcp", "gcloud auth"), ("azure", "az login")])
def test_no_credentials_is_exit_3_naming_the_cloud(
    bare_env: Path, monkeypatch: pytest.MonkeyPatch, cloud: str, login: str
) -> None:
    stub_pulumi(bare_env)
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "test")
    result = CliRunner().invoke(main, ["preview", "--cloud", cloud, "--json"])
    assert result.exit_code == 3
    error = json.loads(result.stdout)
    assert f"credentials found for `{cloud}`" in error["error"] and login in error["hint"]


@pytest.mark.parametrize(
    ("cloud", "env", "files"),
    [
        ("aws", {"AWS_PROFILE": "prod"}, []),
        ("aws", {}, [".aws/credentials"]),
        ("gcp", {"GOOGLE_APPLICATION_CREDENTIALS": "/k.json"}, []),
        ("gcp", {}, [".config/gcloud/application_default_credentials.json"]),
        ("azure", {"ARM_CLIENT_ID": "a", "ARM_CLIENT_SECRET": "b", "ARM_TENANT_ID": "c"}, []),
        ("azure", {}, [".azure/azureProfile.json"]),
    ],
)
def test_credential_sources(tmp_path: Path, cloud: str, env: dict, files: list[str]) -> None:
    from mlops_infra.backends import get_backend

    backend = get_backend(cloud)
    assert not backend.has_credentials({}, tmp_path)
    assert not backend.has_credentials({"ARM_CLIENT_ID": "only-half"}, tmp_path)
    for relative in files:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("{}")
    assert backend.has_credentials(env, tmp_path)


def test_engine_errors_are_classified() -> None:
    from pulumi.automation import CommandError

    from mlops_infra.automation import _raise_engine_error
    from mlops_infra.errors import ToolingMissing
    from tests.planning import spec_from

    target = Target(spec=spec_from(), cloud="aws", stack="dev", project_dir=Path("."))
    with pytest.raises(ToolingMissing, match="rejected the credentials"):
        _raise_engine_error(CommandError("error: NoCredentialProviders: no valid providers in chain"), "up", target,
                            DeployResult(operation="up", target=target))
    result = DeployResult(operation="up", target=target)
    result.steps.append(StepEvent(kind="failed", name="storage-bucket-raw", op="create"))
    result.diagnostics.append(StepEvent(kind="diagnostic", message="BucketAlreadyExists", severity="error"))
    with pytest.raises(DeployFailed, match=r"up failed \(storage-bucket-raw\): BucketAlreadyExists"):
        _raise_engine_error(CommandError("code: 255"), "up", target, result)


def test_translator_turns_engine_events_into_steps() -> None:
    from pulumi.automation import events

    from mlops_infra.automation import _Translator
    from tests.planning import spec_from

    target = Target(spec=spec_from(), cloud="aws", stack="dev", project_dir=Path("."))
    result = DeployResult(operation="up", target=target)
    seen: list[StepEvent] = []
    urn = "urn:pulumi:dev-aws::churn::mlops-infra:aws:Storage$aws:s3/bucket:Bucket::storage-bucket-raw"
    meta = events.StepEventMetadata(op=events.OpType.UPDATE, urn=urn, type="aws:s3/bucket:Bucket", provider="p",
                                    diffs=["tags"])
    translate = _Translator(target, result, seen.append)
    translate(events.EngineEvent(sequence=1, timestamp=0, resource_pre_event=events.ResourcePreEvent(meta)))
    translate(events.EngineEvent(sequence=2, timestamp=0, res_op_failed_event=events.ResOpFailedEvent(meta, 1, 1)))
    translate(events.EngineEvent(sequence=3, timestamp=0, diagnostic_event=events.DiagnosticEvent(
        message="AccessDenied\n", color="never", severity="error", urn=urn)))
    assert [e.kind for e in seen] == ["start", "failed", "diagnostic"]
    assert seen[1].stage == "storage" and seen[1].op == "update" and seen[1].diffs == ("tags",)
    assert result.failed and result.diagnostics[0].message == "AccessDenied"


class RecordingStack:
    """Stands in for an Automation API stack: records the calls, holds a state export."""

    def __init__(self, resources: list[dict]) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.resources = resources

    def up(self, **kwargs: object) -> object:
        self.calls.append(("up", kwargs))
        return type("UpResult", (), {"summary": type("S", (), {"resource_changes": {"update": 3}})()})()

    def destroy(self, **kwargs: object) -> object:
        self.calls.append(("destroy", kwargs))
        return type("DestroyResult", (), {"summary": type("S", (), {"resource_changes": {"delete": 9}})()})()

    def export_stack(self) -> object:
        return type("Deployment", (), {"deployment": {"resources": self.resources}})()


@pytest.mark.parametrize("delete_data", [False, True])
def test_the_real_adapter_tears_down_in_an_update_before_deleting_data(
    project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory, delete_data: bool
) -> None:
    """--delete-data: an `up` of the teardown program (nothing protected, buckets force-deletable),
    then a destroy of everything; a default destroy excludes the protected resources."""
    from pulumi import automation as auto

    from mlops_infra import api
    from mlops_infra.automation import AutomationEngine

    bin_dir = tmp_path_factory.mktemp("bin")
    stub_pulumi(bin_dir)
    monkeypatch.setenv("PATH", str(bin_dir))
    env = {"PATH": str(bin_dir), "PULUMI_CONFIG_PASSPHRASE": "x", "MLOPS_INFRA_AMBIENT_CREDENTIALS": "1"}
    remaining = [] if delete_data else [
        {"urn": "urn:pulumi:dev-aws::churn::aws:s3/bucket:Bucket::storage-bucket-raw", "type": "aws:s3/bucket:Bucket",
         "custom": True, "protect": True},
    ]
    stack = RecordingStack(remaining)
    programs: list = []
    monkeypatch.setattr(auto, "create_or_select_stack", lambda **kwargs: programs.append(kwargs["program"]) or stack)
    (target,), _ = api.engine_targets(source=api.resolve_source(stack="dev", spec=None), cloud="aws", backend_url=None)
    result = AutomationEngine(env, home=tmp_path_factory.mktemp("home")).run(
        "destroy", target, on_event=lambda event: None, delete_data=delete_data
    )
    assert [p.teardown for p in programs] == [delete_data]
    assert [name for name, _ in stack.calls] == (["up", "destroy"] if delete_data else ["destroy"])
    assert stack.calls[-1][1]["exclude_protected"] is (not delete_data)
    assert result.kept == ([] if delete_data else [{"name": "storage-bucket-raw", "type": "aws:s3/bucket:Bucket"}])
@pytest.mark.parametrize("command", [["preview"], ["up", "--yes"]])
def test_policy_files_go_to_the_engine(project: Path, fake: FakeEngine, command: list[str]) -> None:
    (project / "org.yaml").write_text("apiVersion: mlops-infra/policy/v1\nnetwork: private\n")
    (project / "tags.yaml").write_text("apiVersion: mlops-infra/policy/v1\nrequired_tags: [owner]\n")
    result = CliRunner().invoke(main, [*command, "--policy", "org.yaml", "--policy", "tags.yaml"])
    assert result.exit_code == 0, result.stderr
    assert fake.policy_files == [str((project / "org.yaml").resolve()), str((project / "tags.yaml").resolve())]
    assert CliRunner().invoke(main, command).exit_code == 0 and fake.policy_files is None  # MLOPS_INFRA_POLICY's turn


def test_an_invalid_policy_file_stops_before_the_engine(project: Path, fake: FakeEngine) -> None:
    (project / "org.yaml").write_text("apiVersion: mlops-infra/policy/v1\nmax_replicas: many\n")
    result = CliRunner().invoke(main, ["up", "--yes", "--policy", "org.yaml"])
    assert result.exit_code == 2 and "org.yaml:2:" in result.stderr and fake.calls == []
    missing = CliRunner().invoke(main, ["preview", "--policy", "nowhere.yaml"])
    assert missing.exit_code == 2 and "nowhere.yaml" in missing.stderr and fake.calls == []


def test_the_engine_prefers_policy_files_to_the_variable(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from mlops_infra.automation import AutomationEngine
    from mlops_infra.policy.pack_adapter import CONTEXT_VAR, POLICY_FILES_VAR
    from tests.planning import spec_from

    target = SimpleNamespace(spec=spec_from(), cloud="aws", project_dir=tmp_path)
    for given, expected in ((["/org/b.yaml"], ["/org/b.yaml"]), (None, ["/org/a.yaml"])):
        stack = SimpleNamespace(workspace=SimpleNamespace(env_vars={}))
        engine = AutomationEngine({POLICY_FILES_VAR: "/org/a.yaml"}, home=tmp_path, policy_files=given)
        engine._policy_packs(target, stack)  # type: ignore[arg-type]
        context = json.loads(Path(stack.workspace.env_vars[CONTEXT_VAR]).read_text())
        assert context["policies"] == expected
