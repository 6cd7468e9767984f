"""Where a post's Markdown holds code: fenced and indented code blocks and code
spans, found by a reading of CommonMark's block structure close enough for
shortcodes (``shortcode_syntax`` keeps code that only looks like a shortcode as
written)."""

from __future__ import annotations

import bisect
import re

_FENCE = re.compile(r"(`{3,}|~{3,})")
_LIST_MARKER = re.compile(r"(?:[-+*]|[0-9]{1,9}[.)])(?: {1,4}|\t|$)")
_QUOTE_MARKERS = re.compile(r"(?: {0,3}> ?)+")
_BACKTICKS = re.compile(r"`+")


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


class CodeMap:
    def __init__(self, source: str) -> None:
        self._ranges = code_ranges(source)
        self._starts = [start for start, _ in self._ranges]

    def holds(self, position: int) -> bool:
        at = bisect.bisect_right(self._starts, position) - 1
        return at >= 0 and self._ranges[at][1] > position
