"""The pull-request comment: `plan --against OLD --format markdown`.

A summary table by stage and model, then one block per change, blocked and
data-losing changes first, each update with its old and new values. Sections
other commands contribute (the monthly cost delta of `mlops-infra cost`) are
passed in as MarkdownSection and placed after the summary table.
GitHub caps a comment at 65,536 characters: blocks beyond MAX_CHARS are
counted, not shown, and the comment says where the whole diff is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from mlops_infra.diff import UNPROTECT_HINT, Changes, Update, ordered_deletes, ordered_updates, shorten_pair
from mlops_infra.plan import count_line

MARKER = "<!-- mlops-infra-plan -->"  # CI finds its earlier comment by it
MAX_CHARS = 60_000
VALUE_WIDTH = 120
NONE = "—"


@dataclass(frozen=True)
class MarkdownSection:
    """A section another command adds to the comment, e.g. ("Monthly cost delta", table)."""

    title: str
    body: str


def render_markdown(
    changes: Changes, *, document: dict[str, Any], sections: Sequence[MarkdownSection] = ()
) -> str:
    head = [
        MARKER,
        f"### mlops-infra plan: `{document.get('project')}` stack `{document.get('stack')}` on `{document.get('cloud')}`",
        "",
    ]
    after = f"After this change: {count_line(document['summary'])}." if "summary" in document else ""
    if changes.empty:
        return "\n".join(head + [f"No changes. {after}".strip(), *_sections(sections)]) + "\n"
    lines = head + [_headline(changes.counts()), "", after, "", *_table(changes), *_sections(sections)]
    urgent, other = _blocks(changes)
    body: list[str] = []
    shown = 0
    budget = MAX_CHARS - sum(len(line) + 1 for line in lines)
    for title, blocks in (("Blocked or deleting data", urgent), ("Other changes", other)):
        if not blocks:
            continue
        body += ["", f"#### {title}", ""]
        if blocks is urgent and changes.counts()["blocked"]:
            body += [f"⛔ `up` refuses to delete or replace a protected resource: {UNPROTECT_HINT}.", ""]
        for block in blocks:
            size = sum(len(line) + 1 for line in block)
            if size > budget:
                break
            body += block
            budget -= size
            shown += 1
    total = len(urgent) + len(other)
    if shown < total:
        body += ["", f"_{total - shown} more changes are not shown here (GitHub limits a comment's length): "
                     "the job log and `--json` list every one._"]
    return "\n".join(lines + body) + "\n"


def _headline(counts: dict[str, int]) -> str:
    text = (
        f"**{counts['create']} to create · {counts['update']} to update ({counts['replace']} replaced, "
        f"{counts['replace_unknown']} unknown) · {counts['delete']} to delete**"
    )
    if counts["blocked"]:
        text += f" · ⛔ **{counts['blocked']} blocked**: `up` refuses to delete or replace a protected resource"
    if counts["data_loss"]:
        text += f" · ⚠️ **{counts['data_loss']} deleting data**"
    return text


def _table(changes: Changes) -> list[str]:
    rows: dict[tuple[str, str], dict[str, int]] = {}

    def row(item: Any) -> dict[str, int]:
        stage, model = _get(item, "stage") or "other", _get(item, "model") or NONE
        return rows.setdefault((stage, model), dict.fromkeys(("create", "update", "replace", "delete", "blocked", "loss"), 0))

    for item in changes.create:
        row(item)["create"] += 1
    for update in changes.update:
        counts = row(update)
        counts["update"] += 1
        counts["replace"] += 1 if update.replace else 0
        counts["blocked"] += 1 if update.blocked else 0
        counts["loss"] += 1 if update.data_loss else 0
    for item in changes.delete:
        counts = row(item)
        counts["delete"] += 1
        counts["blocked"] += 1 if item["blocked"] else 0
        counts["loss"] += 1 if item["data_loss"] else 0
    lines = [
        "| stage | model | create | update | replaced | delete | blocked | deleting data |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for (stage, model), c in sorted(rows.items()):
        cells = [c["create"], c["update"], c["replace"], c["delete"], c["blocked"], c["loss"]]
        lines.append(f"| {stage} | {_cell(model)} | " + " | ".join(str(n) if n else NONE for n in cells) + " |")
    return lines


def _sections(sections: Sequence[MarkdownSection]) -> list[str]:
    lines: list[str] = []
    for section in sections:
        lines += ["", f"#### {section.title}", "", section.body.rstrip()]
    return lines


def _blocks(changes: Changes) -> tuple[list[list[str]], list[list[str]]]:
    urgent: list[list[str]] = []
    other: list[list[str]] = []
    for item in ordered_deletes(changes):
        (urgent if item["blocked"] or item["data_loss"] else other).append(_delete_block(item))
    for update in ordered_updates(changes):
        (urgent if update.blocked or update.data_loss else other).append(_update_block(update))
    for item in changes.create:
        other.append([f"- **create** {_what(item)}", ""])
    return urgent, other


def _delete_block(item: dict[str, Any]) -> list[str]:
    marks = ("⛔ " if item["blocked"] else "") + ("⚠️ " if item["data_loss"] else "")
    lines = [f"- {marks}**delete** {_what(item)}"]
    if item["data_loss"]:
        lines.append(f"  - deletes its {item['holds']}")
    return lines + [""]


def _update_block(update: Update) -> list[str]:
    marks = ("⛔ " if update.blocked else "") + ("⚠️ " if update.data_loss else "")
    how = {True: "replace", False: "update in place", None: "update (replacement unknown)"}[update.replace]
    item = {"name": update.name, "type": update.type, "stage": update.stage, "model": update.model, "part": update.part,
            "protected": update.protected, "holds_data": update.holds is not None, "holds": update.holds}
    lines = [f"- {marks}**{how}** {_what(item)}"]
    if update.replace is not False:
        lines.append(f"  - {'replaced' if update.replace else 'may be replaced'}: {update.verdict.reason}")
    if update.blocked:
        lines.append("  - blocked: it is protected, and a replacement deletes it")
    elif update.blocked is None:
        lines.append("  - protected: if it is replaced, `up` refuses")
    if update.data_loss:
        lines.append(f"  - the replacement deletes its {update.holds}")
    lines += ["", "  | property | old | new |", "  |---|---|---|"]
    for value in update.values:
        old, new = shorten_pair(value.old, value.new, VALUE_WIDTH)
        lines.append(f"  | {_code(value.path)} | {_code(old)} | {_code(new)} |")
    return lines + [""]


def _what(item: dict[str, Any]) -> str:
    facts = [_code(item["type"]), f"stage {item.get('stage') or 'other'}"]
    if item.get("model"):
        facts.append(f"model {item['model']}")
    if item.get("part"):
        facts.append(f"Pulumi stack part {item['part']}")
    if item.get("protected"):
        facts.append("protected")
    if item.get("holds_data"):
        facts.append(f"holds {item['holds']}")
    return f"{_code(item['name'])} · " + " · ".join(facts)


def _get(item: Any, key: str) -> Any:
    return item.get(key) if isinstance(item, dict) else getattr(item, key)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    """Inline code that survives backticks and table pipes."""
    text = _cell(str(text))
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"
