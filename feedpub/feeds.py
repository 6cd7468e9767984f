"""RSS 2.0 and Atom 1.0 (with feedgen) and JSON Feed 1.1, as bytes.

Pure: the same items and spec always give the same bytes. Nothing here reads
the clock; a feed's update time is its newest item's.
"""

from __future__ import annotations

import functools
import html
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any
from urllib.parse import quote, urlsplit

from feedpub import __version__
from feedpub.config import FeedsConfig, SiteConfig
from feedpub.content.ids import post_id
from feedpub.content.text import term_slug
from feedpub.model import Author, Post, RenderedPost

# A feed with no items still needs an update time; this one never changes.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FILE_NAMES = {"rss": "rss.xml", "atom": "atom.xml", "json": "feed.json"}
MEDIA_TYPES = {
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
    "json": "application/feed+json",
}
STYLESHEET_NAME = "feed.xsl"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """What a feed says about itself, and where it lives."""

    id: str
    title: str
    description: str
    language: str
    home_url: str
    folder_url: str
    author: Author
    full_content: bool
    stylesheet_url: str | None

    def self_url(self, fmt: str) -> str:
        return self.folder_url + FILE_NAMES[fmt]


@dataclass(frozen=True, slots=True)
class FeedPlan:
    """One feed to write: its folder under the output folder, what it says, its posts,
    and for a term's feed the term's name (its most used spelling; "" for the site)."""

    folder: str
    spec: FeedSpec
    posts: tuple[Post, ...]
    name: str = ""


def _spec(
    site: SiteConfig, feeds: FeedsConfig, folder: str, title: str, description: str
) -> FeedSpec:
    stylesheet = None
    if feeds.stylesheet:
        # A root-relative href: browsers apply XSLT only from the feed's own origin,
        # and this also works when the feeds are served locally.
        stylesheet = urlsplit(feeds.base_url).path + STYLESHEET_NAME
    return FeedSpec(
        id=post_id(site.id, "feeds/" + folder),
        title=title,
        description=description,
        language=site.language,
        home_url=site.url,
        folder_url=feeds.base_url + quote(folder),
        author=site.author,
        full_content=feeds.full_content,
        stylesheet_url=stylesheet,
    )


def _term_spec(site: SiteConfig, feeds: FeedsConfig, folder: str, name: str) -> FeedSpec:
    return _spec(site, feeds, folder, f"{name} · {site.title}", f"{site.title}: {name}")


def plan_feeds(
    published: Sequence[Post],
    site: SiteConfig,
    feeds: FeedsConfig,
    names: Mapping[str, str] = MappingProxyType({}),
) -> list[FeedPlan]:
    """The site feed and one feed per tag or category term, each with the newest
    ``feeds.limit`` of ``published`` (already in feed order).

    A term is named by its most used spelling, or by ``names`` (by folder) where
    that was told from more posts than ``published`` holds."""
    plans = [
        FeedPlan(
            "",
            _spec(site, feeds, "", site.title, site.description),
            tuple(published[: feeds.limit]),
        )
    ]
    slugs: dict[str, str] = {}  # a site has few terms and many posts: slug each once
    for taxonomy in feeds.taxonomies:
        members: dict[str, list[Post]] = {}
        spellings: defaultdict[str, Counter[str]] = defaultdict(Counter)
        for post in published:
            for slug, name in terms_of(post, taxonomy, slugs).items():
                members.setdefault(slug, []).append(post)
                spellings[slug][name] += 1
        for slug in sorted(members):
            folder = f"{taxonomy}/{slug}/"
            name = names.get(folder) or _most_used(spellings[slug])
            spec = _term_spec(site, feeds, folder, name)
            plans.append(FeedPlan(folder, spec, tuple(members[slug][: feeds.limit]), name))
    return plans


def _most_used(spellings: Counter[str]) -> str:
    """A term's name: its most used spelling, the first in code-point order on a tie."""
    return min(spellings.items(), key=lambda pair: (-pair[1], pair[0]))[0]


