"""Tests for mlops_infra.spec.yaml_loader."""

from __future__ import annotations

import math
import re
import textwrap
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import mlops_infra.spec.yaml_loader as loader_module
from mlops_infra.spec.problems import Problem
from mlops_infra.spec.yaml_loader import (
    MAX_BYTES,
    MAX_DEPTH,
    MAX_NODES,
    LoadedDocument,
    YamlLoadError,
    load_yaml,
)

FILE = "spec.yaml"


def load(text: str | bytes) -> LoadedDocument:
    return load_yaml(text, FILE)


def data(text: str) -> Any:
    return load(textwrap.dedent(text)).data


def problems(text: str | bytes) -> list[Problem]:
    with pytest.raises(YamlLoadError) as info:
        load(textwrap.dedent(text) if isinstance(text, str) else text)
    found = info.value.problems
    assert found, "YamlLoadError must carry at least one problem"
    for problem in found:
        assert problem.file == FILE
        assert problem.severity == "error"
        assert isinstance(problem.path, tuple)
        assert problem.message
        assert problem.hint
    return found


def only_problem(text: str | bytes) -> Problem:
    found = problems(text)
    assert len(found) == 1, [p.render() for p in found]
    return found[0]


BACKENDS = [pytest.param(yaml.SafeLoader, id="pure-python")]
if hasattr(yaml, "CSafeLoader"):
    BACKENDS.append(pytest.param(yaml.CSafeLoader, id="libyaml"))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> type:
    """Run a test against both the libyaml and the pure-Python parser."""
    monkeypatch.setattr(loader_module, "_Loader", request.param)
    return request.param


# --------------------------------------------------------------------------
# Scalars


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello", "hello"),
        ("hello world", "hello world"),
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("false", False),
        ("False", False),
        ("FALSE", False),
        ("null", None),
        ("Null", None),
        ("NULL", None),
        ("~", None),
        ("", None),
        ("0", 0),
        ("-12", -12),
        ("+3", 3),
        ("12345678901234567890", 12345678901234567890),
        ("1.5", 1.5),
        ("-2e3", -2000.0),
        ("1e3", 1000.0),
        ("2.5E-1", 0.25),
        (".5", 0.5),
        ("-.5", -0.5),
        ("1.", 1.0),
        (".inf", math.inf),
        (".Inf", math.inf),
        ("+.inf", math.inf),
        ("-.inf", -math.inf),
        ("-.INF", -math.inf),
        ("0o17", 15),
        ("0o0", 0),
        ("0x1F", 31),
        ("0xff", 255),
        # Everything below is typed by YAML 1.1 (and safe_load) but not by
        # the 1.2 core schema, so it must stay text.
        ("0017", "0017"),
        ("00", "00"),
        ("22:22", "22:22"),
        ("1:30:00", "1:30:00"),
        ("1_000", "1_000"),
        ("0b101", "0b101"),
        ("0O17", "0O17"),
        ("0X1F", "0X1F"),
        ("-0x1F", "-0x1F"),
        ("0o8", "0o8"),
        ("2001-12-14", "2001-12-14"),
        ("2001-12-14t21:59:43.10-05:00", "2001-12-14t21:59:43.10-05:00"),
        ("1.2.3", "1.2.3"),
        ("e3", "e3"),
        (".", "."),
        ("+", "+"),
        ("a-b", "a-b"),
        ("inf", "inf"),
        ("nan", "nan"),
        ("NaN", "NaN"),
        ("tRUE", "tRUE"),
        ("nULL", "nULL"),
        ("=", "="),
    ],
)
def test_plain_scalars_use_yaml_1_2_core_schema(text: str, expected: Any, backend: type) -> None:
    value = load(f"v: {text}\n").data["v"]
    assert value == expected
    assert type(value) is type(expected)


def test_nan() -> None:
    for spelling in (".nan", ".NaN", ".NAN"):
        value = load(f"v: {spelling}\n").data["v"]
        assert isinstance(value, float) and math.isnan(value)


