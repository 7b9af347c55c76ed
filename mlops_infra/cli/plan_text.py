"""The human-readable plan: cloud resources grouped by stage, stateful ones marked.

Its counts are the plan document's summary: "N cloud resources in M stages" is
summary.total in len(summary.by_stage) stages; stage components and providers are
Pulumi's bookkeeping, listed apart and never counted.
"""

from __future__ import annotations

from typing import Any

from mlops_infra.plan import count_line, is_cloud_resource


def render_plan(document: dict[str, Any]) -> str:
    resources = [r for r in document["resources"] if is_cloud_resource(r)]
    lines = [
        f"Plan for {document['project']} (stack {document['stack']}) on {document['cloud']}: "
        f"{count_line(document['summary'])}",
    ]
    if "split" in document:
        return "\n".join(lines + _render_parts(document, resources) + _providers(document))
    lines += _render_stages(document, resources)
    lines += _providers(document)
    if document.get("outputs"):
        lines.append("")
        lines.append("Outputs: " + ", ".join(f"{stage}.{key}" for stage, out in document["outputs"].items() for key in out))
    return "\n".join(lines)


def _providers(document: dict[str, Any]) -> list[str]:
    providers = sorted({r["type"].rsplit(":", 1)[-1] for r in document["resources"] if r["type"].startswith("pulumi:providers:")})
    return ["", f"Providers: {', '.join(providers)}"] if providers else []


def _render_parts(document: dict[str, Any], resources: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for part in document["split"]["parts"]:
        mine = [r for r in resources if r["part"] == part["part"]]
        models = f": {', '.join(part['models'])}" if part["models"] else ""
        count = f"{len(mine)} cloud resource{'s' if len(mine) != 1 else ''}"
        lines += ["", f"== Pulumi stack {part['pulumi_stack']} ({part['part']}{models}), {count}"]
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

    order = {s.name: i for i, s in enumerate(all_stages())}
    return lambda stage: (order.get(stage, 99), stage)
