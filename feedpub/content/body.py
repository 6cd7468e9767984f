"""Markdown bodies: CommonMark with raw HTML, footnotes, tables and strikethrough,
rendered to sanitised HTML with absolute links, plus the plain text the summary
and word count need.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import unescape
from types import MappingProxyType
from urllib.parse import urljoin, urlsplit

import nh3
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererProtocol
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from mdit_py_plugins.footnote import footnote_plugin
from mdit_py_plugins.footnote.index import render_footnote_anchor

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
_PLAIN = "feedpub_plain"
_NO_PARTS: Mapping[str, str] = MappingProxyType({})

_ALLOWED_TAG_NAMES = """
a abbr article aside b blockquote br caption cite code col colgroup dd del details div dl dt em
figcaption figure footer h1 h2 h3 h4 h5 h6 header hr i img ins kbd li mark ol p pre q s section
small span strong sub summary sup table tbody td tfoot th thead time tr u ul
"""
ALLOWED_TAGS = frozenset(_ALLOWED_TAG_NAMES.split())
ALLOWED_ATTRIBUTES = {
    "*": {"class", "dir", "id", "lang", "title"},
    "a": {"href"},
    "img": {"alt", "height", "src", "width"},
    "ol": {"start"},
    "td": {"align", "colspan", "rowspan"},
    "th": {"align", "colspan", "rowspan"},
    "time": {"datetime"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
# Elements removed together with everything inside them.
DROPPED_WITH_CONTENT = frozenset(
    {
        "script",
        "style",
        "iframe",
        "object",
        "embed",
        "noscript",
        "template",
        "svg",
        "math",
    }
)


@dataclass(frozen=True, slots=True)
class Body:
    """A rendered body: sanitised HTML and the plain text drawn from it."""

    html: str
    paragraphs: tuple[str, ...]
    before_more: str | None
    text: str


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
    return render_footnote_anchor(self, tokens, idx, options, env)


def _html_text(html: str) -> str:
    return " ".join(unescape(_TAG.sub(" ", html)).split())


def _inline_parts(token: Token, parts: Mapping[str, str]) -> None:
    """Split text around placeholders into text and the shortcode's HTML."""

    def as_text(found: re.Match[str]) -> str:
        return _html_text(parts.get(found[0], ""))

    children: list[Token] = []
    for child in token.children or ():
        for name, value in child.attrs.items():
            if isinstance(value, str):
                child.attrs[name] = PLACEHOLDER.sub(as_text, value)
        for alt in child.children or ():
            alt.content = PLACEHOLDER.sub(as_text, alt.content)
        if child.type != "text":
            child.content = PLACEHOLDER.sub(lambda m: parts.get(m[0], ""), child.content)
            children.append(child)
            continue
        start = 0
        for found in PLACEHOLDER.finditer(child.content):
            children.append(_text_token(child.content[start : found.start()]))
            part = Token("html_inline", "", 0, content=parts.get(found[0], ""))
            part.meta[_PLAIN] = _html_text(part.content)
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
            and PLACEHOLDER.fullmatch(tokens[-1].content.strip())
        ):
            name = tokens[-1].content.strip()
            del tokens[-2:]
            tokens.append(Token("html_block", "", 0, content=parts.get(name, "") + "\n"))
            continue
        if token.type == "inline":
            _inline_parts(token, parts)
        else:
            token.content = PLACEHOLDER.sub(lambda m: parts.get(m[0], ""), token.content)
        tokens.append(token)
    state.tokens = tokens


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    md.use(footnote_plugin, inline=False)
    md.core.ruler.before("footnote_tail", "mark_footnote_place", _mark_footnote_place)
    md.core.ruler.before("footnote_tail", "keep_unreferenced", _keep_unreferenced_footnotes)
    md.core.ruler.after("footnote_tail", "move_footnotes_to_place", _move_footnotes_to_place)
    md.core.ruler.push("place_parts", _place_parts)
    md.add_render_rule("footnote_anchor", _render_footnote_anchor)
    return md


_MD = _markdown()


Resolver = Callable[[str], "str | None"]


def _absolutiser(base_url: str, resolve: Resolver | None) -> Callable[[str, str, str], str]:
    def absolute(tag: str, attribute: str, value: str) -> str:
        if attribute in ("href", "src") and not value.startswith("#"):
            # A bare "#fragment" is a same-document reference (RFC 3986, 4.4):
            # footnote links must stay inside the feed item or email.
            target = value.strip()
            if resolve is not None:
                parts = urlsplit(target)
                resolved = None if parts.scheme or parts.netloc else resolve(target)
                if resolved is not None:
                    return resolved
            return urljoin(base_url, target)
        return value

    return absolute


def sanitise(html: str, base_url: str, resolve: Resolver | None = None) -> str:
    """Keep only allowed tags, attributes and URL schemes; make URLs absolute,
    those that ``resolve`` names (links to other posts) by its answer."""
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_absolutiser(base_url, resolve),
        url_schemes=set(URL_SCHEMES),
        link_rel=None,
    )


# The web copy of an issue keeps the email's table layout and inline styles.
_ISSUE_TAGS = ALLOWED_TAGS | {"table", "tbody", "tr", "td"}
_ISSUE_ATTRIBUTES = {
    **ALLOWED_ATTRIBUTES,
    "*": ALLOWED_ATTRIBUTES["*"] | {"style"},
    "table": {"width", "cellpadding", "cellspacing", "border", "role"},
}


def sanitise_issue(html: str) -> str:
    """A rendered digest, made safe to show on the site's own pages."""
    return nh3.clean(
        html,
        tags=set(_ISSUE_TAGS),
        attributes={tag: set(names) for tag, names in _ISSUE_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel=None,
    )


def _inline_text(token: Token) -> str:
    parts: list[str] = []
    for child in token.children or ():
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif _PLAIN in child.meta:
            parts.append(child.meta[_PLAIN])
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
    doc_id: str,
    *,
    parts: Mapping[str, str] = _NO_PARTS,
    resolve: Resolver | None = None,
) -> Body:
    """Render ``markdown`` as the body of the post at ``base_url``.

    ``parts`` maps the shortcode pass's placeholders to their HTML, which is
    sanitised with the rest. ``resolve`` gives the permalink a relative link
    names (``../other.md#part``), or None when it names no post.
    """
    env: EnvType = {"docId": doc_id, _PARTS: parts}
    tokens = _MD.parse(_separate_container_tags(markdown), env)
    html = _MD.renderer.render(tokens, _MD.options, env)
    paragraphs, before_more, text = _plain_text(tokens)
    return Body(sanitise(html, base_url, resolve), paragraphs, before_more, text)