@pytest.mark.parametrize("word", ["yes", "no", "Yes", "No", "YES", "NO", "on", "off", "On", "OFF", "y", "n", "Y", "N"])
def test_norway_problem_yaml_1_1_booleans_stay_strings(word: str) -> None:
    assert load(f"v: {word}\n").data == {"v": word}


def test_norway_problem_in_context() -> None:
    assert data("""
        countries: [GB, NO, SE]
        autoscale: on
    """) == {"countries": ["GB", "NO", "SE"], "autoscale": "on"}


@pytest.mark.parametrize("text", ["'5'", '"5"', "'1.5'", '"0x1F"', "'true'", '"null"', "''", "'~'", "'.inf'"])
def test_quoted_scalars_are_always_strings(text: str, backend: type) -> None:
    value = load(f"v: {text}\n").data["v"]
    assert isinstance(value, str)
    assert value == yaml.safe_load(f"v: {text}\n")["v"]


def test_block_scalars_are_strings() -> None:
    assert data("""
        literal: |
          5
        folded: >-
          true
    """) == {"literal": "5\n", "folded": "true"}


def test_very_long_integer_stays_a_string_instead_of_crashing() -> None:
    digits = "9" * 5000  # above Python's default int/str conversion limit
    assert load(f"v: {digits}\n").data == {"v": digits}


def test_plain_data_types_only() -> None:
    doc = load("""
a: 1
b: [x, {c: 2.5, d: null, e: true}]
""")
    allowed = (dict, list, str, int, float, bool, type(None))

    def walk(value: Any) -> None:
        assert type(value) in allowed
        if isinstance(value, dict):
            for key, item in value.items():
                assert type(key) is str
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(doc.data)


def test_root_may_be_any_type() -> None:
    assert load("- a\n- b\n").data == ["a", "b"]
    assert load("42\n").data == 42
    assert load("just text\n").data == "just text"


# --------------------------------------------------------------------------
# Line numbers

NESTED = """\
name: demo
models:
  - name: a
    serving:
      port: 8080
      hosts:
        - x.example
        -
          y.example
  - name: b

    image: "img:1"
settings: {debug: false,
  level: 3}
"""


def test_lines_map_is_exact(backend: type) -> None:
    doc = load(NESTED)
    assert doc.filename == FILE
    assert doc.lines == {
        (): 1,
        ("name",): 1,
        ("models",): 2,
        ("models", 0): 3,
        ("models", 0, "name"): 3,
        ("models", 0, "serving"): 4,
        ("models", 0, "serving", "port"): 5,
        ("models", 0, "serving", "hosts"): 6,
        ("models", 0, "serving", "hosts", 0): 7,
        ("models", 0, "serving", "hosts", 1): 9,  # where the item itself starts
        ("models", 1): 10,
        ("models", 1, "name"): 10,
        ("models", 1, "image"): 12,
        ("settings",): 13,
        ("settings", "debug"): 13,
        ("settings", "level"): 14,
    }


def test_root_line_is_where_the_root_node_starts() -> None:
    assert load("# comment\n\n---\na: 1\n").lines[()] == 4


def test_line_for_exact_and_fallback() -> None:
    doc = load(NESTED)
    assert doc.line_for(("models", 0, "serving", "port")) == 5
    assert doc.line_for(["models", 1, "image"]) == 12
    # Unknown children fall back to the nearest known ancestor.
    assert doc.line_for(("models", 0, "serving", "missing", "deeper")) == 4
    assert doc.line_for(("models", 7)) == 2
    assert doc.line_for(("nope",)) == 1
    assert doc.line_for(()) == 1


def test_line_for_without_any_line() -> None:
    doc = load("")
    assert doc.lines == {}
    assert doc.line_for(("a", "b")) is None
    assert doc.line_for(()) is None


# --------------------------------------------------------------------------
# Keys


