"""Hugo's Goldmark conventions, so that a body renders with the ids and
attributes Hugo gives it.

- Attribute lists (Goldmark's parser/attribute.go): ``{#id .class name="value"}``
  at the end of a heading goes onto the heading (Hugo's ``parser.attribute.title``,
  on by default); a line that is only ``{...}`` goes onto the block above it
  (``parser.attribute.block``), and is dropped where Hugo drops it.
- Heading ids (markup/goldmark/autoid.go, ``autoHeadingIDType: github``): made
  from the heading's plain text as Hugo's render.TextPlain takes it (typographer
  on), numbered ``-1``, ``-2`` past ids already used; explicit ids kept.

The heading's text comes as a small tree of ``Node`` values, which the body
renderer builds from the Markdown parser's events.
"""

from __future__ import annotations

import re
from itertools import count
from typing import NamedTuple

# Goldmark's attribute syntax (parser/attribute.go): {#id .class name="value"}.
_ATTRIBUTE = re.compile(
    r"""[ \t]*(?:(?P<mark>[#.])(?P<word>[^\s!"#$%&'()*+,/;<=>?@\[\\\]^`{|}~]*)"""
    r"""|(?P<name>[A-Za-z_:][A-Za-z0-9_:.-]*)[ \t]*=[ \t]*"""
    r"""(?P<value>"(?:[^"\\\n]|\\.)*"|-?[0-9][0-9.eE+-]*|true|false|null))(?:[ \t]*,)?"""
)
_ATTRIBUTES_END = re.compile(r"[ \t]*\}")
_ESCAPE = re.compile(r"\\(.)")


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


def attribute_line(line: str) -> dict[str, str] | None:
    """The attributes of a line that is only ``{...}`` (after up to three
    spaces), or None when it is anything else."""
    stripped = line.lstrip(" ")
    if len(line) - len(stripped) > 3 or not stripped.startswith("{"):
        return None
    found = _parse_attributes(stripped, 0)
    if found is None or stripped[found[1] :].strip():
        return None
    return found[0]


def trailing_attributes(text: str) -> tuple[int, dict[str, str]] | None:
    """Where the attribute block that ends a heading's source text starts, and
    its attributes (Goldmark's parseLastLineAttributes); None without one."""
    pos = 0
    while pos < len(text):
        if text[pos] == "\\":
            pos += 2
            continue
        if text[pos] == "{":
            found = _parse_attributes(text, pos)
            if found is not None and not text[found[1] :].strip():
                return pos, found[0]
        pos += 1
    return None


class Node(NamedTuple):
    """A piece of a heading as Goldmark's tree holds it. ``kind`` is ``text``
    (plain text), ``special`` (an escaped character or an entity, a node of its
    own), ``code``, ``break``, ``plain`` (raw HTML counting as ``text``),
    ``autolink``, ``html``, or ``group`` (a link, emphasis or image, with
    ``children``)."""

    kind: str
    text: str = ""
    children: tuple[Node, ...] = ()


# Where Goldmark (typographer on) ends the text node a link or emphasis starts
# with: before a typographic substitution, after an unmatched delimiter.
_GOLDMARK_TEXT_END = re.compile(r"[*_~]+|--|\.\.\.|<<|>>|['\"]")
_TYPOGRAPHIC_DASHES = re.compile(r"---?")


def _first_child_text(nodes: tuple[Node, ...]) -> str:
    """The plain text of the first node, which for text is only as far as
    Goldmark's first text node goes."""
    if not nodes:
        return ""
    if nodes[0].kind not in ("text", "special"):
        return _node_text(nodes[0])
    out: list[str] = []
    for node in nodes:
        if node.kind == "special":
            out.append(node.text)
            continue
        if node.kind != "text":
            break
        end = _GOLDMARK_TEXT_END.search(node.text)
        if end is not None:
            out.append(node.text[: end.end() if end[0][0] in "*_~" else end.start()])
            break
        out.append(node.text)
    return "".join(out)


def _node_text(node: Node) -> str:
    kind = node.kind
    if kind in ("special", "code", "plain"):
        return node.text
    if kind == "text":
        return _TYPOGRAPHIC_DASHES.sub("", node.text)
    if kind == "break":
        return "\n"
    if kind == "group":
        return _first_child_text(node.children)
    return ""


def heading_text(nodes: tuple[Node, ...]) -> str:
    """The text Hugo makes a heading's id from: its render.TextPlain, which
    takes every node of the heading but only the first child of a link,
    emphasis or image, and the last line of a multi-line heading."""
    return "".join(_node_text(node) for node in nodes).rsplit("\n", 1)[-1]


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


class HeadingIds:
    """The ids of one document's headings, given in document order: an explicit
    id is taken as it is, a generated one numbered ``-1``, ``-2`` past those
    already used."""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def explicit(self, given: str) -> None:
        self._used.add(given)

    def generated(self, text: str) -> str | None:
        """The id of a heading with this plain text; None for an empty one."""
        if not text:
            return None
        wanted = _anchor_name(text) or "heading"
        if wanted in self._used:
            wanted = next(f"{wanted}-{n}" for n in count(1) if f"{wanted}-{n}" not in self._used)
        self._used.add(wanted)
        return wanted
