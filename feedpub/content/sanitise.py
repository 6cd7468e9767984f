"""Sanitising rendered HTML (the one module that imports nh3): the allow-lists,
absolute URLs, and links in place of the media the allow-list leaves out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html import escape, unescape
from urllib.parse import urljoin, urlsplit

import nh3

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


def link_media(html: str) -> tuple[str, int]:
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
    page = base_url.split("#", 1)[0]

    def absolute(tag: str, attribute: str, value: str) -> str:
        if attribute in ("href", "src"):
            # Even "#fragment" becomes absolute: feed readers and mail clients
            # show a body apart from its page, where only the permalink has it.
            target = value.strip()
            if target.startswith("#") and len(target) > 1:
                return page + target
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
