"""Load one YAML spec file into plain Python data plus a path -> line map.

The loader is deliberately stricter than ``yaml.safe_load``:

* scalars follow the YAML 1.2 core schema, so ``no``/``on``/``22:22`` stay
  strings instead of silently becoming booleans or sexagesimal numbers;
* tags, non-string keys and duplicate keys are reported instead of being
  accepted or silently resolved (last one wins);
* size, node count (after alias expansion) and nesting depth are bounded, so a
  hostile or broken file cannot exhaust memory or the stack;
* every failure is a ``YamlLoadError`` carrying ``Problem`` objects with a
  file, a 1-based line and a path, so the caller can report them all at once.

Implementation note: the document is built from PyYAML's *event* stream (the
same stream ``yaml.compose`` consumes) rather than from the composed node tree.
Nodes do not remember whether their tag was written in the file, so
``!!int 5`` would be indistinguishable from ``5``; events do. Building in one
iterative pass over the events also keeps the per-node cost low and means no
part of the pipeline recurses on document depth.
"""

from __future__ import annotations

import codecs
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence, cast, final

import yaml
from yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

from mlops_infra.spec.problems import Path, Problem, sort_problems

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "LoadedDocument",
    "YamlLoadError",
    "load_yaml",
]

MAX_BYTES = 8_000_000  # a spec of 5,000 models (the models limit) is about 6 MB
MAX_NODES = 600_000  # 5,000 models are about 350,000 nodes; a bomb stops here
MAX_DEPTH = 64

# libyaml parses roughly an order of magnitude faster than the pure-Python
# parser; both produce identical events, so either can feed the builder.
_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_TAG_PREFIX = "tag:yaml.org,2002:"
_STR_TAG = _TAG_PREFIX + "str"
_SEQ_TAG = _TAG_PREFIX + "seq"
_MAP_TAG = _TAG_PREFIX + "map"

# Same character class PyYAML's Reader rejects. Checking it ourselves gives an
# exact line for both backends (libyaml reports a byte offset, the Python
# reader a character offset) and a friendlier message.
_NON_PRINTABLE: re.Pattern[str] = yaml.reader.Reader.NON_PRINTABLE

_MISSING: Any = object()
# Stands in for a node that already produced a problem, so that follow-on
# checks (merge value, key type) do not report the same mistake twice.
_INVALID: Any = object()

# YAML 1.2 core schema words. Anything not listed (yes/no/on/off/y/n, ...)
# stays a string: those YAML 1.1 booleans are a classic source of silent
# misconfiguration (the "Norway problem": country code NO -> False).
_WORDS: dict[str, Any] = {
    "": None,
    "~": None,
    "null": None,
    "Null": None,
    "NULL": None,
    "true": True,
    "True": True,
    "TRUE": True,
    "false": False,
    "False": False,
    "FALSE": False,
}
for _sign, _factor in (("", 1.0), ("+", 1.0), ("-", -1.0)):
    for _spelling in (".inf", ".Inf", ".INF"):
        _WORDS[_sign + _spelling] = _factor * math.inf
for _spelling in (".nan", ".NaN", ".NAN"):
    _WORDS[_spelling] = math.nan

_NUMBER_START = frozenset("0123456789+-.")
# Leading zeros are excluded on purpose: YAML 1.1 read 0017 as octal 15, 1.2
# core as decimal 17. Keeping it a string avoids guessing either way.
_DECIMAL_RE = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_OCTAL_RE = re.compile(r"0o[0-7]+")
_HEX_RE = re.compile(r"0x[0-9a-fA-F]+")
# A '.' or an exponent is required so that digit strings rejected above
# (0017) do not sneak back in as floats.
_FLOAT_RE = re.compile(
    r"[-+]?(?:\.[0-9]+(?:[eE][-+]?[0-9]+)?"
    r"|[0-9]+(?:\.[0-9]*(?:[eE][-+]?[0-9]+)?|[eE][-+]?[0-9]+))"
)


