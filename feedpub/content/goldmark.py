"""Hugo's Goldmark conventions, as markdown-it rules, so that a body renders
with the ids and attributes Hugo gives it.

- Attribute lists (Goldmark's parser/attribute.go): ``{#id .class name="value"}``
  at the end of a heading goes onto the heading (Hugo's ``parser.attribute.title``,
  on by default); a line that is only ``{...}`` goes onto the block above it
  (``parser.attribute.block``), and is dropped where Hugo drops it.
- Heading ids (markup/goldmark/autoid.go, ``autoHeadingIDType: github``): made
  from the heading's plain text as Hugo's render.TextPlain takes it (typographer
  on), numbered ``-1``, ``-2`` past ids already used; explicit ids kept.

``attribute_block`` is a block rule; ``heading_attributes`` runs before the
inline rule, ``heading_ids`` and then ``block_attributes`` after it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import count

from markdown_it.rules_block import StateBlock
from markdown_it.rules_core import StateCore
from markdown_it.token import Token

# Meta key of an inline token that stands for raw HTML (a shortcode's part):
# the plain text it counts as, in a heading's id and in the body's text.
PLAIN = "feedpub_plain"

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


def heading_attributes(state: StateCore) -> None:
    """Take ``{#id .class}`` off the end of headings onto the heading itself
    (Hugo's ``parser.attribute.title``, on by default)."""
    tokens = state.tokens
    for i, token in enumerate(tokens):
        if token.type == "heading_open":
            found = _trailing_attributes(tokens[i + 1].content)
            if found is not None:
                tokens[i + 1].content, attrs = found
                token.attrs.update(attrs)


def attribute_block(state: StateBlock, start: int, end: int, silent: bool) -> bool:
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


def block_attributes(state: StateCore) -> None:
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
    if PLAIN in token.meta:
        return str(token.meta[PLAIN])
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


def heading_ids(state: StateCore) -> None:
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
