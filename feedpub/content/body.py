"""Markdown bodies: CommonMark with raw HTML, footnotes, tables and strikethrough,
rendered to sanitised HTML with absolute links, plus the plain text the summary
and word count need.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape, unescape
from itertools import count
from types import MappingProxyType
from urllib.parse import urljoin, urlsplit

import nh3
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererProtocol
from markdown_it.rules_block import StateBlock
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from mdit_py_plugins.footnote import footnote_plugin

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


# Goldmark's attribute syntax (parser/attribute.go): {#id .class name="value"}.
_ATTRIBUTE = re.compile(
    r"""[ \t]*(?:(?P<mark>[#.])(?P<word>[^\s!"#$%&'()*+,/;<=>?@\[\\\]^`{|}~]*)"""
    r"""|(?P<name>[A-Za-z_:][A-Za-z0-9_:.-]*)[ \t]*=[ \t]*"""
    r"""(?P<value>"(?:[^"\\\n]|\\.)*"|-?[0-9][0-9.eE+-]*|true|false|null))(?:[ \t]*,)?"""
)
_ATTRIBUTES_END = re.compile(r"[ \t]*\}")
_ESCAPE = re.compile(r"\\(.)")
_ATTRIBUTES = "feedpub_attributes"


def _parse_attributes(text: str, start: int) -> tuple[dict[str, str], int] | None:
    """The attributes of the ``{...}`` at ``start`` and where it ends, as
    Goldmark reads them; None when it is not an attribute block."""
    attrs: dict[str, str] = {}
    pos = start + 1
    while True:
        end = _ATTRIBUTES_END.match(text, pos)
        if end is not None:
            return attrs, end.end()
        found = _ATTRIBUTE.match(text, pos)
        if found is None:
            return None
        if found["mark"]:
            name, value = ("id" if found["mark"] == "#" else "class"), found["word"]
        else:
            name, value = found["name"], found["value"]
            if value.startswith('"'):
                value = _ESCAPE.sub(r"\1", value[1:-1])
        if name == "class" and "class" in attrs:
            value = f"{attrs['class']} {value}"
        attrs[name] = value
        pos = found.end()


def _trailing_attributes(text: str) -> tuple[str, dict[str, str]] | None:
    """A heading's text without the attribute block that ends it, and the
    attributes (Goldmark's parseLastLineAttributes)."""
    pos = 0
    while pos < len(text):
        if text[pos] == "\\":
            pos += 2
            continue
        if text[pos] == "{":
            found = _parse_attributes(text, pos)
            if found is not None and not text[found[1] :].strip():
                return text[:pos].rstrip(), found[0]
        pos += 1
    return None


def _heading_attributes(state: StateCore) -> None:
    """Take ``{#id .class}`` off the end of headings onto the heading itself
    (Hugo's ``parser.attribute.title``, on by default)."""
    tokens = state.tokens
    for i, token in enumerate(tokens):
        if token.type == "heading_open":
            found = _trailing_attributes(tokens[i + 1].content)
            if found is not None:
                tokens[i + 1].content, attrs = found
                token.attrs.update(attrs)


def _attribute_block(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """A line that is only ``{...}``: attributes for the block before it (Hugo's
    ``parser.attribute.block``). Like Goldmark's, it ends a paragraph."""
    if state.sCount[start] - state.blkIndent >= 4:
        return False
    begin = state.bMarks[start] + state.tShift[start]
    line = state.src[begin : state.eMarks[start]]
    found = _parse_attributes(line, 0) if line.startswith("{") else None
    if found is None or line[found[1] :].strip():
        return False
    if not silent:
        token = state.push(_ATTRIBUTES, "", 0)
        token.map = [start, start + 1]
        token.meta = {"attrs": found[0], "after_blank": start > 0 and state.isEmpty(start - 1)}
        state.line = start + 1
    return True


def _block_attribute_target(tokens: Sequence[Token], at: int) -> Token | None:
    """The opening token of the block just before the attribute line at ``at``,
    or None where Hugo drops the attributes (after a blank line or a code fence,
    or first in its container)."""
    if at == 0 or tokens[at].meta["after_blank"]:
        return None
    before = tokens[at - 1]
    if before.nesting == 0:
        return before if before.type == "hr" else None
    if before.nesting == 1:
        return None
    depth = 0
    for token in reversed(tokens[:at]):
        depth += token.nesting
        if depth == 0:
            return token
    return None


def _block_attributes(state: StateCore) -> None:
    """Give each block the attributes on the line below it, those it has not
    got already (a heading keeps its id), and drop the attribute lines."""
    tokens = state.tokens
    kept: list[Token] = []
    for i, token in enumerate(tokens):
        if token.type != _ATTRIBUTES:
            kept.append(token)
            continue
        target = _block_attribute_target(tokens, i)
        if target is not None:
            for name, value in token.meta["attrs"].items():
                target.attrs.setdefault(name, value)
    state.tokens = kept


# Where Goldmark (typographer on) ends the text node a link or emphasis starts
# with: before a typographic substitution, after an unmatched delimiter.
_GOLDMARK_TEXT_END = re.compile(r"[*_~]+|--|\.\.\.|<<|>>|['\"]")
_TYPOGRAPHIC_DASHES = re.compile(r"---?")


_Node = tuple[Token, list["_Node"]]


def _inline_tree(tokens: Sequence[Token]) -> list[_Node]:
    """Flat inline tokens as the tree Goldmark builds: a node and its children."""
    root: list[_Node] = []
    stack = [root]
    for token in tokens:
        if token.nesting == -1:
            stack.pop()
            continue
        node: _Node = (token, _inline_tree(token.children or ()))
        stack[-1].append(node)
        if token.nesting == 1:
            stack.append(node[1])
    return root


def _first_child_text(nodes: list[_Node]) -> str:
    """The plain text of the first node, which for text is only as far as
    Goldmark's first text node goes."""
    if not nodes:
        return ""
    if nodes[0][0].type not in ("text", "text_special"):
        return _node_text(nodes[0])
    out: list[str] = []
    for token, _ in nodes:
        if token.type == "text_special":
            out.append(token.content)
            continue
        if token.type != "text":
            break
        end = _GOLDMARK_TEXT_END.search(token.content)
        if end is not None:
            out.append(token.content[: end.end() if end[0][0] in "*_~" else end.start()])
            break
        out.append(token.content)
    return "".join(out)


def _node_text(node: _Node) -> str:
    token, children = node
    if _PLAIN in token.meta:
        return str(token.meta[_PLAIN])
    if token.type in ("text_special", "code_inline"):
        return token.content
    if token.type == "text":
        return _TYPOGRAPHIC_DASHES.sub("", token.content)
    if token.type in ("softbreak", "hardbreak"):
        return "\n"
    if token.markup == "autolink":
        return ""
    return _first_child_text(children)


def _heading_text(inline: Token) -> str:
    """The text Hugo makes a heading's id from: its render.TextPlain, which
    takes every node of the heading but only the first child of a link,
    emphasis or image, and the last line of a multi-line heading."""
    text = "".join(_node_text(node) for node in _inline_tree(inline.children or ()))
    return text.rsplit("\n", 1)[-1]


def _anchor_name(text: str) -> str:
    """Hugo's "github" autoHeadingIDType (markup/goldmark/autoid.go): letters,
    digits and ``_`` lower-cased, a space or ``-`` as ``-``, the rest dropped."""
    kept: list[str] = []
    for char in text.strip():
        if char in " -":
            kept.append("-")
        elif char == "_" or char.isalpha() or char.isdecimal():
            # Go lower-cases one rune to one rune ("İ" -> "i").
            kept.append(char.lower()[0])
    return "".join(kept)


def _heading_ids(state: StateCore) -> None:
    """Give each heading the id Hugo gives it, in document order: an explicit
    id is taken as it is, a generated one numbered ``-1``, ``-2`` past those
    already used."""
    used: set[str] = set()
    tokens = state.tokens
    for i, token in enumerate(tokens):
        if token.type != "heading_open":
            continue
        given = token.attrs.get("id")
        if isinstance(given, str):
            used.add(given)
            continue
        text = _heading_text(tokens[i + 1])
        if not text:
            continue
        wanted = _anchor_name(text) or "heading"
        if wanted in used:
            wanted = next(f"{wanted}-{n}" for n in count(1) if f"{wanted}-{n}" not in used)
        used.add(wanted)
        token.attrs["id"] = wanted


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    md.use(footnote_plugin, inline=False)
    md.block.ruler.before(
        "table",
        "attribute_block",
        _attribute_block,
        {"alt": ["paragraph", "reference", "blockquote", "list"]},
    )
    md.core.ruler.before("inline", "heading_attributes", _heading_attributes)
    md.core.ruler.after("inline", "place_parts", _place_parts)
    md.core.ruler.after("place_parts", "heading_ids", _heading_ids)
    md.core.ruler.after("heading_ids", "block_attributes", _block_attributes)
    md.core.ruler.before("footnote_tail", "mark_footnote_place", _mark_footnote_place)
    md.core.ruler.before("footnote_tail", "keep_unreferenced", _keep_unreferenced_footnotes)
    md.core.ruler.after("footnote_tail", "move_footnotes_to_place", _move_footnotes_to_place)
    md.add_render_rule("footnote_ref", _render_footnote_ref)
    md.add_render_rule("footnote_open", _render_footnote_open)
    md.add_render_rule("footnote_anchor", _render_footnote_anchor)
    return md


_MD = _markdown()


# Media the sanitiser does not let through, with what is inside them.
_MEDIA = re.compile(
    r"<(video|audio|iframe)\b((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>(.*?)</\1\s*>",
    re.IGNORECASE | re.DOTALL,
)
_SOURCE = re.compile(r"<source\b((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>", re.IGNORECASE)
_TAG_ATTRIBUTE = re.compile(r"""([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?""")


def _tag_attributes(source: str) -> dict[str, str]:
    return {
        found[1].lower(): unescape(found[2] or found[3] or found[4] or "")
        for found in _TAG_ATTRIBUTE.finditer(source)
    }


def _link_media(html: str) -> tuple[str, int]:
    """Put a link to its source in place of each video, audio and frame (the
    poster image as the link, when a video has one), and count them."""
    replaced = 0

    def link(found: re.Match[str]) -> str:
        nonlocal replaced
        attrs = _tag_attributes(found[2])
        sources = (_tag_attributes(inner[1]).get("src") for inner in _SOURCE.finditer(found[3]))
        src = attrs.get("src") or next((source for source in sources if source), "")
        if not src:
            return found[0]
        replaced += 1
        label = escape(attrs.get("title") or src)
        poster = attrs.get("poster") if found[1].lower() == "video" else None
        shown = f'<img src="{escape(poster)}" alt="{label}">' if poster else label
        return f'<a href="{escape(src)}">{shown}</a>'

    return _MEDIA.sub(link, html), replaced


Resolver = Callable[[str], str | None]


def _absolutiser(base_url: str, resolve: Resolver | None) -> Callable[[str, str, str], str]:
    def absolute(tag: str, attribute: str, value: str) -> str:
        if attribute in ("href", "src"):
            # Even "#fragment" becomes absolute: feed readers and mail clients
            # show a body apart from its page, where only the permalink has it.
            target = value.strip()
            if resolve is not None and not target.startswith("#"):
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
    names (``../other.md#part``), or None when it names no post. Footnote and
    heading ids are those Hugo gives, whatever ``doc_id`` is, so that the
    absolute links to them land on the post's page.
    """
    env: EnvType = {_PARTS: parts}
    tokens = _MD.parse(_separate_container_tags(markdown), env)
    html, media_replaced = _link_media(_MD.renderer.render(tokens, _MD.options, env))
    paragraphs, before_more, text = _plain_text(tokens)
    return Body(sanitise(html, base_url, resolve), paragraphs, before_more, text, media_replaced)
