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
    if not KEY_RE.fullmatch(key):
        raise ValueError(f"tag key {key!r} is not valid on every cloud")
    if key.startswith(RESERVED_PREFIXES):
        raise ValueError(f"tag key {key!r} starts with a reserved prefix")
    return key


def check_tag_value(value: str) -> str:
    if not VALUE_RE.fullmatch(value):
        raise ValueError("tag value is not valid on every cloud")
    return value


TagKey = Annotated[str, AfterValidator(check_tag_key)]
TagValue = Annotated[str, AfterValidator(check_tag_value)]