def test_duplicate_key_names_both_lines(backend: type) -> None:
    problem = only_problem("""
        models:
          serving: 1
          other: 2
          serving: 3
    """)
    assert problem.path == ("models", "serving")
    assert problem.line == 5
    assert "duplicate key 'serving'" in problem.message
    assert "first at line 3" in problem.message


def test_all_duplicates_are_reported() -> None:
    found = problems("""
        a: 1
        b: 2
        a: 3
        c:
          x: 1
          x: 2
        b: 4
        a: 5
    """)
    summary = sorted((p.line, p.path, p.message) for p in found)
    assert summary == [
        (4, ("a",), "duplicate key 'a' (first at line 2)"),
        (7, ("c", "x"), "duplicate key 'x' (first at line 6)"),
        (8, ("b",), "duplicate key 'b' (first at line 3)"),
        (9, ("a",), "duplicate key 'a' (first at line 2)"),
    ]


def test_quoted_and_plain_spelling_of_a_key_are_duplicates() -> None:
    problem = only_problem("a: 1\n'a': 2\n")
    assert problem.line == 2 and "first at line 1" in problem.message


@pytest.mark.parametrize(
    ("key", "value"),
    [("1", 1), ("true", True), ("null", None), ("1.5", 1.5), ("0x10", 16), ("~", None)],
)
def test_non_string_keys_are_rejected(key: str, value: Any) -> None:
    problem = only_problem(f"ok: 1\n{key}: x\n")
    assert problem.line == 2
    assert "keys must be strings" in problem.message
    assert key in problem.message  # the key as written is shown
    assert problem.has_value and problem.value == value and type(problem.value) is type(value)


def test_quoted_keys_that_look_like_numbers_are_fine() -> None:
    assert load("'1': a\n\"true\": b\nyes: c\n").data == {"1": "a", "true": "b", "yes": "c"}


def test_complex_keys_are_rejected() -> None:
    problem = only_problem("? [a, b]\n: x\n")
    assert "keys must be strings" in problem.message
    assert problem.line == 1


def test_non_string_key_problems_are_all_collected() -> None:
    found = problems("1: a\nb:\n  2: c\n  true: d\n")
    assert [(p.line, p.path) for p in found] == [(1, ("1",)), (3, ("b", "2")), (4, ("b", "true"))]


# --------------------------------------------------------------------------
# Tags


@pytest.mark.parametrize(
    ("snippet", "shown"),
    [
        ("!!python/object/apply:os.system ['echo hi']", "!!python/object/apply:os.system"),
        ("!!python/object:collections.OrderedDict {}", "!!python/object:collections.OrderedDict"),
        ("!custom value", "!custom"),
        ("!!binary aGVsbG8=", "!!binary"),
        ("!!set {a, b}", "!!set"),
        ("!!omap [a: 1]", "!!omap"),
        ("!!int 5", "!!int"),
        ("!!float '1.5'", "!!float"),
        ("!!str [a]", "!!str"),
        ("! 5", "!"),
    ],
)
def test_explicit_tags_are_rejected(snippet: str, shown: str, backend: type) -> None:
    problem = only_problem(f"first: 1\nvalue: {snippet}\n")
    assert problem.message.startswith("YAML tags are not allowed")
    assert shown in problem.message
    assert problem.line == 2
    assert problem.path == ("value",)


def test_str_tag_makes_a_string() -> None:
    assert load("a: !!str 5\nb: !!str true\nc: !!str\n").data == {"a": "5", "b": "true", "c": ""}


def test_default_collection_tags_are_accepted() -> None:
    assert load("a: !!map {x: 1}\nb: !!seq [1]\n").data == {"a": {"x": 1}, "b": [1]}


def test_every_tag_is_reported() -> None:
    found = problems("a: !x 1\nb: [!y 2, !!binary 3]\n")
    assert [p.path for p in found] == [("a",), ("b", 0), ("b", 1)]


# --------------------------------------------------------------------------
# Anchors, aliases, merge keys