def _resolve_plain(text: str) -> Any:
    """Type of an untagged, unquoted scalar under the YAML 1.2 core schema."""
    word = _WORDS.get(text, _MISSING)
    if word is not _MISSING:
        return word
    if text[0] not in _NUMBER_START:
        return text
    if _DECIMAL_RE.fullmatch(text):
        try:
            return int(text)
        except ValueError:
            # More digits than sys.get_int_max_str_digits(): no spec value
            # is meant to be that number, so leave it for type validation.
            return text
    if _FLOAT_RE.fullmatch(text):
        return float(text)
    if text[0] == "0" and len(text) > 2:
        if _OCTAL_RE.fullmatch(text):
            return int(text[2:], 8)
        if _HEX_RE.fullmatch(text):
            return int(text[2:], 16)
    return text


class YamlLoadError(Exception):
    """The text could not be turned into data; ``problems`` says why and where."""

    problems: list[Problem]

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = sort_problems(problems)
        super().__init__("\n".join(p.render() for p in self.problems))


@dataclass(frozen=True)
class LoadedDocument:
    data: Any
    lines: dict[Path, int] = field(repr=False)
    filename: str

    def line_for(self, path: Sequence[str | int]) -> int | None:
        """Line of ``path``, else of its nearest ancestor that has one."""
        key = tuple(path)
        lines = self.lines
        while True:
            line = lines.get(key)
            if line is not None:
                return line
            if not key:
                return None
            key = key[:-1]


def load_yaml(text: str | bytes, filename: str) -> LoadedDocument:
    """Parse one YAML document; raise ``YamlLoadError`` with every problem found."""
    source = _decode(text, filename)
    bad = _NON_PRINTABLE.search(source)
    if bad is not None:
        raise YamlLoadError([_bad_character_problem(source, bad.start(), filename)])

    builder = _Builder(filename)
    loader: Any = None
    try:
        # Inside the try: the pure-Python reader already validates the text
        # in its constructor.
        loader = _Loader(source)
        data = builder.build(loader.get_event)
    except yaml.MarkedYAMLError as err:
        raise YamlLoadError([_syntax_problem(err, source, filename)]) from None
    except yaml.reader.ReaderError as err:
        raise YamlLoadError([_reader_problem(err, source, filename)]) from None
    except yaml.YAMLError as err:  # any other parser complaint, without a mark
        raise YamlLoadError([Problem(filename, None, (), str(err), _SYNTAX_HINT)]) from None
    finally:
        if loader is not None:
            loader.dispose()

    if builder.problems:
        raise YamlLoadError(builder.problems)
    return LoadedDocument(data=data, lines=dict(builder.records), filename=filename)


# --------------------------------------------------------------------------
# Input checks done before the parser sees anything.


def _decode(text: str | bytes, filename: str) -> str:
    if isinstance(text, (bytes, bytearray)):
        raw = bytes(text)
        if len(raw) > MAX_BYTES:
            raise YamlLoadError([_too_big_problem(len(raw), filename)])
        wide = _wide_encoding(raw)
        if wide is not None:
            raise YamlLoadError([
                Problem(
                    filename,
                    1,
                    (),
                    f"the file is {wide} text, not UTF-8",
                    f"convert it: iconv -f {wide.split()[0]} -t UTF-8 {filename} > converted.yaml "
                    "(or save it as UTF-8 in your editor)",
                )
            ])
        if raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8):]
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise YamlLoadError([_not_utf8_problem(raw, err.start, filename)]) from None
    if not isinstance(text, str):
        raise TypeError(f"load_yaml() needs str or bytes, not {type(text).__name__}")
    # A character is at most 4 UTF-8 bytes, so short strings need no encoding
    # pass; "surrogatepass" lets lone surrogates reach the character check.
    if len(text) > MAX_BYTES // 4:
        size = len(text) if len(text) > MAX_BYTES else len(text.encode("utf-8", "surrogatepass"))
        if size > MAX_BYTES:
            raise YamlLoadError([_too_big_problem(size, filename)])
    return text[1:] if text.startswith("\ufeff") else text


# Byte order marks, longest first (the UTF-32LE mark starts with the UTF-16LE one).
_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def _wide_encoding(raw: bytes) -> str | None:
    """The UTF-16 or UTF-32 encoding of `raw`, if it is one: by its byte order mark or, without
    one, by the zero bytes around its first character, which is ASCII in any YAML file (the
    detection rule of YAML 1.2, section 5.2)."""
    for bom, name in _BOMS:
        if raw.startswith(bom):
            return f"{name} (with a byte order mark)"
    head = raw[:4]
    if len(head) == 4 and head[:3] == b"\0\0\0" and head[3]:
        return "UTF-32BE"
    if len(head) == 4 and head[0] and head[1:] == b"\0\0\0":
        return "UTF-32LE"
    if len(head) >= 2 and not head[0] and head[1]:
        return "UTF-16BE"
    if len(head) >= 2 and head[0] and not head[1]:
        return "UTF-16LE"
    return None