def terms_of(post: Post, taxonomy: str, slugs: dict[str, str] | None = None) -> dict[str, str]:
    """The post's terms in ``taxonomy`` as spelled there, by slug; ``slugs``
    remembers each name's slug for a caller that asks for many posts."""
    slugs = {} if slugs is None else slugs
    terms: dict[str, str] = {}
    for name in post.tags if taxonomy == "tags" else post.categories:
        slug = slugs.get(name)
        if slug is None:
            slug = slugs[name] = term_slug(name)
        terms[slug] = name
    return terms


def updated(items: Sequence[RenderedPost]) -> datetime:
    """The feed's update time: its newest item's update time."""
    return max((item.post.updated for item in items), default=EPOCH)


def _terms(post: Post) -> list[str]:
    return list(dict.fromkeys((*post.tags, *post.categories)))


def _generator(spec: FeedSpec, fmt: str) -> Any:
    from feedgen.feed import FeedGenerator

    feed = FeedGenerator()
    feed.title(spec.title)
    # feedgen takes the RSS <link> from the last link added: the site, not the feed.
    feed.link(href=spec.self_url(fmt), rel="self", type=MEDIA_TYPES[fmt])
    feed.link(href=spec.home_url, rel="alternate", type="text/html")
    feed.language(spec.language)
    if fmt == "rss":
        feed.generator(f"feedpub {__version__}")
    else:
        feed.generator("feedpub", version=__version__)
    return feed


def _with_stylesheet(document: bytes, spec: FeedSpec) -> bytes:
    if spec.stylesheet_url is None:
        return document
    declaration, rest = document.split(b"\n", 1)
    instruction = f'<?xml-stylesheet type="text/xsl" href="{spec.stylesheet_url}"?>'
    return b"\n".join((declaration, instruction.encode(), rest))


def _hex_references(document: bytes) -> bytes:
    """Write ``&``, ``<`` and ``>`` as hexadecimal character references.

    The RSS Best Practices Profile: 'A publisher should encode "&" and "<" in plain
    text using hexadecimal character references', which aggregators read most
    reliably. Each entity lxml writes becomes the same character, so no text changes.
    """
    return (
        document.replace(b"&amp;", b"&#x26;")
        .replace(b"&lt;", b"&#x3C;")
        .replace(b"&gt;", b"&#x3E;")
    )


def render_rss(items: Sequence[RenderedPost], spec: FeedSpec) -> bytes:
    feed = _generator(spec, "rss")
    feed.load_extension("dc", atom=False, rss=True)
    feed.description(spec.description)
    feed.lastBuildDate(updated(items))
    for item in items:
        post = item.post
        entry = feed.add_entry(order="append")
        entry.guid(post.id, permalink=False)
        entry.title(post.title)
        entry.link(href=post.url)
        entry.pubDate(post.date)
        entry.description(html.escape(item.summary, quote=False))  # RSS description is HTML
        if spec.full_content:
            entry.content(item.html)  # escaped: CDATA cannot hold a body with "]]>" in it
        if post.author.email:
            entry.author(name=post.author.name, email=post.author.email)
        else:
            # RSS <author> must be an email address; a bare name goes in dc:creator.
            entry.dc.dc_creator(post.author.name)
        if terms := _terms(post):  # at once: feedgen rebuilds its list on every call
            entry.category([{"term": term} for term in terms])
        if post.cover and post.cover.type:
            # RSS Best Practices Profile: "When an enclosure's size cannot be
            # determined, a publisher should use a length of 0."
            entry.enclosure(post.cover.url, str(post.cover.length or 0), post.cover.type)
    return _with_stylesheet(_hex_references(feed.rss_str(pretty=True)), spec)


