"""Plain-text rules: XML-safe characters, slugs, CJK-aware counting and trimming."""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import re
import unicodedata
from collections.abc import Iterator
from urllib.parse import quote

# XML 1.0 allows #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF].
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

# Scripts written without spaces between words: each character counts as a word.
_CJK_CLASS = (
    "\u1100-\u11ff\u2e80-\u2fdf\u3040-\u30ff\u3100-\u312f\u3130-\u318f\u31a0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7af\uf900-\ufaff"
    "\U00020000-\U0003134f"
)
# Marks that belong to the character before them (combining marks, variation selectors).
_MARKS = "\u0300-\u036f\u1ab0-\u1aff\u20d0-\u20ff\ufe00-\ufe0f\U000e0100-\U000e01ef"
# A unit is one CJK character with its marks (the group), or a run of other
# non-space characters.
_UNIT_PATTERN = f"([{_CJK_CLASS}][{_MARKS}]*)|[^\\s{_CJK_CLASS}]+"


@functools.cache
def _unit() -> re.Pattern[str]:
    """Compiled on first use: these classes take milliseconds to compile, and
    'feedpub build' with nothing to do should not pay for them."""
    return re.compile(_UNIT_PATTERN)


_SENTENCE_END = re.compile(r"[.!?。！？][\"'”’」』）)]*(?=\s|$)|[。！？]")
_TRAILING_PUNCT = ",;:、，；：-–—.。!！?？ \t\n"
ELLIPSIS = "…"

_SLUG_DROP = re.compile(r"[^\w\s-]")
_SLUG_SEP = re.compile(r"[\s_-]+")
_TITLE_NOISE = re.compile(r"[\W_]+")

CJK_CHARS_PER_MINUTE = 400
WORDS_PER_MINUTE = 220


def xml_safe(text: str) -> str:
    """Remove characters that XML 1.0 forbids (most C0 controls, lone surrogates)."""
    return _XML_INVALID.sub("", text)


def short_digest(key: str) -> str:
    """Eight hex digits that tell ``key`` apart from other keys (not a secret)."""
    return hashlib.blake2s(key.encode(), digest_size=4).hexdigest()


def unique_digest(key: str) -> str:
    """32 hex digits (128 bits of SHA-256) for names that must never collide,
    such as one message's among every message a list sends."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def slugify(text: str) -> str:
    """A URL-safe slug that keeps letters of every script (``AI 新闻`` -> ``ai-新闻``).

    May return an empty string (for text of punctuation only); callers choose a fallback.
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _SLUG_DROP.sub("", text)
    return _SLUG_SEP.sub("-", text).strip("-")


_HEX_ESCAPE = re.compile("%[0-9A-Fa-f]{2}")


def _path_character(text: str, at: int) -> bool:
    """Whether Hugo keeps the character in a path (common/paths.isAllowedPathCharacter)."""
    char = text[at]
    if char.isalpha() or char.isdecimal() or char in "./\\_#+~-@":
        return True
    if unicodedata.category(char).startswith("M"):
        return True
    return char == "%" and bool(_HEX_ESCAPE.match(text, at))


# A path that hugo_path leaves as it is: most file names and slugs are.
_PLAIN_PATH = re.compile(r"[a-z0-9_#+~@-][a-z0-9._#+~@-]*(?:/[a-z0-9_#+~@-][a-z0-9._#+~@-]*)*")


def hugo_path(text: str) -> str:
    """A file name, folder name or slug as Hugo puts it in a URL (MakePathSanitized):
    letters, digits, marks and ``. / _ # + ~ - @`` kept, each run of spaces a
    dash, anything else dropped, lower-cased; so ``Istio 1.6 Explain`` gives
    ``istio-1.6-explain``. Empty, ``.`` and ``..`` segments are dropped, so the
    result stays below the folder it goes in."""
    if _PLAIN_PATH.fullmatch(text):  # no segment starts with a dot: none is . or ..
        return text
    return _sanitised_path(text)


