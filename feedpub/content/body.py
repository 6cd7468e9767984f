"""Markdown bodies: CommonMark with raw HTML, footnotes, tables and strikethrough,
rendered to sanitised HTML with absolute links, plus the plain text the summary
and word count need.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import unescape
from types import MappingProxyType

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererProtocol
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from mdit_py_plugins.footnote import footnote_plugin

from feedpub.content.goldmark import (
    PLAIN,
    attribute_block,
    block_attributes,
    heading_attributes,
    heading_ids,
)
from feedpub.content.sanitise import Resolver, link_media, sanitise

MORE_MARKER = "<!--more-->"

# Lone opening or closing tags of elements that wrap Markdown in generated posts.
_CONTAINER_LINE = re.compile(
    r" {0,3}</?(?:article|aside|blockquote|details|div|figure|footer|header|main|nav|section)"
    r"(?:\s[^>]*)?>\s*"
)
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_TAG = re.compile(r"<[^>]*>")
_FOOTNOTE_PLACE = "feedpub_footnote_place"
# A shortcode's place in the Markdown, put there by the shortcode pass.
PLACEHOLDER = re.compile(r"FPSC[0-9]+CSPF")
_PARTS = "feedpub_parts"
_NO_PARTS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Body:
    """A rendered body: sanitised HTML and the plain text drawn from it;
    ``media_replaced`` counts the videos, sounds and frames shown as links."""

    html: str
    paragraphs: tuple[str, ...]
    before_more: str | None
    text: str
    media_replaced: int


def _separate_container_tags(source: str) -> str:
    """Let Markdown inside ``<article>`` and the like render as Markdown.

    CommonMark ends an HTML block only at a blank line, so the heading in
    ``<article>\\n## Title`` would stay literal text. Generated posts (the
    AI-news seed among them) write exactly that, and Hugo shows such posts with
    raw ``##`` in them. A blank line after a lone container tag, when Markdown
    follows it, gives the reading the author meant.
    """
    lines = source.split("\n")
    out: list[str] = []
    fence: str | None = None
    for i, line in enumerate(lines):
        out.append(line)
        opened = _FENCE.match(line)
        if fence is not None:
            if opened and opened.group(1).startswith(fence):
                fence = None
            continue
        if opened:
            fence = opened.group(1)
            continue
        if _CONTAINER_LINE.fullmatch(line) and i + 1 < len(lines):
            following = lines[i + 1]
            indent = len(following) - len(following.lstrip(" "))
            if following.strip() and indent < 4 and not following.lstrip().startswith("<"):
                out.append("")
    return "\n".join(out)


def _keep_unreferenced_footnotes(state: StateCore) -> None:
    """Give footnote definitions that no reference names a place in the list too.

    The footnote plugin drops them; a reference list written by the author
    (like the seed's ``[^5]``) must not lose an entry.
    """
    data = state.env.get("footnotes")
    if not data:
        return
    listed = data.setdefault("list", {})
    for key, footnote_id in data.get("refs", {}).items():
        if footnote_id < 0:
            new_id = len(listed)
            listed[new_id] = {"label": key[1:], "count": 0}
            data["refs"][key] = new_id


def _mark_footnote_place(state: StateCore) -> None:
    """Remember where the author's last footnote definition ends."""
    ends = [i for i, t in enumerate(state.tokens) if t.type == "footnote_reference_close"]
    if ends:
        state.tokens.insert(ends[-1] + 1, Token(_FOOTNOTE_PLACE, "", 0))


def _move_footnotes_to_place(state: StateCore) -> None:
    """Show the footnote list where the definitions stood (under the seed's
    "References" heading, say), not after the post's closing lines.
    """
    tokens = state.tokens
    places = [i for i, t in enumerate(tokens) if t.type == _FOOTNOTE_PLACE]
    if not places:
        return
    place = places[0]
    starts = [i for i, t in enumerate(tokens) if t.type == "footnote_block_open"]
    block = tokens[starts[0] :] if starts else []
    state.tokens = tokens[:place] + block + tokens[place + 1 : len(tokens) - len(block)]


def _footnote_ids(token: Token) -> tuple[str, str]:
    """The ids Goldmark gives a footnote and one reference to it: ``fn:1``, and
    ``fnref:1``, ``fnref1:1`` for the second reference, and so on."""
    number = token.meta["id"] + 1
    return f"fn:{number}", f"fnref{token.meta.get('subId') or ''}:{number}"


def _render_footnote_ref(
    self: RendererProtocol,
    tokens: Sequence[Token],
    idx: int,
    options: OptionsDict,
    env: EnvType,
) -> str:
    note, ref = _footnote_ids(tokens[idx])
    number = tokens[idx].meta["id"] + 1
    return f'<sup id="{ref}"><a href="#{note}" class="footnote-ref">{number}</a></sup>'


def _render_footnote_open(
    self: RendererProtocol,
    tokens: Sequence[Token],
    idx: int,
    options: OptionsDict,
    env: EnvType,
) -> str:
    return f'<li id="{_footnote_ids(tokens[idx])[0]}" class="footnote-item">'


def _render_footnote_anchor(
    self: RendererProtocol,
    tokens: Sequence[Token],
    idx: int,
    options: OptionsDict,
    env: EnvType,
) -> str:
    """The back-link after a footnote, left out where nothing refers to it."""
    if env["footnotes"]["list"][tokens[idx].meta["id"]]["count"] == 0:
        return ""
    # U+FE0E keeps the arrow from showing as an emoji.
    return f' <a href="#{_footnote_ids(tokens[idx])[1]}" class="footnote-backref">\u21a9\ufe0e</a>'


def _html_text(html: str) -> str:
    """The words of an HTML fragment, as plain text on one line."""
    return " ".join(unescape(_TAG.sub(" ", html)).split())


def _inline_parts(token: Token, parts: Mapping[str, str]) -> None:
    """Split text around placeholders into text and the shortcode's HTML."""

    def as_text(found: re.Match[str]) -> str:
        return _html_text(parts[found[0]]) if found[0] in parts else found[0]

    children: list[Token] = []
    for child in token.children or ():
        for name, value in child.attrs.items():
            if isinstance(value, str):
                child.attrs[name] = PLACEHOLDER.sub(as_text, value)
        for alt in child.children or ():
            alt.content = PLACEHOLDER.sub(as_text, alt.content)
        if child.type != "text":
            child.content = PLACEHOLDER.sub(lambda m: parts.get(m[0], m[0]), child.content)
            children.append(child)
            continue
        start = 0
        for found in PLACEHOLDER.finditer(child.content):
            if found[0] not in parts:  # the author's own text that looks like one
                continue
            children.append(_text_token(child.content[start : found.start()]))
            part = Token("html_inline", "", 0, content=parts[found[0]])
            part.meta[PLAIN] = _html_text(part.content)
            children.append(part)
            start = found.end()
        children.append(_text_token(child.content[start:]) if start else child)
    token.children = children


def _text_token(content: str) -> Token:
    return Token("text", "", 0, content=content)


def _place_parts(state: StateCore) -> None:
    """Put the HTML of shortcodes where their placeholders stand: a placeholder
    alone in its paragraph replaces the paragraph, one in text replaces itself."""
    parts: Mapping[str, str] = state.env.get(_PARTS, _NO_PARTS)
    if not parts:
        return
    tokens: list[Token] = []
    for token in state.tokens:
        if (
            token.type == "paragraph_close"
            and len(tokens) > 1
            and tokens[-2].type == "paragraph_open"
            and tokens[-1].content.strip() in parts
        ):
            name = tokens[-1].content.strip()
            del tokens[-2:]
            tokens.append(Token("html_block", "", 0, content=parts[name] + "\n"))
            continue
        if token.type == "inline":
            _inline_parts(token, parts)
        else:
            token.content = PLACEHOLDER.sub(lambda m: parts.get(m[0], m[0]), token.content)
        tokens.append(token)
    state.tokens = tokens


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    md.use(footnote_plugin, inline=False)
    md.block.ruler.before(
        "table",
        "attribute_block",
        attribute_block,
        {"alt": ["paragraph", "reference", "blockquote", "list"]},
    )
    md.core.ruler.before("inline", "heading_attributes", heading_attributes)
    md.core.ruler.after("inline", "place_parts", _place_parts)
    md.core.ruler.after("place_parts", "heading_ids", heading_ids)
    md.core.ruler.after("heading_ids", "block_attributes", block_attributes)
    md.core.ruler.before("footnote_tail", "mark_footnote_place", _mark_footnote_place)
    md.core.ruler.before("footnote_tail", "keep_unreferenced", _keep_unreferenced_footnotes)
    md.core.ruler.after("footnote_tail", "move_footnotes_to_place", _move_footnotes_to_place)
    md.add_render_rule("footnote_ref", _render_footnote_ref)
    md.add_render_rule("footnote_open", _render_footnote_open)
    md.add_render_rule("footnote_anchor", _render_footnote_anchor)
    return md


_MD = _markdown()


def _inline_text(token: Token) -> str:
    parts: list[str] = []
    for child in token.children or ():
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif PLAIN in child.meta:
            parts.append(child.meta[PLAIN])
        elif child.type == "footnote_ref" and parts:
            parts[-1] = parts[-1].rstrip()
    return "".join(parts).strip()


def _plain_text(tokens: Sequence[Token]) -> tuple[tuple[str, ...], str | None, str]:
    """Body paragraphs (outside footnotes), the text before ``<!--more-->``, all text."""
    paragraphs: list[str] = []
    all_text: list[str] = []
    before_more: str | None = None
    in_footnotes = in_paragraph = False
    for token in tokens:
        kind = token.type
        if kind == "footnote_block_open":
            in_footnotes = True
        elif kind == "paragraph_open":
            in_paragraph = True
        elif kind == "paragraph_close":
            in_paragraph = False
        elif kind == "inline":
            text = _inline_text(token)
            all_text.append(text)
            if in_paragraph and not in_footnotes and text:
                paragraphs.append(text)
            if MORE_MARKER in token.content and before_more is None:
                marker = token.content.split(MORE_MARKER, 1)[0]
                before_more = " ".join([*paragraphs[:-1], _TAG.sub("", marker)]).strip()
        elif kind == "html_block":
            if token.content.strip() == MORE_MARKER and before_more is None:
                before_more = " ".join(paragraphs)
            all_text.append(_html_text(token.content))
    return tuple(paragraphs), before_more, " ".join(all_text)


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
    env: EnvType = {_PARTS: parts}
    tokens = _MD.parse(_separate_container_tags(markdown), env)
    html, media_replaced = link_media(_MD.renderer.render(tokens, _MD.options, env))
    paragraphs, before_more, text = _plain_text(tokens)
    return Body(sanitise(html, base_url, resolve), paragraphs, before_more, text, media_replaced)
