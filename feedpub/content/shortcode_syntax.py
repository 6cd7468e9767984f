"""Hugo's shortcode syntax: the lexer and parser that turn a post's Markdown into
text and shortcode calls (``shortcodes`` expands them).

The syntax is Hugo's (parser/pageparser/pagelexer_shortcode.go): ``{{< name args >}}``
and ``{{% name args %}}``, paired (``{{< x >}}...{{< /x >}}``) or self-closing
(``{{< x />}}``), arguments positional or named, never both, quoted with ``"``
(``\\"`` inside) or backticks (raw, may span lines); unquoted ones read as
numbers and booleans as Hugo reads them. ``{{</* x */>}}`` shows ``{{< x >}}``.

Shortcodes in Markdown code (spans, fenced and indented blocks) run too, as in
Hugo: that is why the escapes exist; code that only looks like one (a Go
template, say) stays as written.

Every loop is bounded by the input: a malformed tag is dropped from where the
lexer stopped, nesting deeper than ``MAX_DEPTH`` and calls beyond ``MAX_CALLS``
lose their tags, and no tag may run longer than ``MAX_TAG_LENGTH``.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from feedpub.content.mdcode import CodeMap

MAX_DEPTH = 24
MAX_CALLS = 5_000
MAX_TAG_LENGTH = 10_000

_OPENER = re.compile(r"\{\{[<%]")
_NAME = re.compile(r"\w[\w\-/]*(?:\.inline)?")
_WORD = re.compile(r"[\w\-.]+")
_QUOTED = re.compile(r'"((?:[^"\\\n]|\\[^\n])*)"')
_RAW = re.compile(r"`([^`]*)`")
_SPACE = re.compile(r"[ \t\r\n]*")
_BARE_VALUE = re.compile(r"[^ \t\r\n]+")
_INT = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(r"[-+]?[0-9]*\.[0-9]+")

Value = str | int | float | bool


@dataclass(frozen=True, slots=True)
class Note:
    """Something a shortcode call in the body could not do, at a line of the body.
    ``unknown`` names a shortcode that has no template."""

    line: int
    message: str
    unknown: str | None = None
    error: bool = False  # a template failed: the body cannot be shown as meant


# -- tags --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tag:
    name: str
    markdown: bool  # {{% %}}: its output is Markdown
    closing: bool
    self_closing: bool
    args: tuple[Value, ...]
    params: Mapping[str, Value]
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Literal:
    """Text shown as written: an escaped shortcode, or code."""

    text: str
    code: bool


class _Malformed(Exception):
    def __init__(self, reason: str, stop: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stop = stop  # how far the lexer read


def _typed(text: str) -> Value:
    """An unquoted argument as Hugo reads it: a boolean, a whole number, a number, text."""
    if text in ("true", "false"):
        return text == "true"
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


def _skip_space(source: str, at: int, limit: int) -> int:
    found = _SPACE.match(source, at, limit)
    return found.end() if found else at


def _value(source: str, at: int, limit: int, close: str, named: bool) -> tuple[Value, int]:
    if source.startswith('"', at):
        quoted = _QUOTED.match(source, at, limit)
        if quoted is None:
            newline = source.find("\n", at, limit)
            raise _Malformed(
                "a quoted argument is not closed on its line", limit if newline < 0 else newline
            )
        return quoted.group(1).replace('\\"', '"'), quoted.end()
    if source.startswith("`", at):
        raw = _RAW.match(source, at, limit)
        if raw is None:
            raise _Malformed("a `raw` argument is not closed", limit)
        return raw.group(1), raw.end()
    if named:
        bare = _BARE_VALUE.match(source, at, limit)
        if bare is None:
            raise _Malformed("a named argument has no value", at)
        text = bare.group()
        ends = text.find(close)
        text = text if ends < 0 else text[:ends]
        return _typed(text), at + len(text)
    word = _WORD.match(source, at, limit)
    if word is None:
        raise _Malformed(
            f"unexpected {source[at]!r}: quote an argument that holds such characters", at
        )
    return _typed(word.group()), word.end()


def _lex_tag(source: str, at: int, markdown: bool) -> Tag:
    """The tag that starts at ``at`` (``{{<`` or ``{{%``), or _Malformed."""
    close = "%}}" if markdown else ">}}"
    limit = min(len(source), at + MAX_TAG_LENGTH)
    i = _skip_space(source, at + 3, limit)
    closing = source.startswith("/", i)
    if closing:
        i = _skip_space(source, i + 1, limit)
    found = _NAME.match(source, i, limit)
    if found is None:
        raise _Malformed("a shortcode needs a name", i)
    name = found.group().rstrip("/")
    i = found.start() + len(name)
    args: list[Value] = []
    params: dict[str, Value] = {}
    while True:
        i = _skip_space(source, i, limit)
        if i >= limit:
            raise _Malformed(f"{name!r} is not closed with {close}", i)
        if source.startswith(close, i):
            return Tag(name, markdown, closing, False, tuple(args), params, at, i + 3)
        if source[i] == "/" and not closing:
            after = _skip_space(source, i + 1, limit)
            if source.startswith(close, after):
                return Tag(name, markdown, False, True, tuple(args), params, at, after + 3)
        if closing:
            raise _Malformed(f"the closing tag of {name!r} takes no arguments", i)
        key = None
        word = _WORD.match(source, i, limit)
        if word is not None:
            after = _skip_space(source, word.end(), limit)
            if source.startswith("=", after) and after < limit:
                key = word.group()
                i = _skip_space(source, after + 1, limit)
        value, i = _value(source, i, limit, close, named=key is not None)
        if (key is None and params) or (key is not None and args):
            raise _Malformed("named and positional arguments cannot be mixed", i)
        if key is None:
            args.append(value)
        else:
            params[key] = value


class _Next:
    """Where ``needle`` next occurs at or after a position, for positions that only
    grow: each part of the text is searched once."""

    def __init__(self, source: str, needle: str) -> None:
        self._source = source
        self._needle = needle
        self._found = -2  # not searched yet

    def at_or_after(self, position: int) -> int:
        if self._found != -1 and self._found < position:
            self._found = self._source.find(self._needle, position)
        return self._found


class _Lines:
    """Line numbers, and whether a stretch of text stands alone on its lines."""

    def __init__(self, source: str) -> None:
        self.starts: list[int] = []
        self._first: list[int] = []
        self._last: list[int] = []
        offset = 0
        for line in source.split("\n"):
            self.starts.append(offset)
            self._first.append(offset + len(line) - len(line.lstrip(" \t")))
            self._last.append(offset + len(line.rstrip(" \t\r")))
            offset += len(line) + 1

    def number(self, position: int) -> int:
        return bisect.bisect_right(self.starts, position)

    def alone(self, start: int, end: int) -> bool:
        first, last = self.number(start) - 1, self.number(end - 1) - 1
        return self._first[first] == start and self._last[last] == end

    def indent(self, start: int) -> int:
        """How many characters stand before ``start`` on its line."""
        return start - self.starts[self.number(start) - 1]


_Token = str | Literal | Tag


def _tokens(source: str, lines: _Lines, notes: list[Note]) -> list[_Token]:
    """The text split into plain text, literal text and tags; a malformed tag is
    reported and left out."""
    code = CodeMap(source)
    comment_ends = {close: _Next(source, "*/" + close) for close in (">}}", "%}}")}
    tag_ends = {close: _Next(source, close) for close in (">}}", "%}}")}
    openers = (_Next(source, "{{<"), _Next(source, "{{%"))
    out: list[_Token] = []
    pending = search = 0
    while (found := _OPENER.search(source, search)) is not None:
        at = found.start()
        markdown = source[at + 2] == "%"
        close = "%}}" if markdown else ">}}"
        in_code = code.holds(at)
        if source.startswith("/*", at + 3):
            end = comment_ends[close].at_or_after(at + 5)
            if 0 <= end <= at + MAX_TAG_LENGTH:
                out.append(source[pending:at])
                out.append(Literal(source[at : at + 3] + source[at + 5 : end] + close, in_code))
                pending = search = end + 5
                continue
            if in_code:
                search = at + 3
                continue
            notes.append(
                Note(
                    lines.number(at), f"an escaped shortcode is not closed with */{close}; left out"
                )
            )
            out.append(source[pending:at])
            pending = search = at + 5
            continue
        try:
            tag = _lex_tag(source, at, markdown)
        except _Malformed as bad:
            if in_code:  # code that only looks like a shortcode stays as written
                search = at + 3
                continue
            notes.append(Note(lines.number(at), f"malformed shortcode: {bad.reason}; left out"))
            end = tag_ends[close].at_or_after(at + 3)
            following = [p for p in (o.at_or_after(at + 3) for o in openers) if p >= 0]
            before_next = not following or end < min(following)
            dropped_to = end + 3 if 0 <= end < at + MAX_TAG_LENGTH and before_next else at + 3
            resume = max(dropped_to, bad.stop)
            out.append(source[pending:at])
            out.append(_OPENER.sub("", source[dropped_to:resume]))
            pending = search = resume
            continue
        out.append(source[pending:at])
        out.append(tag)
        pending = search = tag.end
    out.append(source[pending:])
    return out


# -- calls -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    tag: Tag
    inner: tuple[Node, ...] | None  # None: no closing tag
    block: str | None  # alone on its lines: the indent before it; else None
    line: int


Node = str | Literal | Call


def _pairs(tokens: Sequence[_Token]) -> tuple[dict[int, int], set[int]]:
    """Opening tag -> its closing tag, and the closing tags that close nothing.
    A closing tag closes the latest open tag of its name; tags opened after that
    one and still open stand alone."""
    stack: list[int] = []
    open_names: Counter[str] = Counter()
    pairs: dict[int, int] = {}
    stray: set[int] = set()
    for index, token in enumerate(tokens):
        if not isinstance(token, Tag) or token.self_closing:
            continue
        if not token.closing:
            stack.append(index)
            open_names[token.name] += 1
        elif open_names[token.name] == 0:
            stray.add(index)
        else:
            while True:
                top = stack.pop()
                top_tag = tokens[top]
                assert isinstance(top_tag, Tag)
                open_names[top_tag.name] -= 1
                if top_tag.name == token.name:
                    pairs[top] = index
                    break
    return pairs, stray


def parse(source: str, notes: list[Note]) -> list[Node]:
    """The body as text and shortcode calls, nested as their tags pair up."""
    lines = _Lines(source)
    tokens = _tokens(source, lines, notes)
    pairs, stray = _pairs(tokens)
    root: list[Node] = []
    frames: list[tuple[Tag, list[Node]]] = []
    dropped_closes: set[int] = set()
    limits_met: set[str] = set()
    calls = 0

    def call(tag: Tag, inner: tuple[Node, ...] | None, end: int) -> Call:
        block = (
            source[tag.start - lines.indent(tag.start) : tag.start]
            if lines.alone(tag.start, end)
            else None
        )
        return Call(tag, inner, block, lines.number(tag.start))

    for index, token in enumerate(tokens):
        current = frames[-1][1] if frames else root
        if not isinstance(token, Tag):
            current.append(token)
        elif index in stray:
            notes.append(
                Note(
                    lines.number(token.start),
                    f"{{{{< /{token.name} >}}}} closes no shortcode; left out",
                )
            )
        elif token.closing:
            if index in dropped_closes:
                continue
            tag, inner = frames.pop()
            (frames[-1][1] if frames else root).append(call(tag, tuple(inner), token.end))
        elif (calls := calls + 1) > MAX_CALLS or (index in pairs and len(frames) >= MAX_DEPTH):
            limit = (
                f"more than {MAX_CALLS} shortcodes"
                if calls > MAX_CALLS
                else f"shortcodes nested more than {MAX_DEPTH} deep"
            )
            if limit not in limits_met:
                limits_met.add(limit)
                notes.append(Note(lines.number(token.start), f"{limit}: their tags are left out"))
            if index in pairs:
                dropped_closes.add(pairs[index])
        elif index in pairs:
            frames.append((token, []))
        else:
            current.append(call(token, None, token.end))
    return root
