"""The real engine: a thin adapter over Pulumi's Automation API, with an inline program.

Defaults need no account anywhere: a local file backend under the project
(.mlops-infra/state) and the passphrase secrets provider. Every way this can
fail before the engine runs (no CLI, no passphrase, no credentials) is a
ToolingMissing with the fix; engine failures are DeployFailed with the failing
resources. Nothing here is exercised with a fake: its success path needs the
Pulumi CLI and a cloud account (see tests/test_real_cloud.py).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any, Mapping

from mlops_infra.deploy import DeployResult, OnEvent, StepEvent, Target, require_credentials, require_passphrase
from mlops_infra.errors import DeployFailed, MlopsInfraError, ToolingMissing, UsageError

INSTALL_HINT = (
    "install the Pulumi CLI (https://www.pulumi.com/docs/iac/download-install/), e.g. "
    "`curl -fsSL https://get.pulumi.com | sh`, or run `mlops-infra install-cli`"
)


def sdk_version() -> str:
    from importlib.metadata import version

    return version("pulumi")


def installed_cli_root(version: str | None = None) -> Path:
    """Where `mlops-infra install-cli` puts the CLI matching the SDK (Pulumi's own default)."""
    return Path.home() / ".pulumi" / "versions" / (version or sdk_version())


def find_cli(env: Mapping[str, str]) -> tuple[bool, str | None]:
    """(found, root): root None means `pulumi` on PATH, else install-cli's directory."""
    if shutil.which("pulumi", path=env.get("PATH")):
        return True, None
    root = installed_cli_root()
    return ((root / "bin" / "pulumi").exists(), str(root))


BROKEN_HINT = (
    "reinstall it (https://www.pulumi.com/docs/iac/download-install/), or run `mlops-infra install-cli`, which puts "
    "the CLI matching the SDK in ~/.pulumi/versions/ (used when no `pulumi` is on PATH: remove the broken one)"
)


def pulumi_command(env: Mapping[str, str]) -> Any:
    """The Pulumi CLI the engine runs, started once to see that it works.

    The SDK starts `pulumi version` itself and lets any failure through as an exception
    of its own; here a CLI that is missing or cannot run is ToolingMissing, with its output.
    """
    found, root = find_cli(env)
    if not found:
        raise ToolingMissing("the Pulumi CLI is not installed (the engine commands run it)", hint=INSTALL_HINT)
    executable = str(Path(root) / "bin" / "pulumi") if root else shutil.which("pulumi", path=env.get("PATH")) or "pulumi"
    try:
        probe = subprocess.run(
            [executable, "version"],
            capture_output=True,
            text=True,
            timeout=120,
            env={**env, "PULUMI_SKIP_UPDATE_CHECK": "true"},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolingMissing(f"the Pulumi CLI at {executable} cannot run: {exc}", hint=BROKEN_HINT) from None
    if probe.returncode != 0:
        said = _last_lines(probe.stderr + "\n" + probe.stdout) if (probe.stderr + probe.stdout).strip() else "no output"
        raise ToolingMissing(
            f"the Pulumi CLI at {executable} cannot run: `pulumi version` exited with {probe.returncode}: {said}",
            hint=BROKEN_HINT,
        )
    from pulumi import automation as auto

    try:
        return auto.PulumiCommand(root=root, skip_version_check=True)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        raise ToolingMissing(f"the Pulumi CLI at {executable} cannot run: {exc}", hint=BROKEN_HINT) from None


class AutomationEngine:
    def __init__(self, env: Mapping[str, str], home: Path | None = None, policy_files: list[str] | None = None) -> None:
        self.env = dict(env)
        self.home = home or Path.home()
        self.policy_files = policy_files  # None: the pack reads MLOPS_INFRA_POLICY
        self._shapes: dict[tuple[int, str, str], Any] = {}
        self._command: Any = None  # the Pulumi CLI, once preflight saw it run

    # --- the interface -------------------------------------------------------
    def preflight(self, target: Target, *, credentials: bool = True) -> None:
        if self._command is None:
            self._command = pulumi_command(self.env)  # found, and it runs
        require_passphrase(target, self.env)
        if credentials:
            require_credentials(target, self.env, self.home)

    def run(self, operation: str, target: Target, *, on_event: OnEvent, delete_data: bool = False) -> DeployResult:
        teardown = operation == "destroy" and delete_data
        stack = self._stack(target, teardown=teardown)
        result = DeployResult(operation=operation, target=target)
        translate = _Translator(target, result, on_event)
        try:
            if teardown:
                # Lift protect and mark buckets and repositories force-deletable first, so the
                # destroy can empty and delete them (the state's protect flags follow the program).
                stack.up(on_event=translate, color="never")
            if operation == "preview":
                packs = self._policy_packs(target, stack)
                summary = stack.preview(on_event=translate, color="never", policy_packs=packs).change_summary
            elif operation == "up":
                packs = self._policy_packs(target, stack)
                summary = stack.up(on_event=translate, color="never", policy_packs=packs).summary.resource_changes
            elif operation == "refresh":
                summary = stack.refresh(on_event=translate, color="never").summary.resource_changes
            elif operation == "destroy":
                summary = stack.destroy(
                    on_event=translate, color="never", exclude_protected=not delete_data
                ).summary.resource_changes
                result.kept = _remaining(stack)
            else:
                raise UsageError(f"unknown operation {operation!r}")
        except KeyboardInterrupt:
            _cancel(stack)
            raise MlopsInfraError(
                f"{operation} cancelled; Pulumi finished the steps in flight, so the state is consistent",
                hint="run `mlops-infra refresh` to compare the state with the cloud",
            ) from None
        except Exception as exc:  # noqa: BLE001 - engine errors become DeployFailed below
            _raise_engine_error(exc, operation, target, result)
        result.summary = {str(getattr(op, "value", op)): int(n) for op, n in (summary or {}).items()}
        if operation == "up":
            result.outputs = self.outputs(target, stack=stack)
        return result

    def inventory(self, target: Target) -> list[dict[str, Any]]:
        stack = self._stack(target)
        try:
            deployment = stack.export_stack().deployment or {}
        except Exception as exc:  # noqa: BLE001
            _raise_engine_error(exc, "read the state", target, DeployResult(operation="destroy", target=target))
        return [_inventory_entry(r) for r in deployment.get("resources", [])]

    def outputs(self, target: Target, *, stack: Any = None) -> dict[str, Any]:
        stack = stack or self._stack(target)
        try:
            values = stack.outputs()
        except Exception as exc:  # noqa: BLE001
            _raise_engine_error(exc, "outputs", target, DeployResult(operation="outputs", target=target))
        return {key: ("[secret]" if value.secret else value.value) for key, value in sorted(values.items())}

    # --- set-up --------------------------------------------------------------
    def _stack(self, target: Target, *, teardown: bool = False) -> Any:
        self.preflight(target)
        command = self._command
        from pulumi import automation as auto

        from mlops_infra.program import build_program

        if target.state_url.startswith("file://"):
            Path(target.state_url[len("file://") :]).mkdir(parents=True, exist_ok=True)
        opts = auto.LocalWorkspaceOptions(
            work_dir=str(target.project_dir),
            project_settings=auto.ProjectSettings(
                name=target.spec.project, runtime="python", backend=auto.ProjectBackend(url=target.state_url)
            ),
            secrets_provider=None if target.uses_pulumi_cloud else "passphrase",
            env_vars={k: v for k, v in self.env.items() if k.startswith(("PULUMI_", "AWS_", "GOOGLE_", "ARM_", "AZURE_"))},
            pulumi_command=command,
        )
        try:
            program = build_program(
                target.spec,
                target.cloud,
                target.part,
                shapes=self._handover_shapes(target) if target.part.is_model_stack else None,
                # Same project and backend: the short stack name resolves on every backend.
                shared_stack=target.shared_stack,
                teardown=teardown,
            )
            return auto.create_or_select_stack(
                stack_name=target.pulumi_stack, project_name=target.spec.project, program=program, opts=opts
            )
        except FileNotFoundError:
            raise ToolingMissing("the Pulumi CLI could not be started", hint=INSTALL_HINT) from None
        except Exception as exc:  # noqa: BLE001
            _raise_engine_error(exc, "select the stack", target, DeployResult(operation="init", target=target))


    def _policy_packs(self, target: Target, stack: Any) -> list[str]:
        """The rules `check` runs, as a policy pack the engine applies (mlops_infra/policy/pack_adapter.py)."""
        import sys

        from mlops_infra.policy.pack_adapter import CONTEXT_VAR, PACK_DIR, policy_files_from_env, write_context

        context = write_context(
            spec=target.spec,
            cloud=target.cloud,
            policy_files=self.policy_files if self.policy_files is not None else policy_files_from_env(self.env),
            directory=target.project_dir / ".mlops-infra" / "policy",
        )
        # The pack process runs with this interpreter, where mlops_infra and pulumi_policy live.
        stack.workspace.env_vars.update({CONTEXT_VAR: str(context), "PULUMI_PYTHON_CMD": sys.executable})
        return [str(PACK_DIR)]

    def _handover_shapes(self, target: Target) -> Any:
        """What a model stack reads from the shared one, by planning the shared part offline."""
        from mlops_infra.plan import handover_shapes

        key = (id(target.spec), target.cloud, target.stack)
        if key not in self._shapes:
            self._shapes[key] = handover_shapes(target.spec, target.cloud, stack=target.stack)
        return self._shapes[key]


class _Translator:
    """Pulumi engine events -> neutral StepEvents, for the live display and the result document."""

    def __init__(self, target: Target, result: DeployResult, on_event: OnEvent) -> None:
        self.target, self.result, self.on_event = target, result, on_event

    def __call__(self, event: Any) -> None:
        from mlops_infra.plan import stage_of

        if event.resource_pre_event is not None:
            self._step("start", event.resource_pre_event.metadata, stage_of)
        elif event.res_outputs_event is not None:
            self._step("done", event.res_outputs_event.metadata, stage_of)
        elif event.res_op_failed_event is not None:
            self._step("failed", event.res_op_failed_event.metadata, stage_of)
        elif event.diagnostic_event is not None:
            diag = event.diagnostic_event
            if diag.severity in ("error", "warning") and not diag.ephemeral:
                item = StepEvent(
                    kind="diagnostic",
                    name=(diag.urn or "").rsplit("::", 1)[-1],
                    message=diag.message.strip(),
                    severity=diag.severity,
                )
                self.result.diagnostics.append(item)
                self.on_event(item)

    def _step(self, kind: str, meta: Any, stage_of: Any) -> None:
        op = str(getattr(meta.op, "value", meta.op))
        item = StepEvent(
            kind=kind,
            name=meta.urn.rsplit("::", 1)[-1],
            type=meta.type,
            stage=stage_of(meta.urn, meta.type, self.target.cloud),
            op=op,
            diffs=tuple(meta.diffs or ()),
        )
        if kind != "start":
            self.result.steps.append(item)
            if kind == "failed":
                self.result.failed = True
        self.on_event(item)


def _raise_engine_error(exc: Exception, operation: str, target: Target, result: DeployResult) -> None:
    from pulumi import automation as auto

    from mlops_infra.backends import get_backend

    if isinstance(exc, MlopsInfraError):
        raise exc
    text = str(exc)
    if isinstance(exc, auto.ConcurrentUpdateError):
        raise DeployFailed(
            f"{operation}: another update of {target.pulumi_stack} is running (the state is locked)",
            hint="wait for it, or if it died, run `pulumi cancel` in the project",
        ) from None
    if get_backend(target.cloud).is_credential_error(text):
        raise ToolingMissing(
            f"{operation}: {get_backend(target.cloud).display_name} rejected the credentials (missing or expired)",
            hint=get_backend(target.cloud).login_hint,
        ) from None
    failed = sorted({s.name for s in result.steps if s.kind == "failed"})
    errors = [d.message for d in result.diagnostics if d.severity == "error"]
    detail = "; ".join(errors[:3]) or _last_lines(text)
    where = f" ({', '.join(failed)})" if failed else ""
    raise DeployFailed(f"{operation} failed{where}: {detail}", hint="run with --debug for the engine's full output") from None


def _last_lines(text: str, count: int = 3) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " / ".join(lines[-count:]) or "the engine gave no reason"


def _remaining(stack: Any) -> list[dict[str, str]]:
    """What a destroy left in the state: the protected resources and what they need."""
    from mlops_infra.deploy import destroy_split

    deployment = stack.export_stack().deployment or {}
    _, kept = destroy_split([_inventory_entry(r) for r in deployment.get("resources", [])], delete_data=False)
    return kept


def _inventory_entry(resource: dict[str, Any]) -> dict[str, Any]:
    """A state resource in neutral words: what it is, whether it is protected, what it needs."""
    needs = [resource["parent"]] if resource.get("parent") else []
    provider = resource.get("provider") or ""
    if provider:
        needs.append(provider.rsplit("::", 1)[0])  # "<urn>::<id>"
    needs += list(resource.get("dependencies") or [])
    return {
        "urn": resource["urn"],
        "type": resource.get("type", ""),
        "custom": bool(resource.get("custom", False)),
        "protect": bool(resource.get("protect", False)),
        "needs": needs,
    }


def _cancel(stack: Any) -> None:
    try:
        stack.cancel()
    except Exception:  # noqa: BLE001 - nothing to cancel is fine
        pass
