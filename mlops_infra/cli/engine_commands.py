"""preview, up, destroy, refresh, outputs, install-cli: the commands that run the real Pulumi engine."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import click

from mlops_infra.cli.output import echo_err, emit_json, error_text, render_problems


def make_engine(policy_files: list[str] | None = None) -> Any:
    """The engine the commands drive; tests replace this with a recording fake.

    `policy_files` (from --policy) replace the MLOPS_INFRA_POLICY variable for the policy pack.
    """
    from mlops_infra.automation import AutomationEngine
    from mlops_infra.deploy import current_env

    return AutomationEngine(current_env(), policy_files=policy_files)


def stdin_is_terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def _engine_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    from mlops_infra.cli.main import _json_option, _source_options

    fn = _json_option(fn)
    fn = click.option(
        "--backend",
        "backend_url",
        metavar="URL",
        help="State backend: s3://, gs://, azblob://, file:// or Pulumi Cloud (default: file://.mlops-infra/state).",
    )(fn)
    from mlops_infra.cli.main import CloudChoice

    fn = click.option("--cloud", type=CloudChoice(), help="Target cloud (default: the spec's `cloud:`).")(fn)
    fn = _part_option(fn)
    return _source_options(fn)


def _part_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--part",
        metavar="NAME",
        help="Split specs: only the `shared` stack, one model group's stack, or a model's (default: all).",
    )(fn)


def _policy_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--policy",
        "policies",
        multiple=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="An organization policy file the policy pack applies (repeatable; instead of MLOPS_INFRA_POLICY).",
    )(fn)


def _policy_files(policies: tuple[Path, ...]) -> list[str] | None:
    """Absolute paths of valid policy files (the pack runs elsewhere); None leaves MLOPS_INFRA_POLICY in charge."""
    from mlops_infra.policy.organization import load_policy

    for path in policies:
        load_policy(path)  # every problem, with its line, before the engine starts (exit 2)
    return [str(path.resolve()) for path in policies] or None


def _targets(
    stack: str | None, spec_path: str | None, cloud: str | None, backend_url: str | None, part: str | None
) -> list[Any]:
    from mlops_infra import api

    source = api.resolve_source(stack=stack, spec=spec_path)
    targets, warnings = api.engine_targets(source=source, cloud=cloud, backend_url=backend_url, part=part)
    render_problems(warnings)
    return targets


def _planned_total(target: Any) -> int | None:
    from mlops_infra.plan import plan_document

    try:
        document = plan_document(target.spec, target.cloud, stack=target.stack, part=target.part.name or None)
    except Exception:  # noqa: BLE001 - the count only feeds the progress display
        return None
    # Every registration the engine reports: the plan's resources, the root stack and a model
    # stack's reference to the shared one.
    return len(document["resources"]) + 1 + (1 if target.part.is_model_stack else 0)


def _run(
    operation: str,
    targets: list[Any],
    *,
    as_json: bool,
    delete_data: bool = False,
    engine: Any = None,
    policy_files: list[str] | None = None,
) -> list[Any]:
    """Run on each Pulumi stack in order (destroy: model stacks before the shared one they read)."""
    from mlops_infra.cli.progress import Progress
    from mlops_infra.errors import MlopsInfraError

    ordered = list(reversed(targets)) if operation == "destroy" else targets
    engine = engine or make_engine(policy_files)
    results: list[Any] = []
    for target in ordered:
        # The total comes from an offline plan, made before the engine starts: made during the run
        # (in the event stream), its mock runtime would take over the inline program's and hang it.
        progress = Progress(total=None if operation == "destroy" else _planned_total(target))
        try:
            results.append(engine.run(operation, target, on_event=progress, delete_data=delete_data))
        except MlopsInfraError as exc:
            if len(ordered) > 1:
                # Stacks run in order and stop at the first failure: say what ran and what did not.
                exc.message = f"{target.pulumi_stack}: {exc.message}"
                exc.details = {
                    "parts": [r.to_dict() for r in results],
                    "not_run": [t.pulumi_stack for t in ordered[len(results) :]],
                }
            raise
        finally:
            progress.finish()
        if not as_json:
            _render(results[-1])
    if as_json:
        emit_json(results[0].to_dict() if len(ordered) == 1 and not ordered[0].part.name else _combined(operation, ordered, results))
    return results


def _combined(operation: str, targets: list[Any], results: list[Any]) -> dict[str, Any]:
    """One result document for the stacks of a split spec: each stack's document in `parts`."""
    from mlops_infra.deploy import RESULT_FORMAT

    first = targets[0]
    summary: dict[str, int] = {}
    for result in results:
        for op, count in result.summary.items():
            summary[op] = summary.get(op, 0) + count
    return {
        "format": RESULT_FORMAT,
        "operation": operation,
        "project": first.spec.project,
        "stack": first.stack,
        "cloud": first.cloud,
        "ok": not any(r.failed for r in results),
        "parts": [r.to_dict() for r in results],
        "summary": dict(sorted(summary.items())),
    }


