"""Front matter in the three forms Hugo reads, split off and parsed: YAML between
``---`` lines, TOML between ``+++`` lines (``tomllib``), and a JSON object at the
top of the file (``json``).

Nearly every post's front matter is flat ``key: value`` lines: quoted or plain
scalars, lists of names (``[a, b]`` or ``- a`` lines) and one-level mappings
such as ``cover:``. Those are parsed here directly, about three times faster
than PyYAML builds them; anything else goes to PyYAML. Either way the result is
PyYAML's: a plain scalar is resolved and constructed by PyYAML's own rules
(``true``, ``0x1F``, ``2025-06-09``), and whatever the quick reading is unsure of,
it leaves to PyYAML. ``tests/test_front.py`` holds the two to the same answers.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import tomllib
from typing import Any

from frontmatter.default_handlers import YAMLHandler

from feedpub.content.text import xml_safe
from feedpub.errors import ContentError
from feedpub.yamlfile import YamlError, plain_scalar, read_yaml

_YAML = YAMLHandler()

# Characters the quick reading leaves to PyYAML: tabs, backslashes, and what
# YAML 1.1 counts as line breaks (NEL, U+2028, U+2029) or forbids.
_UNUSUAL = re.compile(r"[\x00-\x09\x0b-\x1f\\\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")
_ENTRY = re.compile(r"([A-Za-z_][A-Za-z0-9_-]{0,127}):(?: +(.*?))? *")
_ITEM = re.compile(r"- +(.*?) *")
_QUOTED_OR_FLOW = re.compile(r""""([^"]*)"|'((?:[^']|'')*)'|\[(.*)\]""")
_FLOW_ITEM = re.compile(
    r""" *(?:"([^"]*)"|'((?:[^']|'')*)'|([^ ,\[\]{}#&*!|>'"%@`?:-][^,\[\]{}#:'"]*?)) *(,|$)"""
)
# A plain scalar may not start with these (YAML 1.1, 7.3.3); leave them to PyYAML.
_INDICATORS = frozenset("-?:,[]{}#&*!|>'\"%@`")


class _Unsure(Exception):
    """The quick reading cannot vouch for this front matter."""


@functools.lru_cache(maxsize=4096)
def _plain(text: str) -> Any:
    """A plain scalar as PyYAML reads it: str, int, float, bool, None, date..."""
    try:
        return plain_scalar(text)
    except ValueError:
        raise _Unsure from None


def _flow_items(inner: str) -> list[Any]:
    if not inner.strip(" "):
        return []
    items: list[Any] = []
    position = 0
    while True:
        match = _FLOW_ITEM.match(inner, position)
        if match is None:
            raise _Unsure
        double, single, plain, comma = match.groups()
        if double is not None:
            items.append(double)
        elif single is not None:
            items.append(single.replace("''", "'"))
        else:
            items.append(_plain(plain))
        if not comma:
            return items
        position = match.end()


def _value(text: str, lists: bool = True) -> Any:
    """An inline value: a quoted or plain scalar or, with ``lists``, a one-line list."""
    match = _QUOTED_OR_FLOW.fullmatch(text)
    if match is None:  # plain, or something to leave to PyYAML
        if text[0] in _INDICATORS or " #" in text or ": " in text or text.endswith(":"):
            raise _Unsure
        return _plain(text)
    double, single, flow = match.groups()
    if double is not None:
        return double
    if single is not None:
        return single.replace("''", "'")
    if not lists:
        raise _Unsure
    return _flow_items(flow)


def _key(name: str) -> str:
    if _plain(name) != name:  # true:, null: and the like are not text keys
        raise _Unsure
    return name


def _block(lines: list[str]) -> Any:
    """The indented lines under ``key:``: a list of scalars or a flat mapping."""
    content = [line for line in lines if line.strip(" ") and not line.lstrip(" ").startswith("#")]
    if not content:
        return None
    indent = len(content[0]) - len(content[0].lstrip(" "))
    if any(len(line) - len(line.lstrip(" ")) != indent for line in content):
        raise _Unsure
    if content[0][indent] == "-":
        items = []
        for line in content:
            match = _ITEM.fullmatch(line, indent)
            if match is None or not match[1]:
                raise _Unsure
            items.append(_value(match[1], lists=False))
        return items
    mapping: dict[str, Any] = {}
    for line in content:
        match = _ENTRY.fullmatch(line, indent)
        if match is None:
            raise _Unsure
        mapping[_key(match[1])] = _value(match[2]) if match[2] else None
    return mapping


def _quick(front: str) -> dict[str, Any] | None:
    """The front matter as PyYAML would read it, or None when it looks unusual."""
    if _UNUSUAL.search(front):
        return None
    lines = front.split("\n")
    meta: dict[str, Any] = {}
    i = 0
    try:
        while i < len(lines):
            line = lines[i]
            i += 1
            match = _ENTRY.fullmatch(line)
            if match is None:
                if not line.strip(" ") or line.lstrip(" ").startswith("#"):
                    continue  # a blank line or a comment
                return None
            key = _key(match[1])
            if match[2]:
                meta[key] = _value(match[2])
                continue
            start = i
            while i < len(lines) and (
                lines[i].startswith((" ", "-")) or not lines[i] or lines[i].startswith("#")
            ):
                i += 1
            meta[key] = _block(lines[start:i])
    except _Unsure:
        return None
    return meta or None  # PyYAML reads an empty document as None


