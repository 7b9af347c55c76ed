"""Render the jinja2 templates shipped in templates/ (scaffolds, pipeline and workflow definitions).

Every value a template prints goes through an escaping filter for the place it lands in;
printing a string any other way is refused (a template bug, caught by the tests), so no value
can end the token it sits in, whatever it holds:

- ``json``: a JSON value (strings quoted, every quote, backslash, control and non-ASCII
  character escaped). JSON is also YAML, so it serves YAML values as well.
- ``inline``: text inside a JSON string literal or in a comment (JSON, YAML, SQL, Markdown):
  the same escaping without the quotes, so it is one line that cannot close the literal.
- ``yaml``: a YAML scalar, written plain when it reads back as the same string, else as JSON.
- ``sql_name``: the inside of a backtick-quoted GoogleSQL (BigQuery) identifier.

Numbers print as themselves (the same text in every language these templates are written in).
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from typing import Any


class Escaped(str):
    """Text an escaping filter made for the place it is printed in."""


def to_json(value: Any) -> Escaped:
    return Escaped(json.dumps(value, sort_keys=True))


def inline(value: Any) -> Escaped:
    return Escaped(json.dumps(str(value))[1:-1])


# A plain YAML scalar that reads back as this very string under YAML 1.1 and 1.2 alike: starts
# with a letter, no space (so no ': ' or ' #'), no final ':', and not a word either version
# reads as another type.
_PLAIN_YAML = re.compile(r"[A-Za-z](?:[A-Za-z0-9._/@:-]*[A-Za-z0-9._/@-])?")
_YAML_WORDS = frozenset("y n yes no on off true false null nan inf".split())


def yaml_scalar(value: Any) -> Escaped:
    if isinstance(value, str) and _PLAIN_YAML.fullmatch(value) and value.lower() not in _YAML_WORDS:
        return Escaped(value)
    return to_json(value)


# GoogleSQL: quoted identifiers take the escape sequences of string literals.
_SQL_ESCAPES = {"\\": "\\\\", "`": "\\`"}


def sql_name(value: Any) -> Escaped:
    text = str(value)
    if not text:
        raise ValueError("a GoogleSQL quoted identifier cannot be empty")
    return Escaped(
        "".join(
            _SQL_ESCAPES.get(char) or (f"\\u{ord(char):04x}" if not char.isprintable() else char)
            for char in text
        )
    )


class UnescapedValue(Exception):
    """A template printed a value without an escaping filter (a bug in the template)."""


def _finalize(value: Any) -> Any:
    import jinja2

    if isinstance(value, Escaped):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return value
    if type(value) is jinja2.Undefined:  # what `{{ x if c }}` gives when c is false: prints nothing
        return value
    raise UnescapedValue(
        f"template printed {value!r} without an escaping filter: use | json, | inline, | yaml or | sql_name"
    )


@lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    from mlops_infra.templates_dir import templates_root

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_root())),
        undefined=jinja2.StrictUndefined,  # a missing value is a bug, never an empty string
        keep_trailing_newline=True,
        autoescape=False,
        finalize=_finalize,
    )
    env.filters.update({"json": to_json, "inline": inline, "yaml": yaml_scalar, "sql_name": sql_name})
    return env


def render(name: str, **values: Any) -> str:
    """Render templates/<name> with `values`."""
    return _environment().get_template(name).render(**values)


def render_json(name: str, **values: Any) -> Any:
    """Render a JSON template and parse it, so a malformed template fails here, not in the cloud."""
    return json.loads(render(name, **values))
