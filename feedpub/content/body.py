"""Markdown bodies: CommonMark with raw HTML, footnotes, tables and strikethrough,
rendered to sanitised HTML with absolute links, plus the plain text the summary
and word count need.

pulldown-cmark (through pyromark) parses; the HTML is written here from its
events, in one pass that also gives headings Hugo's ids and attributes
(``goldmark``), footnotes Goldmark's ids, shortcodes their HTML, and collects
the text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from html import unescape
from string import punctuation
from types import MappingProxyType
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pyromark

from feedpub.content.goldmark import HeadingIds, Node, attribute_line, heading_text
from feedpub.content.goldmark import trailing_attributes as heading_attributes
from feedpub.content.sanitise import Resolver, link_media, sanitise

MORE_MARKER = "<!--more-->"

# Lone opening or closing tags of elements that wrap Markdown in generated posts.
_CONTAINER_LINE = re.compile(
    r" {0,3}</?(?:article|aside|blockquote|details|div|figure|footer|header|main|nav|section)"
    r"(?:\s[^>]*)?>\s*"
)
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
# What a line that _prepare looks at starts with.
_LINE_STARTS = frozenset(" `~{<")
_TAG = re.compile(r"<[^>]*>")
# A shortcode's place in the Markdown, put there by the shortcode pass.
PLACEHOLDER = re.compile(r"FPSC[0-9]+CSPF")
_NO_PARTS: Mapping[str, str] = MappingProxyType({})
# What an attribute line becomes before parsing: an HTML comment, which ends
# the block above it as Goldmark's attribute line does, and names its attributes.
_ATTRIBUTE_MARK = "<!--feedpub-attributes-{}-->"
_ATTRIBUTE_MARK_LINE = re.compile(r"\s*<!--feedpub-attributes-([0-9]+)-->\s*")
_OPTIONS = (
    pyromark.Options.ENABLE_TABLES
    | pyromark.Options.ENABLE_FOOTNOTES
    | pyromark.Options.ENABLE_STRIKETHROUGH
)
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_PUNCTUATION = frozenset(punctuation)
_INLINE_CONTAINERS = frozenset({"Emphasis", "Strong", "Strikethrough", "Link", "Image"})
_INLINE_EVENTS = frozenset(
    {"Text", "Code", "InlineHtml", "FootnoteReference", "SoftBreak", "HardBreak"}
)
_Span = dict[str, int]


@dataclass(frozen=True, slots=True)
class Body:
    """A rendered body: sanitised HTML and the plain text drawn from it;
    ``media_replaced`` counts the videos, sounds and frames shown as links."""

    html: str
    paragraphs: tuple[str, ...]
    before_more: str | None
    text: str
    media_replaced: int


def _prepare(source: str) -> tuple[str, list[dict[str, str] | None]]:
    """The source as the parser is to read it, and the attributes of each
    attribute line (None for one Hugo drops: after a blank line or first).

    Markdown inside ``<article>`` and the like renders as Markdown: CommonMark
    ends an HTML block only at a blank line, so the heading in
    ``<article>\\n## Title`` would stay literal text. Generated posts (the
    AI-news seed among them) write exactly that, and Hugo shows such posts with
    raw ``##`` in them. A blank line after a lone container tag, when Markdown
    follows it, gives the reading the author meant.
    """
    lines = source.split("\n")
    out: list[str] = []
    attributes: list[dict[str, str] | None] = []
    fence: str | None = None
    for i, line in enumerate(lines):
        if line[:1] not in _LINE_STARTS:  # no fence, attributes or tag: most lines
            out.append(line)
            continue
        opened = _FENCE.match(line)
        if fence is not None:
            out.append(line)
            if opened and opened.group(1).startswith(fence):
                fence = None
            continue
        if opened:
            fence = opened.group(1)
            out.append(line)
            continue
        found = attribute_line(line)
        if found is not None:
            after_blank = i == 0 or not lines[i - 1].strip()
            out.append(
                line[: len(line) - len(line.lstrip(" "))] + _ATTRIBUTE_MARK.format(len(attributes))
            )
            attributes.append(None if after_blank else found)
            continue
        out.append(line)
        if _CONTAINER_LINE.fullmatch(line) and i + 1 < len(lines):
            following = lines[i + 1]
            indent = len(following) - len(following.lstrip(" "))
            if following.strip() and indent < 4 and not following.lstrip().startswith("<"):
                out.append("")
    return "\n".join(out), attributes


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def _tag_name(tag: Any) -> str:
    """The name of a Start or End event's tag: ``"Paragraph"``, or the one key
    of ``{"Heading": ...}``."""
    return tag if tag.__class__ is str else next(iter(tag))


def _link_address(url: str) -> str:
    """A link's address as CommonMark renderers write it: percent-encoded
    where it has to be, an international host name in its ASCII form."""
    parts = urlsplit(url)
    if parts.hostname and not parts.hostname.isascii():
        try:
            host = parts.hostname.encode("idna").decode("ascii")
        except UnicodeError:
            host = parts.hostname
        netloc = parts.netloc.replace(parts.hostname, host)
        url = urlunsplit(parts._replace(netloc=netloc))
    return quote(_LONE_PERCENT.sub("%25", url), safe=";/?:@&=+$,-_.!~*'()#%")


def _html_text(html: str) -> str:
    """The words of an HTML fragment, as plain text on one line."""
    return " ".join(unescape(_TAG.sub(" ", html)).split())


@dataclass(slots=True)
class _Open:
    """An opening tag whose attributes may still be given (a heading's, or a
    block's by the attribute line below it)."""

    tag: str
    attrs: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        given = "".join(f' {name}="{_escape(value)}"' for name, value in self.attrs.items())
        return f"<{self.tag}{given}>"


@dataclass(slots=True)
class _Frame:
    """A block being written: what it is, and the last block closed in it (the
    one an attribute line would go to)."""

    kind: str
    opening: _Open | None = None
    last: _Open | None = None
    tag: str = ""
    text: list[str] = field(default_factory=list)


_Event = tuple[Any, Any]


class _Writer:
    """One body's events written as HTML."""

    def __init__(
        self, source: str, parts: Mapping[str, str], attributes: list[dict[str, str] | None]
    ) -> None:
        # The parser's spans count bytes of the UTF-8 source.
        self.source = source.encode()
        self.parts = parts
        self.attributes = attributes
        self.out: list[str | _Open] = []
        self.frames = [_Frame("body")]
        self.inline: list[_Event] | None = None
        self.leaf: tuple[str, Any] | None = None
        self.ids = HeadingIds()
        self.paragraphs: list[str] = []
        self.all_text: list[str] = []
        self.before_more: str | None = None
        # Footnotes: label -> number in order of first reference, how many
        # references each has, each definition's HTML, and where the list goes.
        self.numbers: dict[str, int] = {}
        self.cited: dict[str, int] = {}
        self.notes: dict[str, list[str | _Open]] = {}
        self.notes_place: int | None = None
        self.saved: list[list[str | _Open]] = []

    # ---- blocks -------------------------------------------------------------------

    def newline(self) -> None:
        last = self.out[-1] if self.out else "\n"
        if isinstance(last, _Open) or not last.endswith("\n"):
            self.out.append("\n")

    def opened(self, kind: str, tag: str, newline: bool = True) -> _Open:
        self.newline()
        opening = _Open(tag)
        self.out.append(opening)
        if newline:
            self.out.append("\n")
        self.frames.append(_Frame(kind, opening, tag=tag))
        return opening

    def closed(self, target: _Open | None) -> None:
        """A block ended: it is the one an attribute line below would go to."""
        self.frames[-1].last = target

    def run(self, events: Iterable[_Event]) -> None:
        key: str
        value: Any
        for event, span in events:
            if event.__class__ is str:
                key, value = event, None
            else:
                ((key, value),) = event.items()
            inline = key in _INLINE_EVENTS or (
                key in ("Start", "End") and _tag_name(value) in _INLINE_CONTAINERS
            )
            if self.inline is not None:
                if inline:
                    self.inline.append((event, span))
                    continue
                if self.leaf is not None and self.leaf[0] == "item":
                    self.end_leaf()
            elif inline and self.frames[-1].kind == "li":
                self.start_leaf("item", None)
                self.inline = [(event, span)]
                continue
            if key == "Start":
                self.start(value, span)
            elif key == "End":
                self.end(value)
            elif key in ("Text", "Html"):  # the text of a code or HTML block
                self.frames[-1].text.append(value)
            else:
                self.simple(key)

    def start_leaf(self, kind: str, detail: Any) -> None:
        self.leaf = (kind, detail)
        self.inline = []

    def simple(self, event: str) -> None:
        if event == "Rule":
            self.newline()
            rule = _Open("hr")
            self.out += [rule, "\n"]
            self.closed(rule)

    def start(self, tag: Any, span: _Span) -> None:
        name = _tag_name(tag)
        detail: Any = None if tag.__class__ is str else tag[name]
        if name in ("Paragraph", "Heading", "TableCell"):
            self.start_leaf(name, detail)
        elif name == "BlockQuote":
            self.opened("blockquote", "blockquote")
        elif name == "List":
            opening = self.opened("list", "ul" if detail is None else "ol")
            if detail is not None and detail != 1:
                opening.attrs["start"] = str(detail)
        elif name == "Item":
            self.opened("li", "li", newline=False)
        elif name == "CodeBlock":
            self.newline()
            info = "" if detail == "Indented" else detail["Fenced"].strip()
            self.frames.append(_Frame("code", tag=info.split(maxsplit=1)[0] if info else ""))
        elif name == "HtmlBlock":
            self.frames.append(_Frame("html"))
        elif name == "FootnoteDefinition":
            self.saved.append(self.out)
            self.out = self.notes.setdefault(detail, [])
            self.frames.append(_Frame("footnote"))
        elif name == "Table":
            self.opened("table", "table")
        elif name == "TableHead":
            self.out.append("<thead>\n<tr>\n")
            self.frames.append(_Frame("thead"))
        elif name == "TableRow":
            if self.frames[-1].kind == "table":
                self.out.append("<tbody>\n")
                self.frames[-1].kind = "tbody"
            self.out.append("<tr>\n")

    def end(self, tag: Any) -> None:
        name = _tag_name(tag)
        if name in ("Paragraph", "Heading", "TableCell"):
            self.end_leaf()
            return
        if name == "TableRow":
            self.out.append("</tr>\n")
            return
        frame = self.frames.pop()
        if name == "CodeBlock":
            code = PLACEHOLDER.sub(self.raw_part, "".join(frame.text))
            language = f' class="language-{_escape(frame.tag)}"' if frame.tag else ""
            self.out.append(f"<pre><code{language}>{_escape(code)}</code></pre>\n")
            self.closed(None)
        elif name == "HtmlBlock":
            self.html_block("".join(frame.text))
        elif name == "FootnoteDefinition":
            self.out = self.saved.pop()
            self.notes_place = len(self.out)
        elif name == "TableHead":
            self.out.append("</tr>\n</thead>\n")
        elif name == "Table":
            self.out.append("</tbody>\n</table>\n" if frame.kind == "tbody" else "</table>\n")
            self.closed(frame.opening)
        else:
            if frame.kind != "li":  # a tight item's text runs up to its end tag
                self.newline()
            self.out.append(f"</{frame.tag}>\n")
            self.closed(frame.opening)

    def html_block(self, html: str) -> None:
        mark = _ATTRIBUTE_MARK_LINE.fullmatch(html)
        if mark is not None and int(mark[1]) < len(self.attributes):
            given, target = self.attributes[int(mark[1])], self.frames[-1].last
            if given is not None and target is not None:
                for name, value in given.items():
                    target.attrs.setdefault(name, value)
            self.closed(None)
            return
        html = PLACEHOLDER.sub(self.raw_part, html)
        if html.strip() == MORE_MARKER and self.before_more is None:
            self.before_more = " ".join(self.paragraphs)
        self.all_text.append(_html_text(html))
        self.newline()
        self.out.append(html)
        self.closed(None)

    def raw_part(self, found: re.Match[str]) -> str:
        return self.parts.get(found[0], found[0])

    def text_part(self, found: re.Match[str]) -> str:
        return _html_text(self.parts[found[0]]) if found[0] in self.parts else found[0]

    # ---- leaves: paragraphs, headings, table cells --------------------------------

    def end_leaf(self) -> None:
        assert self.leaf is not None and self.inline is not None
        kind, detail = self.leaf
        events, self.inline, self.leaf = self.inline, None, None
        in_note = any(frame.kind == "footnote" for frame in self.frames)
        if kind == "Heading":
            self.heading(detail, events)
            return
        if kind == "Paragraph" and self.parts:
            alone = "".join(e["Text"] for e, _ in events if "Text" in e).strip()
            if alone in self.parts and all("Text" in e for e, _ in events):
                self.html_block(self.parts[alone] + "\n")
                return
        written = _Written(self, events)
        text = "".join(written.text).strip()
        self.all_text.append(text)
        if written.more is not None and self.before_more is None:
            self.before_more = " ".join([*self.paragraphs, written.more]).strip()
        if kind != "TableCell" and not in_note and text:
            self.paragraphs.append(text)
        html = "".join(written.html)
        if kind == "TableCell":
            cell = "th" if self.frames[-1].kind == "thead" else "td"
            self.out.append(f"<{cell}>{html}</{cell}>\n")
        elif kind == "item":
            self.out.append(html)
        else:
            self.newline()
            opening = _Open("p")
            self.out += [opening, html, "</p>\n"]
            self.closed(opening)

    def heading(self, level: Any, events: list[_Event]) -> None:
        attrs: dict[str, str] = {}
        if events:
            first, last = events[0][1]["start"], events[-1][1]["end"]
            raw = self.source[first:last].decode()
            found = heading_attributes(raw)
            if found is not None:
                events = _cut(events, first + len(raw[: found[0]].encode()))
                attrs = found[1]
        written = _Written(self, events)
        text = "".join(written.text).strip()
        self.all_text.append(text)
        if "id" in attrs:
            self.ids.explicit(attrs["id"])
        else:
            generated = self.ids.generated(heading_text(_tree(written.pieces)))
            if generated is not None:
                attrs["id"] = generated
        self.newline()
        tag = "h" + level["level"][1:]
        opening = _Open(tag, attrs)
        self.out += [opening, "".join(written.html), f"</{tag}>\n"]
        self.closed(opening)

    # ---- footnotes --------------------------------------------------------------

    def reference(self, label: str) -> str:
        number = self.numbers.setdefault(label, len(self.numbers) + 1)
        seen = self.cited.get(label, 0)
        self.cited[label] = seen + 1
        return (
            f'<sup id="fnref{seen or ""}:{number}">'
            f'<a href="#fn:{number}" class="footnote-ref">{number}</a></sup>'
        )

    def footnotes(self) -> list[str | _Open]:
        """The footnote list: cited notes by number, then the uncited ones."""
        for label in self.notes:
            self.numbers.setdefault(label, len(self.numbers) + 1)
        items: list[str | _Open] = ['<hr class="footnotes-sep">\n<section class="footnotes">\n']
        items.append('<ol class="footnotes-list">\n')
        for label, number in sorted(self.numbers.items(), key=lambda item: item[1]):
            if label not in self.notes:
                continue
            note = self.notes[label]
            back = "".join(
                f' <a href="#fnref{n or ""}:{number}" class="footnote-backref">\u21a9\ufe0e</a>'
                for n in range(self.cited.get(label, 0))
            )
            items.append(f'<li id="fn:{number}" class="footnote-item">')
            if back and note and note[-1] == "</p>\n":
                items += [*note[:-1], back, "</p>\n"]
            else:
                items += [*note, back]
            items.append("</li>\n")
        items.append("</ol>\n</section>\n")
        return items

    def html(self) -> str:
        out = self.out
        if self.notes and self.notes_place is not None:
            out = out[: self.notes_place] + self.footnotes() + out[self.notes_place :]
        return "".join(map(str, out))


def _cut(events: list[_Event], at: int) -> list[_Event]:
    """A heading's events without those from byte ``at`` of the source on (its
    attribute block), and without the spaces before it."""
    kept: list[_Event] = []
    for event, span in events:
        if span["start"] >= at:
            continue
        if isinstance(event, dict) and "Text" in event and span["end"] > at:
            event = {"Text": event["Text"].encode()[: at - span["start"]].decode()}
        kept.append((event, span))
    for i in range(len(kept) - 1, -1, -1):
        event, span = kept[i]
        if not (isinstance(event, dict) and "Text" in event):
            break
        trimmed = event["Text"].rstrip()
        kept[i] = ({"Text": trimmed}, span)
        if trimmed:
            break
    return kept


_Piece = tuple[str, str, list["_Piece"]]


def _tree(pieces: list[_Piece]) -> tuple[Node, ...]:
    """The heading's pieces as Goldmark's nodes: plain text runs joined, an
    escaped character or an entity a node of its own."""
    nodes: list[Node] = []
    for kind, text, children in pieces:
        if kind == "text" and nodes and nodes[-1].kind == "text":
            nodes[-1] = Node("text", nodes[-1].text + text)
        elif kind == "group":
            nodes.append(Node("group", children=_tree(children)))
        else:
            nodes.append(Node(kind, text))
    return tuple(nodes)


class _Written:
    """Inline events written out: ``html``, the plain ``text``, the text before
    an inline ``<!--more-->`` (``more``), and the ``pieces`` a heading's id is
    made from."""

    def __init__(self, writer: _Writer, events: list[_Event]) -> None:
        self.writer = writer
        self.source = writer.source
        self.events = events
        self.position = 0
        self.html: list[str] = []
        self.text: list[str] = []
        self.more: str | None = None
        self.pieces = self.write(self.html, self.text)

    def write(self, html: list[str], text: list[str]) -> list[_Piece]:
        pieces: list[_Piece] = []
        writer = self.writer
        while self.position < len(self.events):
            event, span = self.events[self.position]
            self.position += 1
            if isinstance(event, str):
                html.append("<br>\n" if event == "HardBreak" else "\n")
                text.append(" ")
                pieces.append(("break", "", []))
            elif "Text" in event:
                self.plain_text(event["Text"], span, html, text, pieces)
            elif "Code" in event:
                code = PLACEHOLDER.sub(writer.raw_part, event["Code"])
                html.append(f"<code>{_escape(code)}</code>")
                text.append(code)
                pieces.append(("code", code, []))
            elif "InlineHtml" in event:
                raw = PLACEHOLDER.sub(writer.raw_part, event["InlineHtml"])
                if raw == MORE_MARKER and self.more is None:
                    self.more = "".join(text).strip()
                html.append(raw)
                pieces.append(("html", "", []))
            elif "FootnoteReference" in event:
                html.append(writer.reference(event["FootnoteReference"]))
                if text:
                    text[-1] = text[-1].rstrip()
                pieces.append(("html", "", []))
            elif "End" in event:
                return pieces
            elif "Start" in event:
                pieces.append(self.container(event["Start"], html, text))
        return pieces

    def container(self, tag: Any, html: list[str], text: list[str]) -> _Piece:
        name = _tag_name(tag)
        if name == "Image":
            alt: list[str] = []
            children = self.write([], alt)
            link = tag[name]
            src = _link_address(PLACEHOLDER.sub(self.writer.text_part, link["dest_url"]))
            title = PLACEHOLDER.sub(self.writer.text_part, link["title"])
            shown = f' title="{_escape(title)}"' if title else ""
            html.append(f'<img src="{_escape(src)}" alt="{_escape("".join(alt))}"{shown}>')
            return ("group", "", children)
        if name == "Link":
            link = tag[name]
            target = PLACEHOLDER.sub(self.writer.text_part, link["dest_url"])
            if link["link_type"] == "Email":
                target = "mailto:" + target
            title = PLACEHOLDER.sub(self.writer.text_part, link["title"])
            shown = f' title="{_escape(title)}"' if title else ""
            html.append(f'<a href="{_escape(_link_address(target))}"{shown}>')
            children = self.write(html, text)
            html.append("</a>")
            if link["link_type"] in ("Autolink", "Email"):
                return ("autolink", "", [])
            return ("group", "", children)
        element = {"Emphasis": "em", "Strong": "strong", "Strikethrough": "s"}[name]
        html.append(f"<{element}>")
        children = self.write(html, text)
        html.append(f"</{element}>")
        return ("group", "", children)

    def plain_text(
        self,
        content: str,
        span: _Span,
        html: list[str],
        text: list[str],
        pieces: list[_Piece],
    ) -> None:
        start = span["start"]
        raw = self.source[start : span["end"]]
        if raw.startswith(b"&") and raw != content.encode():  # an entity
            kind_first = "special"
        elif start and self.source[start - 1] == 0x5C and content[:1] in _PUNCTUATION:  # an escape
            pieces.append(("special", content[0], []))
            html.append(_escape(content[0]))
            text.append(content[0])
            content, kind_first = content[1:], "text"
        else:
            kind_first = "text"
        if not content:
            return
        parts = self.writer.parts
        if not parts or "FPSC" not in content:
            html.append(_escape(content))
            text.append(content)
            pieces.append((kind_first, content, []))
            return
        position = 0
        for found in PLACEHOLDER.finditer(content):
            if found[0] not in parts:  # the author's own text that looks like one
                continue
            before = content[position : found.start()]
            part = parts[found[0]]
            html += [_escape(before), part]
            plain = _html_text(part)
            text += [before, plain]
            pieces += [("text", before, []), ("plain", plain, [])]
            position = found.end()
        rest = content[position:]
        html.append(_escape(rest))
        text.append(rest)
        pieces.append(("text", rest, []))


def render_body(
    markdown: str,
    base_url: str,
    *,
    parts: Mapping[str, str] = _NO_PARTS,
    resolve: Resolver | None = None,
) -> Body:
    """Render ``markdown`` as the body of the post at ``base_url``.

    ``parts`` maps the shortcode pass's placeholders to their HTML, which is
    sanitised with the rest. ``resolve`` gives the permalink a relative link
    names (``../other.md#part``), or None when it names no post. Footnote and
    heading ids are those Hugo gives, so that the absolute links to them land
    on the post's page.
    """
    source, attributes = _prepare(markdown)
    writer = _Writer(source, parts, attributes)
    writer.run(pyromark.events_with_range(source, options=_OPTIONS))
    html, media_replaced = link_media(writer.html())
    paragraphs = tuple(writer.paragraphs)
    text = " ".join(writer.all_text)
    return Body(
        sanitise(html, base_url, resolve), paragraphs, writer.before_more, text, media_replaced
    )