def _xml_safe(value: Any) -> Any:
    """``value`` with characters XML cannot carry removed from every string in it."""
    if isinstance(value, str):
        return xml_safe(value)
    if isinstance(value, list):
        return [_xml_safe(v) for v in value]
    if isinstance(value, dict):
        return {_xml_safe(k): _xml_safe(v) for k, v in value.items()}
    return value


def _load(front: str, delimiter_line: int, label: str) -> Any:
    """The front matter's values; no string in them holds a character XML forbids
    (the file's text has none, and the quick reading makes none, but a YAML escape
    such as "\\x01" could)."""
    quick = _quick(front)
    if quick is not None:
        return quick
    try:
        return _xml_safe(read_yaml(front))
    except YamlError as exc:
        line = None if exc.line is None else delimiter_line + exc.line
        raise ContentError(label, f"invalid YAML in front matter: {exc.problem}", line) from None


_TOML_FENCE = re.compile(r"^\+{3}[ \t]*$", re.MULTILINE)
_TOML_LINE = re.compile(r"at line (\d+)")
_JSON = json.JSONDecoder()


def _toml(front: str, delimiter_line: int, label: str) -> dict[str, Any]:
    try:
        return tomllib.loads(front)
    except tomllib.TOMLDecodeError as exc:
        reason = str(exc)
        found = _TOML_LINE.search(reason)
        line = None if found is None else delimiter_line + int(found[1]) - 1
        problem = _TOML_LINE.sub("", reason).replace("(, column", "(column").strip()
        raise ContentError(label, f"invalid TOML in front matter: {problem}", line) from None


def _json(stripped: str, offset: int, label: str) -> tuple[Any, str]:
    try:
        meta, end = _JSON.raw_decode(stripped)
    except json.JSONDecodeError as exc:
        problem = f"invalid JSON in front matter: {exc.msg}"
        raise ContentError(label, problem, offset + exc.lineno) from None
    return meta, stripped[end:]


def _fenced(stripped: str, fence: re.Pattern[str]) -> tuple[str, str] | None:
    """The front matter between two ``fence`` lines and the body after them."""
    parts = fence.split(stripped, 2)
    if len(parts) < 3:
        return None
    return parts[1], parts[2]


def split(text: str, label: str) -> tuple[dict[str, Any], str]:
    """Front matter as a mapping, and the Markdown body after it."""
    stripped = text.lstrip()
    offset = text.count("\n", 0, len(text) - len(stripped))
    if stripped.startswith("{"):
        meta, body = _json(stripped, offset, label)
        if not isinstance(meta, dict):
            raise ContentError(label, "front matter must be a mapping of keys", offset + 1)
        return _xml_safe(meta), body.lstrip("\n")
    if _TOML_FENCE.match(stripped):
        parts = _fenced(stripped, _TOML_FENCE)
        if parts is None:
            raise ContentError(label, "front matter has no closing +++ line", offset + 1)
        return _xml_safe(_toml(parts[0], offset + 1, label)), parts[1].lstrip("\n")
    boundary = _YAML.FM_BOUNDARY.match(stripped)
    if boundary is None:
        raise ContentError(
            label,
            "no front matter; the file must start with a line of --- (YAML), "
            "+++ (TOML) or { (JSON)",
            1,
        )
    try:
        front, body = _YAML.split(stripped)
    except ValueError:
        raise ContentError(label, "front matter has no closing --- line", offset + 1) from None
    # ``front`` starts right after the opening dashes, so its first line is theirs.
    delimiter_line = offset + stripped.count("\n", 0, boundary.end()) + 1
    meta = _load(front, delimiter_line, label)
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise ContentError(label, "front matter must be a mapping of keys", delimiter_line + 1)
    return meta, body.lstrip("\n")


def _body_start(stripped: str) -> str | None:
    """What follows the front matter of ``stripped`` (a text without leading
    space), whatever its form; None without front matter."""
    if stripped.startswith("{"):
        try:
            return stripped[_JSON.raw_decode(stripped)[1] :]
        except json.JSONDecodeError:
            return None
    fence = _TOML_FENCE if _TOML_FENCE.match(stripped) else _YAML.FM_BOUNDARY
    parts = _fenced(stripped, fence)
    return None if parts is None else parts[1]


def head_digest(text: str) -> bytes | None:
    """A digest of everything before the body: the front matter with its fences
    and whatever precedes them, which is all that a post's fields (and the
    problems reported with their line numbers) depend on. None without front matter."""
    body = _body_start(text.lstrip())
    if body is None:
        return None
    # The closing fence's match may take blank lines after it: those belong to the body.
    head = text[: len(text) - len(body)].rstrip()
    return hashlib.blake2b(head.encode(), digest_size=16).digest()


def body_of(text: str) -> str:
    """The body of a text ``split`` accepted, without reading its front matter again
    (except JSON front matter, whose end only parsing finds)."""
    body = _body_start(text.lstrip())
    return "" if body is None else body.lstrip("\n")
