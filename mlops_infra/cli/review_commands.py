"""cost and check: what a spec will cost and whether it is allowed, offline, from the plan."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from mlops_infra.cli.output import echo_err, emit_json, error_text, render_problems

def register(group: click.Group) -> None:
    from mlops_infra.cli.main import CloudChoice, _json_option, _source_options

    @group.command()
    @_source_options
    @click.option("--cloud", type=CloudChoice(), help="Target cloud (default: the spec's `cloud:`).")
    @click.option(
        "--against",
        type=click.Path(dir_okay=False, path_type=Path),
        help="An older estimate (cost --json): print what changes.",
    )
    @_json_option
    def cost(stack: str | None, spec_path: str | None, cloud: str | None, against: Path | None, as_json: bool) -> None:
        """Estimate the monthly cost of a spec, offline, from its plan and the cloud's price tables."""
        from mlops_infra import api, review

        source = api.resolve_source(stack=stack, spec=spec_path)
        result, warnings = review.cost(source=source, cloud=cloud, against=against)
        render_problems(warnings)
        if as_json:
            emit_json(result.to_dict())
        else:
            click.echo(render_cost(result.document, result.delta))

    @group.command()
    @_source_options
    @click.option("--cloud", type=CloudChoice(), help="Target cloud (default: the spec's `cloud:`).")
    @click.option(
        "--policy",
        "policies",
        multiple=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="An organization policy file (repeatable).",
    )
    @_json_option
    def check(
        stack: str | None, spec_path: str | None, cloud: str | None, policies: tuple[Path, ...], as_json: bool
    ) -> None:
        """Check the plan against the security invariants and policy files, offline.

        Exits 1 when a mandatory rule fails; advisory findings only print.
        """
        from mlops_infra import api, review

        source = api.resolve_source(stack=stack, spec=spec_path)
        result, warnings = review.check(source=source, cloud=cloud, policy_files=list(policies))
        render_problems(warnings)
        if as_json:
            emit_json(result.document)
        else:
            for finding in result.findings:
                click.echo(finding.render())
            summary = result.document["summary"]
            verdict = "passed" if result.passed else "failed"
            click.echo(f"check {verdict}: {summary['mandatory']} mandatory, {summary['advisory']} advisory finding(s)")
        if not result.passed:
            if not as_json:
                echo_err(error_text("mandatory policy rules failed"))
            sys.exit(1)


def render_cost(document: dict[str, Any], delta: dict[str, Any] | None) -> str:
    currency = document["currency"]
    lines = [
        f"{document['project']}/{document['stack']} on {document['cloud']} ({document['region']}): "
        f"{document['monthly_total']} {currency}/month "
        f"(always on {document['always_on']}, usage {document['usage']})"
    ]
    for item in document["resources"]:
        where = f" [{item['model']}]" if item["model"] else ""
        lines.append(f"  {item['monthly']:>10} {item['kind']:<9} {item['name']}{where}: {item['quantity']} x {item['sku']}")
    if document["unpriced"]:
        lines.append(f"Unpriced ({len(document['unpriced'])}, not counted; the real cost is higher):")
        lines += [f"  {u['name']}: {u['reason']}" for u in document["unpriced"]]
    lines.append("Prices:")
    lines += [f"  {p['table']}: {p['source']} (as of {p['as_of']})" for p in document["prices"]]
    lines += [f"Assumption ({k}): {v}" for k, v in document["assumptions"].items()]
    if delta is not None:
        lines.append(f"Change against the older estimate: {delta['monthly_total']:+} {currency}/month")
        lines += [f"  {name}: {change:+}" for name, change in delta["by_model"].items()]
        lines += [f"  {name}: {change:+}" for name, change in delta["resources"].items()]
    return "\n".join(lines)
