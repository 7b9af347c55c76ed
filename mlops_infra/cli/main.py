"""Command-line interface: thin commands over mlops_infra.api, one top-level error handler."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable

import click

from mlops_infra import __version__
from mlops_infra.cli.output import echo_err, emit_json, error_text, problems_summary, render_problems, write_failure



class CloudChoice(click.Choice):
    """--cloud: the backend registry's clouds, read when a command parses (adding one is a folder)."""

    def __init__(self) -> None:
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:
        from mlops_infra.backends import names

        return names()

    @choices.setter
    def choices(self, value: Any) -> None:
        pass  # click sets it in __init__; the registry is the one list


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(ctx.params.get("debug")) or os.environ.get("MLOPS_INFRA_DEBUG") == "1"
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as exc:  # noqa: BLE001 - the one place errors become exit codes
            if debug:
                raise
            _handle(exc, ctx)


def _handle(exc: Exception, ctx: click.Context) -> None:
    """Report `exc` and exit with its code; a report that cannot be written is given up quietly."""
    from mlops_infra.errors import MlopsInfraError

    failed = write_failure(exc)
    if failed is not None:
        exc = MlopsInfraError(failed[0], hint=failed[1])
        ctx.meta["json"] = False  # stdout, where the JSON error would go, is silenced
    try:
        _report(exc, ctx)
    except OSError as second:
        write_failure(second)  # stdout or stderr is gone: nothing left to tell anyone
    ctx.exit(_exit_code(exc))


def _exit_code(exc: Exception) -> int:
    from mlops_infra.errors import MlopsInfraError

    return exc.exit_code if isinstance(exc, MlopsInfraError) else 1


def _report(exc: Exception, ctx: click.Context) -> None:
    from mlops_infra.errors import MlopsInfraError, SpecInvalid

    as_json = bool(ctx.meta.get("json"))
    if isinstance(exc, SpecInvalid):
        render_problems(exc.problems + exc.warnings)
        where = exc.subject or (exc.problems[0].file if exc.problems and exc.problems[0].file else "the spec")
        echo_err(error_text(problems_summary(exc.total, len(exc.warnings), where)))
        if as_json:
            emit_json(
                {
                    "format": "mlops-infra/error/v1",
                    "error": exc.message,
                    "exit_code": exc.exit_code,
                    "problems": [p.to_dict() for p in exc.problems],
                    "warnings": [p.to_dict() for p in exc.warnings],
                }
            )
        return
    details: dict = {}
    if isinstance(exc, MlopsInfraError):
        message, hint, details = exc.message, exc.hint, exc.details
    else:
        message = f"internal error: {type(exc).__name__}: {exc}"
        hint = "this is a bug in mlops-infra; run with --debug for the traceback and report it"
    echo_err(error_text(message, hint))
    if as_json:
        emit_json(
            {"format": "mlops-infra/error/v1", "error": message, "hint": hint, "exit_code": _exit_code(exc), **details}
        )