def test_aliases_expand_to_independent_copies() -> None:
    doc = load("""\
defaults: &d
  env: {A: '1'}
  ports: [80]
model:
  serving: *d
""")
    assert doc.data["model"]["serving"] == {"env": {"A": "1"}, "ports": [80]}
    doc.data["model"]["serving"]["ports"].append(443)
    assert doc.data["defaults"]["ports"] == [80]
    # Lines inside an expansion point at where the text is written.
    assert doc.lines[("model", "serving")] == 5
    assert doc.lines[("model", "serving", "env", "A")] == 2
    assert doc.lines[("model", "serving", "ports", 0)] == 3


def test_merge_key_explicit_keys_override() -> None:
    doc = load("""\
base: &base
  image: img:1
  replicas: 1
  port: 80
svc:
  replicas: 3
  <<: *base
  extra: true
""")
    svc = doc.data["svc"]
    assert svc == {"image": "img:1", "replicas": 3, "port": 80, "extra": True}
    assert list(svc) == ["image", "replicas", "port", "extra"]  # merged entries first
    assert doc.lines[("svc", "replicas")] == 6
    assert doc.lines[("svc", "image")] == 2
    assert ("svc", "<<") not in doc.lines


def test_merge_key_list_form_earlier_wins() -> None:
    doc = load("""\
a: &a {x: 1, y: 1}
b: &b {y: 2, z: 2}
c:
  <<: [*a, *b, {w: 3}]
  z: 9
""")
    assert doc.data["c"] == {"x": 1, "y": 1, "z": 9, "w": 3}
    assert doc.lines[("c", "y")] == 1
    assert doc.lines[("c", "w")] == 4
    assert doc.lines[("c", "z")] == 5


def test_merge_inline_mapping_and_nested_use() -> None:
    doc = load("""\
c: &c
  <<: {x: 1}
  y: 2
d: *c
""")
    assert doc.data == {"c": {"x": 1, "y": 2}, "d": {"x": 1, "y": 2}}
    assert doc.lines[("d", "x")] == 2


def test_quoted_merge_key_is_an_ordinary_key() -> None:
    assert load("'<<': 1\n").data == {"<<": 1}


@pytest.mark.parametrize("value", ["3", "text", "null", "'quoted'"])
def test_invalid_merge_value(value: str) -> None:
    problem = only_problem(f"a:\n  <<: {value}\n  b: 1\n")
    assert "'<<'" in problem.message and "merge" in problem.message
    assert problem.line == 2
    assert problem.path[:2] == ("a", "<<")


def test_invalid_merge_item_in_list() -> None:
    problem = only_problem("x: &x {a: 1}\ny:\n  <<: [*x, 5]\n")
    assert "item 1" in problem.message
    assert problem.line == 3


def test_every_invalid_merge_item_is_reported() -> None:
    found = problems("y:\n  <<: [1, {a: 1}, x]\n")
    assert [p.path for p in found] == [("y", "<<", 0), ("y", "<<", 2)]


def test_merge_key_twice_is_a_duplicate() -> None:
    problem = only_problem("x: &x {a: 1}\ny:\n  <<: *x\n  <<: *x\n")
    assert problem.line == 4 and "duplicate key '<<'" in problem.message


def test_undefined_alias() -> None:
    problem = only_problem("a: *nowhere\n")
    assert "nowhere" in problem.message and problem.line == 1


def test_billion_laughs_is_rejected(backend: type) -> None:
    # 10**10 nodes if expanded: the node bound stops it (speed is measured in benchmarks/, not here).
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for index, name in enumerate("bcdefghij"):
        previous = "abcdefghij"[index]
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 10) + "]")
    problem = only_problem("\n".join(lines) + "\n")
    assert problem.message == f"the document expands to more than {MAX_NODES} nodes (aliases?)"
    assert problem.line is not None and problem.line > 1