@functools.cache
def _atom_links_extension() -> tuple[type, type]:
    """A feedgen entry extension that writes extra Atom entry links (enclosure,
    via) with all their attributes.

    feedgen 1.0 writes only ``href`` for entry links (lkiesow/python-feedgen#135),
    which would turn an enclosure into a second alternate link. Made on first
    use, so that importing this module does not import feedgen.
    """
    from feedgen.ext.base import BaseEntryExtension, BaseExtension
    from lxml import etree

    class AtomLinks(BaseEntryExtension):  # type: ignore[misc]
        def __init__(self) -> None:
            self.links: list[dict[str, str]] = []

        def extend_atom(self, entry: etree._Element) -> etree._Element:
            for attributes in self.links:
                etree.SubElement(entry, "link", attributes)
            return entry

    class NoFeedExtension(BaseExtension):  # type: ignore[misc]
        pass

    return NoFeedExtension, AtomLinks


def load_renderers() -> None:
    """Import feedgen and lxml now, before worker processes are forked."""
    from feedgen.feed import FeedGenerator  # noqa: F401

    _atom_links_extension()


def render_atom(items: Sequence[RenderedPost], spec: FeedSpec) -> bytes:
    feed = _generator(spec, "atom")
    feed_extension, entry_extension = _atom_links_extension()
    feed.register_extension("links", feed_extension, entry_extension, atom=True, rss=False)
    feed.id(spec.id)
    feed.subtitle(spec.description)
    feed.updated(updated(items))
    feed.author(_person(spec.author))
    for item in items:
        post = item.post
        entry = feed.add_entry(order="append")
        entry.id(post.id)
        entry.title(post.title)
        entry.link(href=post.url, rel="alternate", type="text/html")
        entry.published(post.date)
        entry.updated(post.updated)
        entry.author(_person(post.author))
        entry.summary(item.summary, type="text")
        if spec.full_content:
            entry.content(item.html, type="html")
        if terms := _terms(post):  # at once: feedgen rebuilds its list on every call
            entry.category([{"term": term} for term in terms])
        if post.cover and post.cover.type:
            link = {"rel": "enclosure", "href": post.cover.url, "type": post.cover.type}
            if post.cover.length is not None:
                link["length"] = str(post.cover.length)
            entry.links.links.append(link)
        if post.source_url:
            entry.links.links.append({"rel": "via", "href": post.source_url})
    return _with_stylesheet(feed.atom_str(pretty=True), spec)


def _person(author: Author) -> dict[str, str]:
    person = {"name": author.name}
    if author.email:
        person["email"] = author.email
    if author.uri:
        person["uri"] = author.uri
    return person


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def render_json(items: Sequence[RenderedPost], spec: FeedSpec) -> bytes:
    feed: dict[str, Any] = {
        "version": JSON_FEED_VERSION,
        "title": spec.title,
        "home_page_url": spec.home_url,
        "feed_url": spec.self_url("json"),
        "description": spec.description,
        "language": spec.language,
        "authors": [{"name": spec.author.name}],
        "items": [_json_item(item, spec.full_content) for item in items],
    }
    # Compact: without indent, json's C encoder writes it, ten times faster.
    return (json.dumps(feed, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def _json_item(item: RenderedPost, full_content: bool) -> dict[str, Any]:
    post = item.post
    entry: dict[str, Any] = {"id": post.id, "url": post.url}
    if post.source_url:
        entry["external_url"] = post.source_url
    entry["title"] = post.title
    entry["summary"] = item.summary
    # Every item needs content_html or content_text (JSON Feed 1.1).
    if full_content:
        entry["content_html"] = item.html
    else:
        entry["content_text"] = item.summary
    if post.cover:
        entry["image"] = post.cover.url
    entry["date_published"] = _rfc3339(post.date)
    entry["date_modified"] = _rfc3339(post.updated)
    entry["authors"] = [
        {"name": post.author.name, "url": post.author.uri}
        if post.author.uri
        else {"name": post.author.name}
    ]
    terms = _terms(post)
    if terms:
        entry["tags"] = terms
    return entry


RENDERERS: dict[str, Callable[[Sequence[RenderedPost], FeedSpec], bytes]] = {
    "rss": render_rss,
    "atom": render_atom,
    "json": render_json,
}