def _json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    def mark(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        ctx.meta["json"] = value
        return value

    return click.option(
        "--json", "as_json", is_flag=True, callback=mark, expose_value=True, help="Print only JSON on stdout."
    )(fn)


def _quiet_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    def mark(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        ctx.meta["quiet"] = value or bool(ctx.meta.get("quiet"))
        return value

    return click.option(
        "--quiet", "-q", is_flag=True, callback=mark, expose_value=False, help="Hide warnings (errors always show)."
    )(fn)


def _source_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = _quiet_option(fn)
    fn = click.option("--spec", "spec_path", metavar="PATH", help="Spec file to use instead of a stack.")(fn)
    fn = click.option("--stack", metavar="NAME", help="Read stacks/NAME.yaml (default: dev).")(fn)
    return fn


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="mlops-infra")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@_quiet_option
def main(debug: bool) -> None:
    """A whole MLOps platform on AWS, GCP or Azure from one spec.

    Exit codes: 0 ok, 1 failure, 2 invalid input, 3 tooling or credentials
    missing, 4 deployment failed.
    """


@main.command()
@_source_options
@click.option(
    "--cloud", "clouds", multiple=True, type=CloudChoice(), help="Check for this cloud (repeatable; "
    "default: the spec's cloud and every cloud it configures)."
)
@_json_option
def validate(stack: str | None, spec_path: str | None, clouds: tuple[str, ...], as_json: bool) -> None:
    """Check a spec; report every problem with file, line, path and hint.

    Exits 0 when valid, 2 when not.
    """
    from mlops_infra import api

    source = api.resolve_source(stack=stack, spec=spec_path)
    result = api.validate(source=source, clouds=list(clouds) or None)
    # stderr gets the problems as text in both modes; with --json, stdout gets the result document.
    render_problems(result.problems + result.warnings)
    if not result.valid:
        echo_err(error_text(problems_summary(len(result.problems), len(result.warnings), result.file)))
    if as_json:
        emit_json(result.to_dict())
    elif result.valid:
        click.echo(f"{result.file}: valid for {', '.join(result.clouds)}")
        for cloud, stages in result.stages.items():
            missing = {s: why for s, why in stages.items() if why != "implemented"}
            if missing:
                click.echo(f"  {cloud}: not deployed yet: {', '.join(sorted(missing))}")
    if not result.valid:
        sys.exit(2)


@main.command()
@_json_option
def schema(as_json: bool) -> None:
    """Print the JSON Schema of the spec (for editors and CI)."""
    from mlops_infra import api

    emit_json(api.schema())


@main.command()
@click.argument("directory", required=False, default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--cloud", required=True, type=CloudChoice(), help="Default target cloud of the spec.")
@click.option("--project", required=True, help="Project name (a slug such as churn).")
@click.option(
    "--install-from",
    metavar="SOURCE",
    help="Where CI installs mlops-infra from: git+https://...@REF (pinned), a path in the project "
    "(a checkout or a .whl), or `index` (default: where this copy was installed from).",
)
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
@_json_option
def init(directory: Path, cloud: str, project: str, install_from: str | None, force: bool, as_json: bool) -> None:
    """Scaffold a ready project in DIRECTORY (default: here).

    Writes stacks/dev.yaml (commented), Pulumi.yaml and __main__.py (plain
    `pulumi up` runs the same program), README.md, .gitignore and
    .github/workflows/mlops-infra.yml (pull-request plan diff, optional preview).
    Never overwrites a file unless --force.
    """
    from mlops_infra.scaffold import init_project

    result = init_project(directory=directory, cloud=cloud, project=project, force=force, install_from=install_from)
    if as_json:
        emit_json(result.to_dict())
        return
    click.echo(f"Created {project} in {directory}:")
    for name in result.files:
        click.echo(f"  {name}")
    if result.install.requirement:
        click.echo(f"CI installs {result.install.requirement} ({result.install.origin}).")
    else:
        echo_err(
            f"note: the CI workflow does not know where to install mlops-infra from ({result.install.origin}): "
            "set the repository variable MLOPS_INFRA_INSTALL, or run init again with --install-from"
        )
    where = "" if str(directory) == "." else f"cd {directory} && "
    click.echo(f"Next: {where}mlops-infra plan --cloud {cloud}")


@main.command()
@_source_options
@click.option("--cloud", type=CloudChoice(), help="Target cloud (default: the spec's `cloud:`).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Also write the plan document here.")
@click.option(
    "--against",
    type=click.Path(dir_okay=False, path_type=Path),
    help="An older plan document: show what changes (create / update with property paths / delete).",
)
@click.option("--expect-no-changes", is_flag=True, help="With --against: exit 1 when anything changes.")
@click.option(
    "--cost-against",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --format markdown: an older `cost --json`; the comment gains the monthly cost change.",
)
@click.option(
    "--part", metavar="NAME", help="Split specs: plan only the `shared` stack, a model group's, or a model's."
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "markdown"]),
    help="text (default), json (as --json), or markdown: with --against, the pull-request comment.",
)
@_json_option
def plan(
    stack: str | None,
    spec_path: str | None,
    cloud: str | None,
    out: Path | None,
    against: Path | None,
    expect_no_changes: bool,
    cost_against: Path | None,
    part: str | None,
    output_format: str | None,
    as_json: bool,
) -> None:
    """Show the resources a spec declares, offline: no credentials, no Pulumi CLI.

    With --against OLD.json: what changes, with old and new values, whether each
    update replaces the resource, and which deletes `up` will refuse (protected).
    """
    from mlops_infra import api
    from mlops_infra.cli.plan_text import render_plan
    from mlops_infra.errors import UsageError

    if as_json and output_format not in (None, "json"):
        raise UsageError(f"--json and --format {output_format} disagree", hint="give one of them")
    output_format = "json" if as_json else output_format or "text"
    click.get_current_context().meta["json"] = output_format == "json"
    if expect_no_changes and against is None:
        raise UsageError("--expect-no-changes needs --against OLD.json", hint="plan the base branch with --out first")
    if output_format == "markdown" and against is None:
        raise UsageError("--format markdown renders a diff: it needs --against OLD.json", hint="plan the base branch with --out first")
    if cost_against is not None and output_format != "markdown":
        raise UsageError("--cost-against adds a section to the pull-request comment: it needs --format markdown",
                         hint="for the cost change alone: mlops-infra cost --against OLD-COST.json")
    source = api.resolve_source(stack=stack, spec=spec_path)
    result = api.plan(source=source, cloud=cloud, out=out, against=against, part=part)
    render_problems(result.warnings)
    if output_format == "json":
        emit_json(result.to_dict())
    elif output_format == "markdown":
        from mlops_infra.diff_markdown import MarkdownSection, render_markdown
        from mlops_infra.review import cost_of_plan

        sections = []
        if cost_against is not None:
            title, body = cost_of_plan(source=source, document=result.document, against=cost_against)
            sections.append(MarkdownSection(title=title, body=body))
        click.echo(render_markdown(result.changes, document=result.document, sections=sections), nl=False)
    elif result.changes is not None:
        from mlops_infra.diff import render_changes

        click.echo(render_changes(result.changes))
    else:
        click.echo(render_plan(result.document))
    if result.written_to and output_format == "text":
        click.echo(f"Plan document written to {result.written_to}")
    if expect_no_changes and result.changes is not None and not result.changes.empty:
        echo_err(error_text("the plan has changes and --expect-no-changes was given"))
        sys.exit(1)


def _register_engine_commands() -> None:
    from mlops_infra.cli.engine_commands import register

    register(main)


_register_engine_commands()


def _register_review_commands() -> None:
    from mlops_infra.cli.review_commands import register

    register(main)


_register_review_commands()