def test_limit_is_enforced_even_when_the_last_node_crosses_it() -> None:
    # An anchor of MAX_NODES/100 nodes expanded 100 times: the final alias is the
    # very last node, so the limit must be checked at the alias itself.
    size = MAX_NODES // 100
    anchor = "a: &a [" + ", ".join(["x"] * (size - 1)) + "]\n"
    problem = only_problem(anchor + "b: [" + ", ".join(["*a"] * 100) + "]\n")
    assert str(MAX_NODES) in problem.message and problem.line == 2
    assert load(anchor + "b: [" + ", ".join(["*a"] * 90) + "]\n").data["b"][89][size - 2] == "x"


def test_many_small_aliases_within_the_limit_are_fine() -> None:
    text = "x: &x [1, 2, 3]\nys:\n" + "".join("  - *x\n" for _ in range(1000))
    assert load(text).data["ys"][999] == [1, 2, 3]


def test_recursive_alias_is_a_problem(backend: type) -> None:
    problem = only_problem("a: &a\n  b: *a\n")
    assert "contains it" in problem.message
    assert problem.path == ("a", "b")
    assert problem.line == 2


def test_recursive_alias_in_list() -> None:
    assert "contains it" in only_problem("&x [1, [*x]]\n").message


# --------------------------------------------------------------------------
# Limits