def _render(result: Any) -> None:
    summary = ", ".join(f"{count} {op}" for op, count in sorted(result.summary.items())) or "nothing to do"
    click.echo(f"{result.operation} {result.target.spec.project}/{result.target.pulumi_stack}: {summary}")
    if result.kept:
        click.echo(
            f"Kept {len(result.kept)} resources: data, keys and what guards them "
            "(`destroy --delete-data` removes them):"
        )
        for item in result.kept:
            click.echo(f"  {item['name']}  {item['type']}")
    for key, value in result.outputs.items():
        click.echo(f"  output {key}: {value}")


def _confirm_or_refuse(operation: str, targets: list[Any], yes: bool) -> None:
    from mlops_infra.errors import UsageError

    if yes:
        return
    if not stdin_is_terminal():
        raise UsageError(
            f"refusing to {operation} without --yes: stdin is not a terminal, so nobody can confirm",
            hint=f"review `mlops-infra preview` first, then run `mlops-infra {operation} --yes`",
        )
    if not click.confirm(f"{operation.capitalize()} {_where(targets)}?", default=False, err=True):
        raise UsageError(f"not confirmed; nothing was {'deployed' if operation == 'up' else 'destroyed'}")


def _confirm_data_loss(targets: list[Any], confirm: str | None) -> None:
    """--delete-data always needs the stack name: typed at a terminal, or given as --confirm NAME.

    --yes never stands in for it: deleting data takes the one word that names what is lost.
    """
    from mlops_infra.errors import UsageError

    expected = targets[0].shared_stack
    if confirm is not None:
        if confirm != expected:
            raise UsageError(
                f"--confirm {confirm!r} does not name this stack; nothing was deleted",
                hint=f"to delete all data of {_where(targets)}, pass --confirm {expected}",
            )
        return
    if not stdin_is_terminal():
        raise UsageError(
            "refusing to delete data without the stack name: stdin is not a terminal",
            hint=f"run `mlops-infra destroy --dry-run --delete-data` to see what goes, then pass --confirm {expected}",
        )
    typed = click.prompt(
        f"This deletes ALL data of {_where(targets)}: buckets and their objects, keys, registries and their "
        "images, audit trails. Type the stack name to confirm",
        default="",
        show_default=False,
        err=True,
    )
    if typed != expected:
        raise UsageError("not confirmed; nothing was deleted")


def _where(targets: list[Any]) -> str:
    target = targets[0]
    stacks = target.pulumi_stack if len(targets) == 1 else f"{{{', '.join(t.pulumi_stack for t in targets)}}}"
    return f"{target.spec.project}/{stacks} on {target.cloud} (state: {target.state_url})"


def _preflight(targets: list[Any], *, credentials: bool = True, policy_files: list[str] | None = None) -> Any:
    """Check everything that can fail before anyone is asked to confirm; the engine to run."""
    engine = make_engine(policy_files)
    for target in targets:
        engine.preflight(target, credentials=credentials)
    return engine


@click.command()
@_engine_options
@_policy_option
@click.option("--expect-no-changes", is_flag=True, help="Exit 1 when the preview has changes.")
def preview(
    stack: str | None,
    spec_path: str | None,
    cloud: str | None,
    backend_url: str | None,
    as_json: bool,
    expect_no_changes: bool,
    part: str | None,
    policies: tuple[Path, ...],
) -> None:
    """Show what `up` would change, using the real engine and your credentials."""
    targets = _targets(stack, spec_path, cloud, backend_url, part)
    results = _run("preview", targets, as_json=as_json, policy_files=_policy_files(policies))
    if expect_no_changes and any(r.changed for r in results):
        echo_err(error_text("the preview has changes and --expect-no-changes was given"))
        sys.exit(1)


@click.command()
@_engine_options
@_policy_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (needed when stdin is not a terminal).")
def up(
    stack: str | None,
    spec_path: str | None,
    cloud: str | None,
    backend_url: str | None,
    as_json: bool,
    yes: bool,
    part: str | None,
    policies: tuple[Path, ...],
) -> None:
    """Create or update the cloud resources of a stack."""
    targets = _targets(stack, spec_path, cloud, backend_url, part)
    policy_files = _policy_files(policies)
    engine = _preflight(targets, policy_files=policy_files)
    _confirm_or_refuse("up", targets, yes)
    _run("up", targets, as_json=as_json, engine=engine)