def _not_utf8_problem(raw: bytes, offset: int, filename: str) -> Problem:
    """Name the byte that is not UTF-8, and the 8-bit encoding the file most likely uses."""
    line = raw.count(b"\n", 0, offset) + 1
    byte = raw[offset]
    message = f"the file is not valid UTF-8 (byte 0x{byte:02x} on line {line}, at offset {offset})"
    try:
        read = raw[offset:offset + 1].decode("cp1252")
        raw.decode("cp1252")
    except UnicodeDecodeError:
        return Problem(filename, line, (), message, "save the file with UTF-8 encoding")
    return Problem(
        filename,
        line,
        (),
        f"{message}: it looks like Windows-1252 or Latin-1 (ISO-8859-1) text, where that byte is {read!r}",
        f"convert it: iconv -f WINDOWS-1252 -t UTF-8 {filename} > converted.yaml (or save it as UTF-8 in your editor)",
    )


def _too_big_problem(size: int, filename: str) -> Problem:
    return Problem(
        filename,
        None,
        (),
        f"the file is too large ({size} bytes; the limit is {MAX_BYTES})",
        "a spec should be far smaller than this; split it or remove generated content",
    )


def _bad_character_problem(source: str, offset: int, filename: str) -> Problem:
    char = source[offset]
    name = "a NUL byte" if char == "\0" else f"the character U+{ord(char):04X}"
    return Problem(
        filename,
        source.count("\n", 0, offset) + 1,
        (),
        f"the file contains {name}, which YAML does not allow",
        "remove the control character (most editors do not show it); is this a binary file?",
    )


# --------------------------------------------------------------------------
# Parser errors -> Problem.

_SYNTAX_HINT = "check indentation, quoting and brackets on this line and the one before"


def _syntax_problem(err: yaml.MarkedYAMLError, source: str, filename: str) -> Problem:
    mark = err.problem_mark or err.context_mark
    line = mark.line + 1 if mark is not None else None
    message = err.problem or err.context or str(err)
    return Problem(filename, line, (), message, _syntax_hint(message, source, line))


def _syntax_hint(message: str, source: str, line: int | None) -> str:
    text = ""
    if line is not None:
        all_lines = source.splitlines()
        if 0 < line <= len(all_lines):
            text = all_lines[line - 1]
    indent = text[: len(text) - len(text.lstrip(" \t"))]
    if "\t" in indent or "'\\t'" in message:
        return "YAML indentation must use spaces, not tabs"
    if "mapping values are not allowed" in message:
        return "quote values that contain ': ', or fix the indentation of this line"
    if "cannot start any token" in message:
        return "values starting with characters such as @, ` or % must be quoted"
    return _SYNTAX_HINT


def _reader_problem(err: yaml.reader.ReaderError, source: str, filename: str) -> Problem:
    # Only reachable if the reader rejects something our own character check
    # let through; the offset unit differs between backends, so the line is
    # a best effort.
    offset = min(max(err.position, 0), len(source))
    return Problem(filename, source.count("\n", 0, offset) + 1, (), err.reason, "remove the character")


# --------------------------------------------------------------------------
# Event stream -> plain data.


@dataclass(slots=True)
class _Anchor:
    value: Any
    # (path relative to the anchored node, line) for everything below it, so
    # every expansion can register lines under its own path.
    records: list[tuple[Path, int]]
    count: int
    height: int


@final  # lets `type(frame) is _Seq` narrow frames to _Map in the other branch
class _Seq:
    __slots__ = ("path", "line", "anchor", "rec_start", "count_start", "height", "items")

    def __init__(self, path: Path, line: int, anchor: str | None, rec_start: int, count_start: int) -> None:
        self.path = path
        self.line = line
        self.anchor = anchor
        self.rec_start = rec_start
        self.count_start = count_start
        self.height = 0  # tallest child so far (scalar = 0)
        self.items: list[Any] = []


