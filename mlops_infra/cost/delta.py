"""`cost --against OLD.json`: what changes in the monthly estimate, in total, per model and stage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlops_infra.errors import UsageError


def load_estimate(path: Path) -> dict[str, Any]:
    from mlops_infra.cost.estimate import COST_FORMAT

    try:
        document = json.loads(path.read_text())
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsageError(f"{path} is not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != COST_FORMAT:
        raise UsageError(
            f"{path} is not a cost estimate ({COST_FORMAT})",
            hint="write one with `mlops-infra cost --json > OLD.json` on the base branch",
        )
    return document


def cost_delta(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
        keys = sorted(set(before) | set(after))
        changes = {k: round(after.get(k, 0) - before.get(k, 0), 2) for k in keys}
        return {k: v for k, v in changes.items() if v}

    def lines(document: dict[str, Any]) -> dict[str, float]:
        totals: dict[str, float] = {}
        for item in document["resources"]:
            key = f"{item['name']} ({item['sku']})"
            totals[key] = totals.get(key, 0) + item["monthly"]
        return totals

    before_unpriced = {(u["name"], u["reason"]) for u in old.get("unpriced", [])}
    after_unpriced = {(u["name"], u["reason"]) for u in new.get("unpriced", [])}
    return {
        "monthly_total": round(new["monthly_total"] - old["monthly_total"], 2),
        "always_on": round(new["always_on"] - old["always_on"], 2),
        "usage": round(new["usage"] - old["usage"], 2),
        "by_model": diff(old["by_model"], new["by_model"]),
        "by_stage": diff(old["by_stage"], new["by_stage"]),
        "resources": diff(lines(old), lines(new)),
        "newly_unpriced": [{"name": n, "reason": r} for n, r in sorted(after_unpriced - before_unpriced)],
    }


def markdown_section(*, old: dict[str, Any], new: dict[str, Any], delta: dict[str, Any]) -> tuple[str, str]:
    """The pull-request comment's cost section: (title, Markdown body) of `delta` = cost_delta(old, new)."""
    currency = new["currency"]

    def money(value: float, *, signed: bool = False) -> str:
        return f"{value:+,.2f}" if signed else f"{value:,.2f}"

    rows = [
        "| | before | after | change |",
        "|---|---:|---:|---:|",
        f"| **monthly total** | {money(old['monthly_total'])} | {money(new['monthly_total'])} | "
        f"**{money(delta['monthly_total'], signed=True)}** |",
        f"| always on | {money(old['always_on'])} | {money(new['always_on'])} | {money(delta['always_on'], signed=True)} |",
        f"| usage (assumed) | {money(old['usage'])} | {money(new['usage'])} | {money(delta['usage'], signed=True)} |",
    ]
    for model, change in delta["by_model"].items():
        rows.append(
            f"| model `{model}` | {money(old['by_model'].get(model, 0))} | {money(new['by_model'].get(model, 0))} | "
            f"{money(change, signed=True)} |"
        )
    body = [f"Estimated {currency} per month, offline, from the price book (`mlops-infra cost`).", "", *rows]
    if delta["resources"]:
        body += ["", "Changed lines:", ""]
        body += [f"- `{name}`: {money(change, signed=True)}" for name, change in delta["resources"].items()]
    unpriced = new.get("unpriced", [])
    if delta["newly_unpriced"]:
        body += ["", "Newly unpriced (not counted: the real cost is higher):", ""]
        body += [f"- `{u['name']}`: {u['reason']}" for u in delta["newly_unpriced"]]
    elif unpriced:
        body += ["", f"{len(unpriced)} resource(s) stay unpriced and are not counted (`mlops-infra cost` lists them)."]
    sources = ", ".join(f"{p['table']} ({p['as_of']})" for p in new.get("prices", []))
    if sources:
        body += ["", f"Prices: {sources}."]
    return "Monthly cost", "\n".join(body)