def _sanitised_path(text: str) -> str:
    """hugo_path, character by character."""
    kept: list[str] = []
    space = False
    for at, char in enumerate(text):
        if _path_character(text, at):
            if space and char != "-" and kept[-1] != "-":
                kept.append("-")
            space = False
            kept.append(char)
        elif kept and char.isspace():
            space = True
    segments = "".join(kept).lower().split("/")
    return "/".join(s for s in segments if s not in ("", ".", ".."))


# What a URL path keeps as it is (Go's url.EscapedPath): unreserved characters,
# the sub-delimiters a path may hold, and the escapes already made.
_PATH_SAFE = "/-._~!$&'()*+,;=:@%"


def url_path(path: str) -> str:
    """``path`` percent-encoded as Hugo encodes a page's link: non-ASCII letters
    as UTF-8 escapes, ``#`` as ``%23``, existing escapes kept."""
    return quote(path.replace("#", "%23"), safe=_PATH_SAFE)


_PLAIN_TERM = re.compile(r"[\w\s-]+")


@functools.lru_cache(maxsize=65536)  # tags repeat across thousands of posts
def term_slug(name: str) -> str:
    """A folder name for a tag or category, unique per term.

    Names that differ only in case, spaces, dashes or underscores are one term
    (``Machine Learning`` and ``machine-learning``). Any other character that a
    slug drops (``C++``, ``C#``, ``a/b``, ``v1.0``) adds a digest of the whole
    name, so ``C++`` and ``C#`` never share a folder.
    """
    folded = unicodedata.normalize("NFKC", name).casefold()
    base = slugify(folded)
    if base and _PLAIN_TERM.fullmatch(folded):
        return base
    digest = short_digest(folded)
    return f"{base}-{digest}" if base else digest


@functools.lru_cache(maxsize=65536)  # the daemon selects from the same titles every build
def normalise_title(title: str) -> str:
    """A title reduced to its letters and digits, for spotting the same story twice."""
    return _TITLE_NOISE.sub("", unicodedata.normalize("NFKC", title).casefold())


def _units(text: str) -> Iterator[re.Match[str]]:
    return _unit().finditer(text)


def words_and_minutes(text: str) -> tuple[int, int]:
    """Words in Latin-like text plus characters in CJK text, and the whole
    minutes it takes to read them (at least one), in one pass."""
    units = _unit().findall(text)  # CJK characters come back as themselves, words as ""
    cjk = len(units) - units.count("")
    minutes = math.ceil((len(units) - cjk) / WORDS_PER_MINUTE + cjk / CJK_CHARS_PER_MINUTE)
    return len(units), max(1, minutes)


def collapse_space(text: str) -> str:
    return " ".join(text.split())


def display_width(text: str) -> int:
    """Terminal columns: wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def wrap(text: str, width: int) -> list[str]:
    """Lines of at most ``width`` columns, broken at spaces or between CJK
    characters; a single longer word (a URL) gets a line of its own."""
    lines: list[str] = []
    line, line_width = "", 0  # the width kept as the line grows, not measured again
    previous_end = 0
    for unit in _units(collapse_space(text)):
        spaced = unit.start() > previous_end
        previous_end = unit.end()
        piece = (" " if spaced and line else "") + unit.group()
        piece_width = display_width(piece)
        if line and line_width + piece_width > width:
            lines.append(line)
            piece = unit.group()
            piece_width = display_width(piece)
            line, line_width = "", 0
        line += piece
        line_width += piece_width
    if line:
        lines.append(line)
    return lines


def trim(text: str, limit: int) -> str:
    """Shorten ``text`` to at most ``limit`` units (words, or CJK characters).

    The cut falls at the end of a sentence when one ends in the second half of
    the allowance, else after the last whole unit; a cut text ends with an ellipsis.
    """
    text = collapse_space(text)
    limit = max(limit, 1)
    units = list(itertools.islice(_units(text), limit + 1))
    if len(units) <= limit:
        return text
    end = units[limit - 1].end()
    floor = units[(limit - 1) // 2].start()
    sentence_ends = [m.end() for m in _SENTENCE_END.finditer(text, floor, end)]
    if sentence_ends:
        end = sentence_ends[-1]
    return text[:end].rstrip(_TRAILING_PUNCT) + ELLIPSIS