# Marker values for _Map.key: what the next completed node is for.
_WANT_KEY: Any = object()
_MERGE_KEY: Any = object()
_BAD_KEY: Any = object()


@final
class _Map:
    __slots__ = (
        "path", "line", "anchor", "rec_start", "count_start", "height",
        "data", "key_lines", "merges", "key", "value_path", "merge_start", "merge_line",
    )

    def __init__(self, path: Path, line: int, anchor: str | None, rec_start: int, count_start: int) -> None:
        self.path = path
        self.line = line
        self.anchor = anchor
        self.rec_start = rec_start
        self.count_start = count_start
        self.height = 0
        self.data: dict[str, Any] = {}
        self.key_lines: dict[str, int] = {}
        # (mapping to merge, its records relative to that mapping), in
        # priority order: earlier sources win, explicit keys beat them all.
        self.merges: list[tuple[dict[str, Any], list[tuple[Path, int]]]] = []
        self.key: Any = _WANT_KEY
        self.value_path: Path = path
        self.merge_start = 0
        self.merge_line: int | None = None


def _copy(value: Any) -> Any:
    # Each alias expansion gets its own containers so that a caller filling in
    # defaults in one place does not change every other use of the anchor.
    if type(value) is dict:
        return {k: _copy(v) for k, v in value.items()}
    if type(value) is list:
        return [_copy(v) for v in value]
    return value


def _show_tag(tag: str) -> str:
    return "!!" + tag[len(_TAG_PREFIX):] if tag.startswith(_TAG_PREFIX) else tag


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


