"""Front matter in the three forms Hugo reads, split off and parsed: YAML between
``---`` lines, TOML between ``+++`` lines (``tomllib``), and a JSON object at the
top of the file (``json``).

YAML is parsed by ryaml (serde_yaml, over libyaml translated to Rust), about
five times faster than PyYAML builds the same values. Both parse with libyaml, so
they see the same scalars and collections, but ryaml reads plain scalars by YAML
1.2's rules: ``yes``, ``012``, ``1:20`` and ``2025-06-09`` stay text, ``0o12`` and
``1e3`` become numbers. So its values are held to PyYAML's. A text that PyYAML
reads as something else when plain (a date, most often) takes PyYAML's reading
when the front matter shows that it was plain, and stays text when it shows that
it was quoted. Front matter that does not show it, or that ryaml refuses, or with
a tag, an anchor or an alias, a key other than plain text, a number spelt in a
way the two read apart, or a NaN, goes to PyYAML whole, so that its values and
errors are PyYAML's. ``tests/test_front.py`` holds the two to the same answers.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import tomllib
from typing import Any

from frontmatter.default_handlers import YAMLHandler

# ryaml's typed extension module defines loads; its __init__ imports it, without __all__.
from ryaml import loads as ryaml_loads  # type: ignore[attr-defined]

from feedpub.content.text import xml_safe
from feedpub.errors import ContentError
from feedpub.yamlfile import RESOLVED_FIRSTS, YamlError, plain_scalar, read_yaml

_YAML = YAMLHandler()

# What libyaml may start a token after, and a little more: white space (and a BOM,
# which it skips too), a flow indicator, "?", ":", "-" or a quote (there only to fail).
_BEFORE_TOKEN = " \t\r\n\x85\u2028\u2029\ufeff\\[\\]{},?:\"'-"
# "!", "&" or "*" where a token may start: a tag, an anchor or an alias.
_NODE_PROPERTY = re.compile(rf"[!&*](?<![^{_BEFORE_TOKEN}].)")
# Plain scalars that ryaml reads as a float and PyYAML as text or an int: an exponent
# (PyYAML wants a dot and a signed one), a signed leading dot, and an integer past 128 bits.
_FLOAT_APART = re.compile(
    rf"(?<![^{_BEFORE_TOKEN}])(?:[-+]\.[0-9]|[-+]?(?:[0-9.]+[eE]|[0-9]{{39}}))"
)
_LINE_BREAKS = "\r\n\x85\u2028\u2029"  # libyaml's
# The start of a double-quoted scalar's first word, up to an escape in it.
_ESCAPED = re.compile(r'"([^\s\\"\']*)\\')
# The header of a block scalar: "|" or ">", its indicators, then a comment or a line break.
_BLOCK_SCALAR = re.compile(rf"[|>][-+0-9 \t]*(?:[#{_LINE_BREAKS}]|\Z)")


class _ApartFromPyYAML(Exception):
    """ryaml's values for this front matter might not be PyYAML's."""


def _plain(text: str) -> Any:
    """``text`` as PyYAML reads it unquoted: str, int, float, bool, None, date...;
    _ApartFromPyYAML when PyYAML would not read it, as 2025-13-45 or "<<"."""
    try:
        return plain_scalar(text)
    except ValueError:
        raise _ApartFromPyYAML from None


def _was_plain(text: str, front: str) -> bool:
    """Whether ``text``, a string of ryaml's from ``front`` that PyYAML reads as
    something else when plain, was a plain scalar; _ApartFromPyYAML when ``front``
    does not tell.

    Such a text has no quotes and starts with neither white space nor a line break,
    so its first word stands as it is in a plain scalar, which never starts right
    after a quote (libyaml refuses a scalar there); in a block scalar, after the
    indentation of a line; and in a quoted scalar, right after its quote, unless an
    escape comes first (white space and line breaks, folded into a space, are all
    else that can make a quoted scalar's words differ from its text's)."""
    word = text.split(None, 1)[0]
    plain = quoted = line_start = False
    at = front.find(word)
    while at >= 0:
        if at and front[at - 1] in "\"'":
            quoted = True
        else:
            plain = True
            start = at
            while start and front[start - 1] in " \t":
                start -= 1
            line_start = line_start or not start or front[start - 1] in _LINE_BREAKS
        at = front.find(word, at + 1)
    if not plain:
        return False
    if (
        quoted
        or (line_start and _BLOCK_SCALAR.search(front) is not None)
        or ("\\" in front and any(word.startswith(m[1]) for m in _ESCAPED.finditer(front)))
    ):
        raise _ApartFromPyYAML
    return True


@functools.lru_cache(maxsize=1024)
def _is_text(key: Any) -> bool:
    """Whether a mapping key of ryaml's is text that PyYAML reads as the same text."""
    return type(key) is str and (key[:1] not in RESOLVED_FIRSTS or type(_plain(key)) is str)


def _pyyaml_reading(value: Any, front: str) -> Any:
    """ryaml's ``value`` from ``front`` as PyYAML reads it; its lists and mappings are
    changed in place. Most texts start with a character that keeps them text to
    PyYAML, and are left as they are without a call."""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if not _is_text(key):  # keys such as 1, null, yes or "<<"
                raise _ApartFromPyYAML
            if type(item) is not str or item[:1] in RESOLVED_FIRSTS:
                value[key] = _pyyaml_reading(item, front)
        return value
    if kind is list:
        for index, item in enumerate(value):
            if type(item) is not str or item[:1] in RESOLVED_FIRSTS:
                value[index] = _pyyaml_reading(item, front)
        return value
    if kind is str:
        if not value:  # an empty plain scalar is null to both: this one was quoted
            return value
        reading = _plain(value)
        if type(reading) is str:  # the same, quoted or not
            return value
        return reading if _was_plain(value, front) else value
    if kind is float:
        # PyYAML's NaN has its sign bit set, ryaml's not.
        if value != value or _FLOAT_APART.search(front):
            raise _ApartFromPyYAML
        return value
    if kind is bool or kind is int or value is None:  # read alike, but for "0o" (_fast)
        return value
    raise _ApartFromPyYAML


def _fast(front: str) -> Any:
    """The front matter as PyYAML reads it, read by ryaml; _ApartFromPyYAML when the
    two might differ or ryaml refuses it."""
    # "0o" makes an octal number to ryaml, text to PyYAML. (Looking for the three
    # characters first is quicker than the regular expression alone.)
    if "0o" in front or (
        ("!" in front or "&" in front or "*" in front) and _NODE_PROPERTY.search(front)
    ):
        raise _ApartFromPyYAML
    try:
        value = ryaml_loads(front)
    except ValueError:  # invalid YAML, duplicate keys, a key Python cannot hash...
        raise _ApartFromPyYAML from None
    value = _pyyaml_reading(value, front)
    # Only an escape in a double-quoted scalar can make a character XML forbids:
    # libyaml refuses them in its input.
    return _xml_safe(value) if "\\" in front else value


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
    """The front matter's values; no string in them holds a character XML forbids."""
    try:
        return _fast(front)
    except _ApartFromPyYAML:
        pass
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
