"""Hugo shortcodes in a post's Markdown, expanded before the Markdown is rendered.

The syntax is Hugo's (parser/pageparser/pagelexer_shortcode.go): ``{{< name args >}}``
and ``{{% name args %}}``, paired (``{{< x >}}...{{< /x >}}``) or self-closing
(``{{< x />}}``), arguments positional or named, never both, quoted with ``"``
(``\\"`` inside) or backticks (raw, may span lines); unquoted ones read as
numbers and booleans as Hugo reads them. ``{{</* x */>}}`` shows ``{{< x >}}``.

Expansion follows hugolib/shortcode.go: the output of ``{{% %}}`` goes into the
Markdown; the output of ``{{< >}}`` is HTML, so it goes in as a placeholder
(``FPSC<n>CSPF``) whose HTML ``render_body`` puts in place. A shortcode alone
on its line(s) is a block: its placeholder gets a paragraph of its own. Inside
a ``{{< >}}`` the inner text is HTML, and a nested ``{{% %}}`` has its inner
rendered as Markdown first, as in Hugo.

Shortcodes in Markdown code (spans, fenced and indented blocks) run too, as in
Hugo: that is why the escapes exist; code that only looks like one (a Go
template, say) stays as written. Where feedpub differs from Hugo, on purpose:
a shortcode without a template is no error: its tags are left out and what
they enclose is kept.

Every loop is bounded by the input: a malformed tag is dropped from where the
lexer stopped, nesting deeper than ``MAX_DEPTH`` and calls beyond ``MAX_CALLS``
lose their tags, and no tag may run longer than ``MAX_TAG_LENGTH``.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from markupsafe import Markup

from feedpub import templating
from feedpub.config import SiteConfig
from feedpub.errors import RenderError
from feedpub.model import Post
from feedpub.theme import shortcode_template, template_path

MAX_DEPTH = 24
MAX_CALLS = 5_000
MAX_TAG_LENGTH = 10_000
# The names the pass itself handles, whatever the templates say.
DROPPED = frozenset({"comment"})

PLACEHOLDER = re.compile(r"FPSC([0-9]+)CSPF")
_WRAPPED_PLACEHOLDER = re.compile(r"<p>(FPSC[0-9]+CSPF)</p>|FPSC[0-9]+CSPF")
_OPENER = re.compile(r"\{\{[<%]")
_NAME = re.compile(r"\w[\w\-/]*(?:\.inline)?")
_WORD = re.compile(r"[\w\-.]+")
_QUOTED = re.compile(r'"((?:[^"\\\n]|\\[^\n])*)"')
_RAW = re.compile(r"`([^`]*)`")
_SPACE = re.compile(r"[ \t\r\n]*")
_BARE_VALUE = re.compile(r"[^ \t\r\n]+")
_INT = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(r"[-+]?[0-9]*\.[0-9]+")
_MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
_FENCE = re.compile(r"(`{3,}|~{3,})")
_LIST_MARKER = re.compile(r"(?:[-+*]|[0-9]{1,9}[.)])(?: {1,4}|\t|$)")
_QUOTE_MARKERS = re.compile(r"(?: {0,3}> ?)+")
_BACKTICKS = re.compile(r"`+")
_SINGLE_PARAGRAPH = re.compile(r"\A<p>((?:(?!<p[ >]).)*)</p>\s*\Z", re.DOTALL)

Value = str | int | float | bool
Resolve = Callable[[str], "str | None"]
Markdownify = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class Note:
    """Something a shortcode call in the body could not do, at a line of the body.
    ``unknown`` names a shortcode that has no template."""

    line: int
    message: str
    unknown: str | None = None
    error: bool = False  # a template failed: the body cannot be shown as meant


@dataclass(frozen=True, slots=True)
class Expansion:
    """The body with every shortcode expanded, the HTML of the placeholders it
    holds, and what went wrong on the way."""

    markdown: str
    parts: Mapping[str, str]
    notes: tuple[Note, ...]


# -- templates ---------------------------------------------------------------


class ShortcodeTemplates:
    """The templates shortcodes render with: ``shortcodes/NAME.html.j2`` in the
    site's templates folder, then the built-in ones.

    Compiled templates are kept for the object's life; it pickles as its folder
    alone, so a worker process gets a fresh one."""

    def __init__(self, templates_dir: Path) -> None:
        self.templates_dir = templates_dir
        self._environment: Any = None
        self._known: dict[str, bool] = {}

    def __getstate__(self) -> Path:
        return self.templates_dir

    def __setstate__(self, templates_dir: Path) -> None:
        self.__init__(templates_dir)  # type: ignore[misc]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ShortcodeTemplates) and other.templates_dir == self.templates_dir

    def __hash__(self) -> int:
        return hash(self.templates_dir)

    def __repr__(self) -> str:
        return f"ShortcodeTemplates({self.templates_dir!r})"

    def has(self, name: str) -> bool:
        """Whether a template for shortcode ``name`` exists (site's or built in)."""
        if name not in self._known:
            found = template_path(self.templates_dir, shortcode_template(name))
            self._known[name] = found.is_file()
        return self._known[name]

    def render(self, name: str, context: dict[str, Any]) -> str:
        if self._environment is None:
            self._environment = templating.shortcode_environment(self.templates_dir)
        return templating.render(self._environment, shortcode_template(name), context)


# -- code in the Markdown ----------------------------------------------------


def _indent_width(line: str) -> int:
    width = 0
    for char in line:
        if char == " ":
            width += 1
        elif char == "\t":
            width += 4 - width % 4
        else:
            break
    return width


def code_ranges(source: str) -> list[tuple[int, int]]:
    """Where ``source`` holds Markdown code: fenced and indented code blocks
    (in lists and block quotes too) and code spans, as sorted (start, end) offsets.

    A reading of CommonMark's block structure close enough for shortcodes: list
    items by their content indent, block quotes by their ``>`` markers."""
    ranges: list[tuple[int, int]] = []
    paragraph: list[tuple[int, int]] = []  # lines of the running paragraph
    fence: tuple[str, int] | None = None  # marker and its container indent
    lists: list[int] = []  # content indents of the open list items
    offset = 0
    in_paragraph = False
    for line in source.splitlines(keepends=True):
        start, offset = offset, offset + len(line)
        text = line.rstrip("\r\n")
        quoted = _QUOTE_MARKERS.match(text)
        body = text[quoted.end() :] if quoted else text
        width = _indent_width(body)
        if fence is not None:
            marker, container = fence
            stripped = body[min(width, container) :] if width >= container else body
            closing = _FENCE.match(stripped.lstrip(" "))
            ranges.append((start, offset))
            if (
                closing
                and _indent_width(stripped) < 4
                and closing.group(1)[0] == marker[0]
                and len(closing.group(1)) >= len(marker)
                and not stripped.lstrip(" ")[closing.end() :].strip()
            ):
                fence = None
            continue
        if not body.strip():
            _close_paragraph(source, paragraph, ranges)
            in_paragraph = False
            continue
        while lists and width < lists[-1] and not in_paragraph:
            lists.pop()
        container = lists[-1] if lists and width >= lists[-1] else 0
        relative = width - container
        if relative >= 4 and not in_paragraph:
            ranges.append((start, offset))
            continue
        content = body.lstrip(" \t")
        opened = _FENCE.match(content)
        if opened and not (opened.group(1)[0] == "`" and "`" in content[opened.end() :]):
            _close_paragraph(source, paragraph, ranges)
            in_paragraph = False
            fence = (opened.group(1), container)
            ranges.append((start, offset))
            continue
        item = _LIST_MARKER.match(content)
        if item:
            _close_paragraph(source, paragraph, ranges)
            lists.append(width + item.end())
            content = content[item.end() :]
            if not content.strip():
                in_paragraph = False
                continue
        paragraph.append((start + len(text) - len(content), start + len(text)))
        in_paragraph = True
    _close_paragraph(source, paragraph, ranges)
    ranges.sort()
    return ranges


def _close_paragraph(
    source: str, lines: list[tuple[int, int]], ranges: list[tuple[int, int]]
) -> None:
    """Add the code spans of a paragraph's lines: a run of backticks up to the
    next run of the same length."""
    runs: list[tuple[int, int]] = []
    for begin, end in lines:
        runs.extend((m.start(), m.end()) for m in _BACKTICKS.finditer(source, begin, end))
    lines.clear()
    by_length: dict[int, list[int]] = {}
    for index, (begin, end) in enumerate(runs):
        by_length.setdefault(end - begin, []).append(index)
    index = 0
    while index < len(runs):
        begin, end = runs[index]
        escaped = begin > 0 and source[begin - 1] == "\\"
        same = by_length[end - begin]
        following = bisect.bisect_right(same, index)
        if escaped or following == len(same):
            index += 1
            continue
        close = same[following]
        ranges.append((begin, runs[close][1]))
        index = close + 1


class _CodeMap:
    def __init__(self, source: str) -> None:
        self._ranges = code_ranges(source)
        self._starts = [start for start, _ in self._ranges]

    def holds(self, position: int) -> bool:
        at = bisect.bisect_right(self._starts, position) - 1
        return at >= 0 and self._ranges[at][1] > position


# -- tags --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Tag:
    name: str
    markdown: bool  # {{% %}}: its output is Markdown
    closing: bool
    self_closing: bool
    args: tuple[Value, ...]
    params: Mapping[str, Value]
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class _Literal:
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


def _lex_tag(source: str, at: int, markdown: bool) -> _Tag:
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
            return _Tag(name, markdown, closing, False, tuple(args), params, at, i + 3)
        if source[i] == "/" and not closing:
            after = _skip_space(source, i + 1, limit)
            if source.startswith(close, after):
                return _Tag(name, markdown, False, True, tuple(args), params, at, after + 3)
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


_Token = str | _Literal | _Tag


def _tokens(source: str, lines: _Lines, notes: list[Note]) -> list[_Token]:
    """The text split into plain text, literal text and tags; a malformed tag is
    reported and left out."""
    code = _CodeMap(source)
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
                out.append(_Literal(source[at : at + 3] + source[at + 5 : end] + close, in_code))
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
class _Call:
    tag: _Tag
    inner: tuple[_Node, ...] | None  # None: no closing tag
    block: str | None  # alone on its lines: the indent before it; else None
    line: int


_Node = str | _Literal | _Call


def _pairs(tokens: Sequence[_Token]) -> tuple[dict[int, int], set[int]]:
    """Opening tag -> its closing tag, and the closing tags that close nothing.
    A closing tag closes the latest open tag of its name; tags opened after that
    one and still open stand alone."""
    stack: list[int] = []
    open_names: Counter[str] = Counter()
    pairs: dict[int, int] = {}
    stray: set[int] = set()
    for index, token in enumerate(tokens):
        if not isinstance(token, _Tag) or token.self_closing:
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
                assert isinstance(top_tag, _Tag)
                open_names[top_tag.name] -= 1
                if top_tag.name == token.name:
                    pairs[top] = index
                    break
    return pairs, stray


def parse(source: str, notes: list[Note]) -> list[_Node]:
    """The body as text and shortcode calls, nested as their tags pair up."""
    lines = _Lines(source)
    tokens = _tokens(source, lines, notes)
    pairs, stray = _pairs(tokens)
    root: list[_Node] = []
    frames: list[tuple[_Tag, list[_Node]]] = []
    dropped_closes: set[int] = set()
    limits_met: set[str] = set()
    calls = 0

    def call(tag: _Tag, inner: tuple[_Node, ...] | None, end: int) -> _Call:
        block = (
            source[tag.start - lines.indent(tag.start) : tag.start]
            if lines.alone(tag.start, end)
            else None
        )
        return _Call(tag, inner, block, lines.number(tag.start))

    for index, token in enumerate(tokens):
        current = frames[-1][1] if frames else root
        if not isinstance(token, _Tag):
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


# -- expansion ---------------------------------------------------------------


def front_matter(post: Post) -> dict[str, Any]:
    """What templates and ``param`` read as the page's front matter: the other
    keys as written, then the fields feedpub reads, under Hugo's names."""
    return {
        **post.extra,
        "title": post.title,
        "date": post.date,
        "lastmod": post.updated,
        "draft": post.draft,
        "tags": list(post.tags),
        "categories": list(post.categories),
        "author": post.author.name,
        "summary": post.summary,
        "slug": post.slug,
        "source_url": post.source_url,
        "permalink": post.url,
    }


def _lookup(values: Mapping[str, Any], key: str) -> Any:
    """``key`` in ``values``, ignoring case; dots step into mappings (``a.b``)."""
    found: Any = values
    for part in key.lower().split("."):
        if not isinstance(found, Mapping):
            return None
        found = {str(name).lower(): value for name, value in found.items()}.get(part)
        if found is None:
            return None
    return found


def _display(value: Any) -> str:
    """A front-matter value as text, as Hugo prints it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ", ".join(_display(item) for item in value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def unwrap_paragraph(html_text: str) -> str:
    """HTML of one paragraph without its ``<p>``, as Hugo's ``markdownify`` gives it."""
    single = _SINGLE_PARAGRAPH.match(html_text)
    return single.group(1) if single else html_text


def _literal_markdown(text: str) -> str:
    """Text that Markdown shows exactly as written."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", text)


@dataclass
class _Expander:
    page: Mapping[str, Any]
    site: SiteConfig
    templates: ShortcodeTemplates
    resolve: Resolve | None
    markdownify: Markdownify
    number: int
    parts: dict[str, str] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)

    def render(self, nodes: Sequence[_Node], in_html: bool) -> str:
        return "".join(self._node(node, in_html) for node in nodes)

    def _node(self, node: _Node, in_html: bool) -> str:
        if isinstance(node, str):
            return node
        if isinstance(node, _Literal):
            return node.text if node.code or in_html else _literal_markdown(node.text)
        tag = node.tag
        if tag.name in DROPPED:
            return ""
        if tag.name.endswith(".inline"):
            self.notes.append(
                Note(node.line, f"inline shortcode {tag.name!r} is not run; left out")
            )
            return ""
        if not self.templates.has(tag.name):
            self.notes.append(
                Note(node.line, f"no template for shortcode {tag.name!r}", unknown=tag.name)
            )
            return "" if node.inner is None else self.render(node.inner, in_html)
        if tag.markdown:
            inner = None if node.inner is None else self.render(node.inner, in_html=False)
            if inner is not None and in_html:
                rendered = self.markdownify(inner)
                inner = rendered if "\n" in inner else unwrap_paragraph(rendered)
            # Line breaks a template's own lines leave around its output would
            # end a paragraph or break a link target.
            return self._template(node, inner).strip("\n")
        inner = None if node.inner is None else self.render(node.inner, in_html=True)
        output = _WRAPPED_PLACEHOLDER.sub(self._part_of, self._template(node, inner).strip())
        placeholder = f"FPSC{self.number}CSPF"
        self.number += 1
        self.parts[placeholder] = output
        return placeholder if node.block is None else f"\n{node.block}{placeholder}\n"

    def _part_of(self, found: re.Match[str]) -> str:
        name = found.group(1) or found.group(0)
        return self.parts.get(name, found.group(0))

    def _template(self, call: _Call, inner: str | None) -> str:
        tag = call.tag

        def get(key: int | str, default: Any = "") -> Any:
            if isinstance(key, int):
                return tag.args[key] if 0 <= key < len(tag.args) else default
            return tag.params.get(key, default)

        def param(key: object) -> str:
            value = _lookup(self.page, str(key))
            if value is None:
                value = _lookup(self.site.params, str(key))
            if value is None:
                self.notes.append(
                    Note(
                        call.line,
                        f"param {key!r} is neither in the front matter nor in site.params",
                    )
                )
                return ""
            return _display(value)

        def ref(target: object) -> str:
            url = None if self.resolve is None else self.resolve(str(target))
            if url is None:
                self.notes.append(Note(call.line, f"{tag.name} {target!r} names no post"))
                return "#"
            return url

        def markdownify(text: object, block: bool = False) -> Markup:
            rendered = self.markdownify(str(text))
            return Markup(rendered if block else unwrap_paragraph(rendered))

        context = {
            "name": tag.name,
            "args": list(tag.args),
            "params": dict(tag.params),
            "is_named": bool(tag.params),
            "inner": Markup(inner or ""),
            "inner_text": inner or "",
            "has_inner": inner is not None,
            "get": get,
            "page": self.page,
            "site": self.site,
            "param": param,
            "ref": ref,
            "markdownify": markdownify,
        }
        try:
            return self.templates.render(tag.name, context)
        except RenderError as exc:
            self.notes.append(Note(call.line, f"shortcode {tag.name!r}: {exc}", error=True))
            return ""


def expand_shortcodes(
    source: str,
    page: Mapping[str, Any],
    site: SiteConfig,
    templates: ShortcodeTemplates,
    resolve: Resolve | None,
    markdownify: Markdownify,
) -> Expansion:
    """Expand every shortcode in the Markdown ``source`` of the post whose front
    matter is ``page`` (see ``front_matter``). ``resolve`` gives the permalink a
    ``ref`` names; ``markdownify`` renders Markdown to HTML."""
    if "{{<" not in source and "{{%" not in source:
        return Expansion(source, {}, ())
    notes: list[Note] = []
    nodes = parse(source, notes)
    taken = [int(number) for number in PLACEHOLDER.findall(source)]
    expander = _Expander(page, site, templates, resolve, markdownify, max(taken, default=-1) + 1)
    markdown = expander.render(nodes, in_html=False)
    shown = {found.group(0) for found in PLACEHOLDER.finditer(markdown)}
    parts = {name: part for name, part in expander.parts.items() if name in shown}
    return Expansion(markdown, parts, (*notes, *expander.notes))