@click.command()
@_engine_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (needed when stdin is not a terminal).")
@click.option(
    "--delete-data",
    is_flag=True,
    help="Also delete the data and what guards it (buckets emptied, keys, registries, audit trails); asks for "
    "the stack name, or takes --confirm.",
)
@click.option("--confirm", metavar="STACK", help="With --delete-data and no terminal: the stack name, e.g. dev-aws.")
@click.option("--dry-run", is_flag=True, help="Show what would be deleted and what kept; change nothing.")
def destroy(
    stack: str | None,
    spec_path: str | None,
    cloud: str | None,
    backend_url: str | None,
    as_json: bool,
    yes: bool,
    delete_data: bool,
    confirm: str | None,
    dry_run: bool,
    part: str | None,
) -> None:
    """Delete a stack's resources; data, keys and what guards them stay unless --delete-data."""
    from mlops_infra.errors import UsageError

    if confirm is not None and not delete_data:
        raise UsageError("--confirm only applies with --delete-data", hint="plain destroy takes --yes")
    targets = _targets(stack, spec_path, cloud, backend_url, part)
    if dry_run:
        engine = _preflight(targets, credentials=False)  # reads the state only
        _dry_run(engine, targets, as_json=as_json, delete_data=delete_data)
        return
    engine = _preflight(targets)
    if delete_data:
        _confirm_data_loss(targets, confirm)
    else:
        _confirm_or_refuse("destroy", targets, yes)
    _run("destroy", targets, as_json=as_json, delete_data=delete_data, engine=engine)


def _dry_run(engine: Any, targets: list[Any], *, as_json: bool, delete_data: bool) -> None:
    from mlops_infra.deploy import DeployResult, destroy_split

    results = []
    for target in reversed(targets):
        would_delete, kept = destroy_split(engine.inventory(target), delete_data=delete_data)
        results.append(
            DeployResult(operation="destroy", target=target, kept=kept, dry_run=True, would_delete=would_delete)
        )
    if as_json:
        only = len(targets) == 1 and not targets[0].part.name
        emit_json(results[0].to_dict() if only else _combined("destroy", list(reversed(targets)), results))
        return
    for result in results:
        name = f"{result.target.spec.project}/{result.target.pulumi_stack}"
        click.echo(f"destroy --dry-run {name}: would delete {len(result.would_delete)}, keep {len(result.kept)}")
        for item in result.would_delete:
            click.echo(f"  delete  {item['name']}  {item['type']}")
        for item in result.kept:
            click.echo(f"  keep    {item['name']}  {item['type']}")
    if delete_data:
        click.echo("With --delete-data, buckets and repositories are emptied before they are deleted.")


@click.command()
@_engine_options
def refresh(
    stack: str | None,
    spec_path: str | None,
    cloud: str | None,
    backend_url: str | None,
    as_json: bool,
    part: str | None,
) -> None:
    """Read the real state of the stack's resources from the cloud into the state."""
    targets = _targets(stack, spec_path, cloud, backend_url, part)
    _run("refresh", targets, as_json=as_json)


@click.command()
@_engine_options
def outputs(
    stack: str | None,
    spec_path: str | None,
    cloud: str | None,
    backend_url: str | None,
    as_json: bool,
    part: str | None,
) -> None:
    """Print the stack's outputs (bucket URIs, key id, identities, endpoints)."""
    targets = _targets(stack, spec_path, cloud, backend_url, part)
    engine = make_engine()
    target = targets[0]
    if len(targets) == 1 and not target.part.name:
        values = engine.outputs(target)
    else:  # a split spec: each Pulumi stack's outputs under its part
        values = {t.part.name: engine.outputs(t) for t in targets}
    if as_json:
        emit_json({"format": "mlops-infra/outputs/v1", "stack": target.stack, "cloud": target.cloud, "outputs": values})
        return
    for key, value in values.items():
        click.echo(f"{key}: {value}")


@click.command("install-cli")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print only JSON on stdout.")
def install_cli(yes: bool, as_json: bool) -> None:
    """Download and install the Pulumi CLI matching the installed SDK (needs the internet)."""
    from mlops_infra.automation import installed_cli_root, sdk_version
    from mlops_infra.errors import UsageError

    click.get_current_context().meta["json"] = as_json
    root = installed_cli_root()
    if not yes:
        if not stdin_is_terminal():
            raise UsageError("refusing to download without --yes: stdin is not a terminal")
        if not click.confirm(f"Download Pulumi CLI {sdk_version()} from get.pulumi.com into {root}?", err=True):
            raise UsageError("not confirmed; nothing was downloaded")
    install_pulumi_cli(root)
    if as_json:
        emit_json({"format": "mlops-infra/install-cli/v1", "version": sdk_version(), "root": str(root)})
        return
    click.echo(f"Pulumi CLI {sdk_version()} installed in {root}/bin; mlops-infra finds it there.")


def install_pulumi_cli(root: Path) -> None:
    """The only code path that downloads anything, behind an explicit command (replaced in tests)."""
    from pulumi import automation as auto

    from mlops_infra.errors import ToolingMissing

    try:
        auto.PulumiCommand.install(root=str(root))
    except Exception as exc:  # noqa: BLE001 - network or permission problems, said plainly
        raise ToolingMissing(
            f"could not install the Pulumi CLI: {exc}",
            hint="install it yourself: https://www.pulumi.com/docs/iac/download-install/",
        ) from None


def register(group: click.Group) -> None:
    for command in (preview, up, destroy, refresh, outputs, install_cli):
        group.add_command(command)