def nested_lists(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_nesting_up_to_the_limit_is_allowed() -> None:
    value = load(nested_lists(MAX_DEPTH)).data
    depth = 0
    while isinstance(value, list):
        depth += 1
        value = value[0] if value else None
    assert depth == MAX_DEPTH


def test_nesting_beyond_the_limit_is_a_problem(backend: type) -> None:
    problem = only_problem(nested_lists(MAX_DEPTH + 1))
    assert "nested" in problem.message and str(MAX_DEPTH) in problem.message
    assert problem.line == 1


def test_block_nesting_beyond_the_limit_reports_its_line() -> None:
    text = "".join("  " * level + f"k{level}:\n" for level in range(MAX_DEPTH + 1)) + "  " * (MAX_DEPTH + 1) + "v: 1\n"
    problem = only_problem(text)
    assert problem.line == MAX_DEPTH + 1


def test_extremely_deep_nesting_fails_cleanly(backend: type) -> None:
    # The depth bound stops at once, before the parser walks 200,000 levels.
    problem = only_problem(nested_lists(200_000))
    assert "nest" in problem.message  # our bound, or libyaml's own: either stops it


def test_alias_expansion_counts_towards_depth() -> None:
    inner = nested_lists(MAX_DEPTH - 1)
    assert load(f"a: &a {inner}\nb: *a\n").data["b"] == load(f"b: {inner}\n").data["b"]
    problem = only_problem(f"a: &a {inner}\nb: [*a]\n")
    assert "nests" in problem.message and problem.line == 2


def test_size_limit_str() -> None:
    problem = only_problem("a: 1\n" + "#" * MAX_BYTES)
    assert "too large" in problem.message


def test_size_limit_counts_utf8_bytes_not_characters() -> None:
    text = 'a: "' + "\u20ac" * (MAX_BYTES // 3) + '"\n'  # fewer characters than MAX_BYTES
    assert len(text) < MAX_BYTES
    assert "too large" in only_problem(text).message


def test_size_limit_bytes_and_boundary() -> None:
    assert "too large" in only_problem(b"a: 1\n" + b"#" * MAX_BYTES).message
    exactly = b"a: 1\n#" + b"x" * (MAX_BYTES - 6)
    assert len(exactly) == MAX_BYTES
    assert load(exactly).data == {"a": 1}


# --------------------------------------------------------------------------
# Encoding and characters


def test_utf8_bytes_and_bom() -> None:
    assert load("name: caf\u00e9\n".encode()).data == {"name": "caf\u00e9"}
    assert load(b"\xef\xbb\xbfa: 1\n").data == {"a": 1}
    assert load("\ufeffa: 1\n").data == {"a": 1}


def test_non_utf8_bytes_are_a_problem() -> None:
    problem = only_problem(b"a: 1\nb: caf\xe9\n")
    assert "UTF-8" in problem.message
    assert problem.line == 2


def test_utf16_is_not_accepted() -> None:
    assert "UTF-8" in only_problem("a: 1\n".encode("utf-16")).message


@pytest.mark.parametrize("payload", ["a: 1\nb: x\x00y\n", b"a: 1\nb: x\x00y\n"])
def test_nul_byte_is_a_problem(payload: str | bytes, backend: type) -> None:
    problem = only_problem(payload)
    assert problem.line == 2
    assert "NUL" in problem.message


def test_other_control_characters_are_problems() -> None:
    problem = only_problem("a: 1\n\nb: \x07\n")
    assert problem.line == 3 and "U+0007" in problem.message


def test_lone_surrogate_in_str_is_a_problem() -> None:
    assert only_problem("a: \ud800\n").line == 1


def test_reader_errors_from_pyyaml_are_converted(backend: type, monkeypatch: pytest.MonkeyPatch) -> None:
    # Bypass our own character check so the parser's ReaderError path runs.
    monkeypatch.setattr(loader_module, "_NON_PRINTABLE", re.compile(r"(?!)"))
    problem = only_problem("a: 1\nb: \x01\n")
    assert problem.line == 2
    assert "not allowed" in problem.message


# --------------------------------------------------------------------------
# Syntax


def test_tab_indentation_is_a_syntax_problem_with_its_line(backend: type) -> None:
    problem = only_problem("a: 1\nb:\n\tc: 2\n")
    assert problem.line == 3
    assert "cannot start any token" in problem.message
    assert "spaces" in problem.hint


def test_unclosed_bracket(backend: type) -> None:
    problem = only_problem("a: [1, 2\nb: 3\n")
    assert problem.line is not None and problem.line >= 2
    assert problem.path == ()


def test_bad_indentation_mapping_values() -> None:
    problem = only_problem("a: b: c\n")
    assert problem.line == 1 and "mapping values are not allowed" in problem.message


def test_multiple_documents_are_a_problem(backend: type) -> None:
    problem = only_problem("a: 1\n---\nb: 2\n")
    assert "single YAML document" in problem.message
    assert problem.line == 2


def test_single_explicit_document_is_fine() -> None:
    assert load("---\na: 1\n...\n").data == {"a": 1}


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n", b""])
def test_empty_document_gives_none(text: str | bytes) -> None:
    assert load(text).data is None


def test_problem_renders_with_line() -> None:
    with pytest.raises(YamlLoadError) as info:
        load("a: 1\na: 2\n")
    assert "spec.yaml:2" in str(info.value)


# --------------------------------------------------------------------------
# Backends agree, speed


def test_backends_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    results = []
    for param in BACKENDS:
        monkeypatch.setattr(loader_module, "_Loader", param.values[0])
        doc = load(NESTED + "x: &x {a: [1, {b: 2}]}\ny: {<<: *x, c: .5}\n")
        results.append((doc.data, doc.lines))
    assert all(result == results[0] for result in results)


def big_spec(entries: int) -> str:
    item = (
        "  - name: model-{i}\n"
        "    image: registry.example/model:{i}\n"
        "    replicas: 2\n"
        "    serving:\n"
        "      port: 8080\n"
        "      enabled: true\n"
        "      hosts: [a.example, b.example]\n"
        "    resources:\n"
        "      cpu: 1.5\n"
        "      memory: 2Gi\n"
        "      gpu: 0\n"
        "    env:\n"
        "      MODE: prod\n"
        "      DEBUG: 'false'\n"
        "    labels:\n"
        "      team: ml\n"
        "      owner: someone\n"
        "    notes: hello world\n"
        "    schedule: '0 3 * * *'\n"
        "    extra: null\n"
    )
    return "models:\n" + "".join(item.format(i=i) for i in range(entries))


def test_large_document_loads_completely() -> None:
    # Speed is measured by benchmarks/run.py (validate of 1,000 models), not asserted here.
    text = big_spec(1000)
    assert text.count("\n") > 20_000
    doc = load(text)
    assert len(doc.data["models"]) == 1000
    assert doc.data["models"][999]["serving"]["port"] == 8080
    assert doc.lines[("models", 999, "extra")] == text.count("\n")


# --------------------------------------------------------------------------
# Properties

identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,11}", fullmatch=True)

# Strings YAML 1.1 reads as plain text but the 1.2 core schema types: the
# dumper only quotes what its own (1.1) resolver would misread, so these come
# back as numbers. They are genuine schema differences, not loader bugs
# (e.g. "1e3" or "0o7"), and are covered by the scalar tests above.
_ONLY_1_2_TYPED = re.compile(
    r"[-+]?(?:\.[0-9]+(?:[eE][-+]?[0-9]+)?|[0-9]+(?:\.[0-9]*)?[eE][-+]?[0-9]+|[0-9]+\.[0-9]*)"
    r"|0o[0-7]+|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)


_RESOLVER_1_1 = yaml.resolver.Resolver()


def _differs_between_schemas(text: str) -> bool:
    if not _ONLY_1_2_TYPED.fullmatch(text):
        return False
    return _RESOLVER_1_1.resolve(yaml.ScalarNode, text, (True, False)) == "tag:yaml.org,2002:str"


# Number-like text is where YAML 1.1 and 1.2 disagree, so generate plenty of it.
number_like = st.from_regex(r"[-+]?[0-9.eEoxXb_:]{1,7}|[-+]?\.?[a-zA-Z]{1,5}", fullmatch=True)
short_strings = (st.text(max_size=12) | number_like).filter(lambda s: not _differs_between_schemas(s))
scalars = st.none() | st.booleans() | st.integers() | short_strings | st.floats(allow_nan=False)
json_like = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(identifiers, children, max_size=5),
    max_leaves=25,
)


def test_schema_difference_filter_is_real_and_narrow() -> None:
    # Without the filter these would break the round trip: the dumper leaves
    # them unquoted because YAML 1.1 reads them as text.
    for text in ["1e3", "0o7", "+.5", "1.0e3"]:
        assert _differs_between_schemas(text)
        assert load(yaml.safe_dump(text)).data != text
    # Quoted by the dumper, so they must stay in the generated data.
    for text in [".5", "1.", "-.inf", ".NaN", "0x1F", "0017", "yes", "1_0", "22:22", "abc"]:
        assert not _differs_between_schemas(text)
        assert load(yaml.safe_dump(text)).data == text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_like)
