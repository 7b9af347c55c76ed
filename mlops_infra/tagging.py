"""One tag set valid on every cloud: AWS tags, GCP labels and Azure tags alike.

GCP labels are the strictest (lowercase, 63 characters, letters, digits, '-'
and '_'), AWS allows 50 tags per resource: the intersection is what a spec may
use, so a tag that works on one cloud works on all of them. Invalid tags are
rejected, never rewritten.
"""

from __future__ import annotations

import re

from mlops_infra.spec.problems import Problem

KEY_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
VALUE_RE = re.compile(r"^[a-z0-9_-]{0,63}$")
RESERVED_PREFIXES = ("aws", "goog", "google", "microsoft", "azure", "windows", "mlops-")
MANAGED_KEYS = ("managed-by", "mlops-project", "mlops-environment", "mlops-stage")
MAX_USER_TAGS = 50 - len(MANAGED_KEYS)


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


def check_tags(tags: dict[str, str]) -> list[Problem]:
    problems: list[Problem] = []
    if len(tags) > MAX_USER_TAGS:
        problems.append(
            _problem(
                ("tags",),
                f"too many tags: {len(tags)} (at most {MAX_USER_TAGS})",
                f"AWS and Azure allow 50 tags per resource and mlops-infra adds {len(MANAGED_KEYS)}",
            )
        )
    for key, value in tags.items():
        path = ("tags", key)
        if not KEY_RE.match(key):
            problems.append(
                _problem(
                    path,
                    f"tag key {key!r} is not valid on every cloud",
                    "start with a lowercase letter; use lowercase letters, digits, '-' and '_' "
                    "(63 characters at most): GCP labels allow nothing else",
                )
            )
        elif key.startswith(RESERVED_PREFIXES):
            problems.append(
                _problem(
                    path,
                    f"tag key {key!r} starts with a reserved prefix",
                    "aws, goog, google, microsoft, azure, windows and mlops- prefixes belong to the clouds "
                    "and to mlops-infra",
                )
            )
        if not isinstance(value, str) or not VALUE_RE.match(value):
            problems.append(
                _problem(
                    path,
                    "tag value is not valid on every cloud",
                    "use lowercase letters, digits, '-' and '_' (63 characters at most), quoted if numeric",
                    value=value,
                )
            )
    return problems


def _problem(path: tuple, message: str, hint: str, value: object = None) -> Problem:
    return Problem(
        file="", line=None, path=path, message=message, hint=hint, value=value, has_value=value is not None
    )
