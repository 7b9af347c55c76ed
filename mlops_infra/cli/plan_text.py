"""The human-readable plan: resources grouped by stage, stateful ones marked."""

from __future__ import annotations

from typing import Any


def render_plan(document: dict[str, Any]) -> str:
    resources = [r for r in document["resources"] if r.get("custom", True)]
    lines = [
        f"Plan for {document['project']} (stack {document['stack']}) on {document['cloud']}: "
        f"{len(resources)} resources",
    ]
    if "split" in document:
        return "\n".join(lines + _render_parts(document, resources))
    lines += _render_stages(document, resources)
    if document.get("outputs"):
        lines.append("")
        lines.append("Outputs: " + ", ".join(f"{stage}.{key}" for stage, out in document["outputs"].items() for key in out))
    return "\n".join(lines)


def _render_parts(document: dict[str, Any], resources: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for part in document["split"]["parts"]:
        mine = [r for r in resources if r["part"] == part["part"]]
        models = f": {', '.join(part['models'])}" if part["models"] else ""
        lines += ["", f"== Pulumi stack {part['pulumi_stack']} ({part['part']}{models}), {len(mine)} resources"]
        lines += _render_stages(document, mine)
    return lines


def _render_stages(document: dict[str, Any], resources: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
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
    return lines


def _stage_order(document: dict[str, Any]) -> Any:
    from mlops_infra.stages import all_stages

    order = {"provider": -1, **{s.name: i for i, s in enumerate(all_stages())}}
    return lambda stage: (order.get(stage, 99), stage)
