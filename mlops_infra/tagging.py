"""One tag set valid on every cloud: AWS tags, GCP labels and Azure tags alike.

GCP labels are the strictest (lowercase, 63 characters, letters, digits, '-'
and '_'), AWS allows 50 tags per resource: the intersection is what a spec may
use, so a tag that works on one cloud works on all of them. Invalid tags are
rejected, never rewritten.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

KEY_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
VALUE_RE = re.compile(r"^[a-z0-9_-]{0,63}$")
RESERVED_PREFIXES = ("aws", "goog", "google", "microsoft", "azure", "windows", "mlops-")
MANAGED_KEYS = ("managed-by", "mlops-project", "mlops-environment", "mlops-stage")
MAX_USER_TAGS = 50 - len(MANAGED_KEYS)
TAG_HINT = (
    "keys start with a lowercase letter; keys and values use lowercase letters, digits, '-' and '_', "
    "63 characters at most (GCP labels allow nothing else); aws, goog, google, microsoft, azure, windows "
    "and mlops- prefixes are reserved; quote numbers"
)


def stack_tags(*, project: str, environment: str, user: dict[str, str], stage: str) -> dict[str, str]:
    """The tags of one resource: the user's plus the managed ones (sorted, deterministic)."""
    tags = dict(user)
    tags.update(
        {
            "managed-by": "mlops-infra",
            "mlops-project": project,
            "mlops-environment": environment,
            "mlops-stage": stage,
        }
    )
    return dict(sorted(tags.items()))


def check_tag_key(key: str) -> str:
    from mlops_infra.spec.types import HintedValueError

    reason = _tag_reason(key, what="key", first_letter=True)
    if reason is None and key.startswith(RESERVED_PREFIXES):
        prefix = next(p for p in RESERVED_PREFIXES if key.startswith(p))
        owner = "mlops-infra's own tags" if prefix == "mlops-" else "the clouds' own tags"
        reason = f"starts with {prefix!r}, a prefix reserved for {owner}"
        raise HintedValueError(f"tag key {key!r} {reason}", hint=f"rename it, e.g. {'team-' + key!r}")
    if reason is not None:
        raise HintedValueError(f"tag key {key!r} {reason}", hint=_tag_fix(key, first_letter=True))
    return key


def check_tag_value(value: str) -> str:
    from mlops_infra.spec.types import HintedValueError

    reason = _tag_reason(value, what="value", first_letter=False)
    if reason is not None:
        raise HintedValueError(f"tag value {value!r} {reason}", hint=_tag_fix(value, first_letter=False))
    return value


def _tag_reason(text: str, *, what: str, first_letter: bool) -> str | None:
    """Why `text` is not a tag key/value every cloud accepts (GCP labels are the strictest), or None."""
    if first_letter and not text[:1].islower():
        return "must start with a lowercase letter (GCP labels)"
    if len(text) > 63:
        return f"is {len(text)} characters long; GCP labels allow 63"
    bad = sorted({c for c in text if not (c.islower() and c.isascii() or c.isdigit() or c in "-_")})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        return f"has {shown}: GCP labels allow only lowercase letters, digits, '-' and '_'"
    return None


def _tag_fix(text: str, *, first_letter: bool) -> str:
    fixed = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-")[:63]
    if first_letter and not fixed[:1].isalpha():
        fixed = ("tag-" + fixed)[:63]
    return f"write {fixed!r}" + ("" if first_letter else ", or quote a number: '42'") if fixed else TAG_HINT


TagKey = Annotated[str, AfterValidator(check_tag_key)]
TagValue = Annotated[str, AfterValidator(check_tag_value)]