def test_round_trip_of_safe_dump(value: Any) -> None:
    text = yaml.safe_dump(value)
    assert load(text).data == value


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(identifiers, scalars, min_size=1, max_size=8))
def test_round_trip_lines_cover_every_key(value: dict[str, Any]) -> None:
    # One key per line only holds when no value spans lines (a "\n" string is dumped quoted
    # over several lines).
    assume(not any(isinstance(v, str) and ("\n" in v or "\r" in v) for v in value.values()))
    text = yaml.safe_dump(value, default_flow_style=False, sort_keys=False, width=10_000)
    doc = load(text)
    for line_no, key in enumerate(value, start=1):
        assert doc.lines[(key,)] == line_no


yaml_ish = st.text(alphabet=st.sampled_from(list("ab:-[]{},&*!<>'\"#|?\n\t .0123~%@`")), max_size=60)


@settings(max_examples=400, deadline=None)
@given(st.one_of(yaml_ish, st.text(max_size=60), st.binary(max_size=60)))
def test_bad_input_only_ever_raises_yaml_load_error(text: str | bytes) -> None:
    try:
        doc = load(text)
    except YamlLoadError as err:
        assert err.problems
        for problem in err.problems:
            assert problem.line is None or problem.line >= 1
        return
    assert isinstance(doc.data, (dict, list, str, int, float, bool, type(None)))
