"""Render the jinja2 templates shipped in templates/ (scaffolds, pipeline and workflow definitions)."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    from mlops_infra.templates_dir import templates_root

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_root())),
        undefined=jinja2.StrictUndefined,  # a missing value is a bug, never an empty string
        keep_trailing_newline=True,
        autoescape=False,
    )
    # JSON-safe embedding of any value (strings are quoted and escaped).
    env.filters["json"] = lambda value: json.dumps(value, sort_keys=True)
    return env


def render(name: str, **values: Any) -> str:
    """Render templates/<name> with `values`."""
    return _environment().get_template(name).render(**values)


def render_json(name: str, **values: Any) -> Any:
    """Render a JSON template and parse it, so a malformed template fails here, not in the cloud."""
    return json.loads(render(name, **values))
