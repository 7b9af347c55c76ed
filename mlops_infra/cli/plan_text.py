"""The human-readable plan: resources grouped by stage, stateful ones marked."""

from __future__ import annotations

from typing import Any


def render_plan(document: dict[str, Any]) -> str:
    resources = [r for r in document["resources"] if r.get("custom", True)]
    lines = [
        f"Plan for {document['project']} (stack {document['stack']}) on {document['cloud']}: "
        f"{len(resources)} resources",
    ]
    groups: dict[str, list[dict[str, Any]]] = {}
    for resource in resources:
        groups.setdefault(resource["stage"] or "other", []).append(resource)
    width = max((len(r["name"]) for r in resources), default=0)
    for stage in sorted(groups, key=_stage_order(document)):
        members = groups[stage]
        lines.append("")
        lines.append(f"{stage} ({len(members)})")
        for resource in members:
            mark = "  [protected]" if resource["protect"] else ""
            lines.append(f"  + {resource['name'].ljust(width)}  {resource['type']}{mark}")
    if document.get("outputs"):
        lines.append("")
        lines.append("Outputs: " + ", ".join(f"{stage}.{key}" for stage, out in document["outputs"].items() for key in out))
    return "\n".join(lines)


def _stage_order(document: dict[str, Any]) -> Any:
    from mlops_infra.stages import all_stages

    order = {"provider": -1, **{s.name: i for i, s in enumerate(all_stages())}}
    return lambda stage: (order.get(stage, 99), stage)