class _Builder:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.problems: list[Problem] = []
        # (path, line) in document order. A list rather than a dict because
        # anchors slice it and merge values are cut back off its end.
        self.records: list[tuple[Path, int]] = []
        self.anchors: dict[str, _Anchor] = {}
        self.stack: list[_Seq | _Map] = []
        self.count = 0
        self.root: Any = None

    # -- bookkeeping -------------------------------------------------------

    def _problem(self, line: int | None, path: Path, message: str, hint: str | None,
                 value: Any = _MISSING) -> None:
        if value is _MISSING:
            self.problems.append(Problem(self.filename, line, path, message, hint))
        else:
            self.problems.append(Problem(self.filename, line, path, message, hint, value, True))

    def _fatal(self, line: int | None, path: Path, message: str, hint: str) -> YamlLoadError:
        return YamlLoadError([Problem(self.filename, line, path, message, hint)])

    def _too_many_nodes(self, line: int, path: Path) -> YamlLoadError:
        # Alone on purpose: once the limit is hit the rest is noise.
        return self._fatal(
            line,
            path,
            f"the document expands to more than {MAX_NODES} nodes (aliases?)",
            "aliases (*name) that refer to large or nested anchors multiply the "
            "document; reduce alias use",
        )

    def _enter(self, line: int) -> Path:
        """Path of the node starting at ``line``; registers its line."""
        stack = self.stack
        if not stack:
            self.records.append(((), line))
            return ()
        top = stack[-1]
        if type(top) is _Seq:
            path = top.path + (len(top.items),)
            self.records.append((path, line))
            return path
        if top.key is _WANT_KEY:
            # A node used as a key has no path of its own; anything it
            # reports is filed under the mapping.
            return top.path
        return top.value_path

    # -- main loop ---------------------------------------------------------

    def build(self, get_event: Callable[[], Any]) -> Any:
        get_event()  # StreamStartEvent
        event = get_event()
        if type(event) is StreamEndEvent:
            return None  # empty file or comments only
        # ``event`` is the DocumentStartEvent; the root node follows.

        stack = self.stack
        while True:
            event = get_event()
            kind = type(event)
            if kind is ScalarEvent:
                self._scalar(event)
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                self._start(event, kind is MappingStartEvent)
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                self._end(stack.pop())
            elif kind is AliasEvent:
                self._alias(event)
            elif kind is DocumentEndEvent:
                break

        event = get_event()
        if type(event) is DocumentStartEvent:
            self._problem(
                event.start_mark.line + 1,
                (),
                "expected a single YAML document, found another '---'",
                "a spec file holds one document; remove the extra '---' or split the file",
            )
        return self.root

    def _scalar(self, event: ScalarEvent) -> None:
        line = event.start_mark.line + 1
        path = self._enter(line)
        self.count += 1
        if self.count > MAX_NODES:
            raise self._too_many_nodes(line, path)
        text: str = event.value
        tag = event.tag
        plain = not event.style  # '' from libyaml, None from pure Python
        if tag is None:
            value = _resolve_plain(text) if plain else text
        else:
            value = text
            if tag != _STR_TAG:
                self._tag_problem(tag, line, path)
        if event.anchor is not None:
            self.anchors[event.anchor] = _Anchor(value, [], 1, 0)
        self._deliver(value, line, 0, text if plain and tag is None else None)

    def _start(self, event: MappingStartEvent | SequenceStartEvent, is_map: bool) -> None:
        line = event.start_mark.line + 1
        path = self._enter(line)
        if len(self.stack) >= MAX_DEPTH:
            # Fatal rather than skipped: stopping here also stops the parser,
            # which (pure-Python backend) gets slow on very deep flow nesting.
            raise YamlLoadError(self.problems + [Problem(
                self.filename,
                line,
                path,
                f"the document is nested more than {MAX_DEPTH} levels deep",
                "flatten the structure; no spec needs this much nesting",
            )])
        tag = event.tag
        if tag is not None and tag != (_MAP_TAG if is_map else _SEQ_TAG):
            self._tag_problem(tag, line, path)
        count_start = self.count
        self.count += 1
        if self.count > MAX_NODES:
            raise self._too_many_nodes(line, path)
        frame_type = _Map if is_map else _Seq
        self.stack.append(frame_type(path, line, event.anchor, len(self.records), count_start))

    def _end(self, frame: _Seq | _Map) -> None:
        value: Any = frame.items if type(frame) is _Seq else self._finish_map(frame)
        height = frame.height + 1
        if frame.anchor is not None:
            cut = len(frame.path)
            self.anchors[frame.anchor] = _Anchor(
                value,
                [(p[cut:], ln) for p, ln in self.records[frame.rec_start:]],
                self.count - frame.count_start,
                height,
            )
        self._deliver(value, frame.line, height, None)

    def _alias(self, event: AliasEvent) -> None:
        line = event.start_mark.line + 1
        path = self._enter(line)
        name: str = event.anchor
        if any(frame.anchor == name for frame in self.stack):
            self._problem(
                line, path, f"alias *{name} refers to a node that contains it",
                "an alias cannot point at one of its own parents (it would be infinitely deep)",
            )
            self._deliver(_INVALID, line, 0, None)
            return
        anchor = self.anchors.get(name)
        if anchor is None:
            self._problem(line, path, f"found undefined alias *{name}",
                          f"define the anchor (&{name}) before the alias that uses it")
            self._deliver(_INVALID, line, 0, None)
            return
        self.count += anchor.count
        if self.count > MAX_NODES:
            raise self._too_many_nodes(line, path)
        if len(self.stack) + anchor.height > MAX_DEPTH:
            self._problem(
                line, path,
                f"expanding alias *{name} here nests the document more than {MAX_DEPTH} levels deep",
                "flatten the structure; no spec needs this much nesting",
            )
            self._deliver(_INVALID, line, 0, None)
            return
        if anchor.height:
            records = self.records
            for rel, ln in anchor.records:
                records.append((path + rel, ln))
            value = _copy(anchor.value)
        else:
            value = anchor.value
        self._deliver(value, line, anchor.height, None)

    def _tag_problem(self, tag: str, line: int, path: Path) -> None:
        shown = _show_tag(tag)
        self._problem(
            line, path, f"YAML tags are not allowed (found {shown})",
            f"remove '{shown}'; write a plain value (quote it if it must be a string)",
        )

    # -- placing a finished node into its parent ---------------------------

    def _deliver(self, value: Any, line: int, height: int, plain_text: str | None) -> None:
        """Hand a finished node to whatever is waiting for it.

        ``plain_text`` is the source text of an untagged plain scalar (None
        otherwise); only such a scalar can be the merge key ``<<``.
        """
        stack = self.stack
        if not stack:
            self.root = value
            return
        top = stack[-1]
        if type(top) is _Seq:
            top.items.append(value)
            if height > top.height:
                top.height = height
            return
        key = top.key
        if key is _WANT_KEY:
            self._take_key(top, value, line, plain_text)
            return
        top.key = _WANT_KEY
        if key is _MERGE_KEY:
            self._take_merge(top, value, height)
        elif key is not _BAD_KEY:
            top.data[key] = value
            if height > top.height:
                top.height = height

    def _take_key(self, top: _Map, key: Any, line: int, plain_text: str | None) -> None:
        if plain_text == "<<":
            if top.merge_line is not None:
                self._problem(
                    line, top.path + ("<<",),
                    f"duplicate key '<<' (first at line {top.merge_line})",
                    "merge several mappings with one key: '<<: [*a, *b]'",
                )
                top.key = _BAD_KEY
                top.value_path = top.path + ("<<",)
                return
            top.merge_line = line
            top.key = _MERGE_KEY
            # The merge value is built under a scratch path; its line records
            # are cut off again and re-filed under the real keys at the end.
            top.value_path = top.path + ("<<",)
            top.merge_start = len(self.records)
            return
        if type(key) is str:
            path = top.path + (key,)
            first = top.key_lines.get(key)
            top.value_path = path
            if first is not None:
                self._problem(
                    line, path, f"duplicate key '{key}' (first at line {first})",
                    "each key may appear once per mapping; remove or rename one of them",
                )
                top.key = _BAD_KEY
                return
            top.key_lines[key] = line
            self.records.append((path, line))
            top.key = key
            return
        top.key = _BAD_KEY
        shown = plain_text if plain_text is not None else repr(key)
        top.value_path = top.path + (shown,)
        if key is not _INVALID:
            if isinstance(key, (dict, list)):
                message = f"keys must be strings, but this key is {_describe(key)}"
                hint = "use a plain name as the key and put the structure in its value"
            else:
                message = f"keys must be strings, but {shown} is read as {_describe(key)}"
                hint = f"quote the key (\"{shown}\": ...) to make it a string"
            self._problem(line, top.path + (shown,), message, hint, key)

    def _take_merge(self, top: _Map, value: Any, height: int) -> None:
        records = self.records
        scratch = records[top.merge_start:]
        del records[top.merge_start:]
        cut = len(top.path) + 1
        if value is _INVALID:
            return
        if type(value) is dict:
            top.merges.append((value, [(p[cut:], ln) for p, ln in scratch]))
            # Merged entries sit one level higher than inside the merged map.
            if height - 1 > top.height:
                top.height = height - 1
            return
        line = top.merge_line
        if type(value) is list:
            item_lines: dict[int, int] = {}
            per_item: list[list[tuple[Path, int]]] = [[] for _ in value]
            for p, ln in scratch:
                # Under a merge list, the element after the scratch path is the item's index.
                position = cast(int, p[cut])
                if len(p) == cut + 1:
                    item_lines[position] = ln
                else:
                    per_item[position].append((p[cut + 1:], ln))
            ok = True
            for index, item in enumerate(value):
                if type(item) is not dict and item is not _INVALID:
                    ok = False
                    self._problem(
                        item_lines.get(index, line), top.path + ("<<", index),
                        f"'<<' (merge key) list items must be mappings, but item {index} is {_describe(item)}",
                        "list only mappings (usually aliases like *defaults) after '<<:'",
                    )
            if ok:
                for index, item in enumerate(value):
                    if item is not _INVALID:
                        top.merges.append((item, per_item[index]))
                if height - 2 > top.height:
                    top.height = height - 2
            return
        self._problem(
            line, top.path + ("<<",),
            f"'<<' (merge key) needs a mapping or a list of mappings, not {_describe(value)}",
            "write '<<: *defaults' where &defaults marks a mapping",
            value,
        )

    def _finish_map(self, frame: _Map) -> dict[str, Any]:
        explicit = frame.data
        if not frame.merges:
            return explicit
        merged: dict[str, Any] = {}
        source: dict[str, int] = {}
        for index, (mapping, _) in enumerate(frame.merges):
            for key, value in mapping.items():
                if key not in merged:
                    merged[key] = value
                    source[key] = index
        for key in explicit:
            source.pop(key, None)  # explicit keys override merged ones silently
        merged.update(explicit)
        records = self.records
        path = frame.path
        for index, (_, recs) in enumerate(frame.merges):
            for rel, line in recs:
                # Records of a merged mapping start with one of its (string) keys.
                if source.get(cast(str, rel[0])) == index:
                    records.append((path + rel, line))
        return merged
