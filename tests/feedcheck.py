"""Independent checks of feed files against the rules of their specifications.

RSS 2.0 with the RSS Advisory Board's Best Practices Profile, RFC 4287 for Atom,
JSON Feed 1.1 (through a JSON Schema in tests/data). Each check reads the bytes
back with lxml and feedparser; none reuses feedpub's own code.
"""

from __future__ import annotations

import email.utils
import json
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import feedparser
import jsonschema
from lxml import etree
from lxml import html as lxml_html

ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
DC = "{http://purl.org/dc/elements/1.1/}"
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
SCHEMA = json.loads((Path(__file__).parent / "data" / "jsonfeed-1.1.schema.json").read_text())


class FeedProblem(AssertionError):
    pass


def _require(condition: object, message: str) -> None:
    if not condition:
        raise FeedProblem(message)


def _absolute(url: str | None) -> bool:
    parts = urlsplit(url or "")
    return parts.scheme in ("http", "https", "mailto") and bool(
        parts.netloc or parts.scheme == "mailto"
    )


def _no_empty_elements(root: etree._Element) -> None:
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        has_text = bool((element.text or "").strip())
        _require(has_text or len(element) or element.attrib, f"empty element <{element.tag}>")


def _html_urls_absolute(markup: str) -> None:
    if not markup.strip():
        return
    doc = lxml_html.fragment_fromstring(markup, create_parent="div")
    for element in doc.iter():
        for attribute in ("href", "src"):
            value = element.get(attribute)
            if value is not None and not value.startswith("#"):
                _require(_absolute(value), f"relative URL {value!r} in content")


def parse_back(data: bytes) -> feedparser.FeedParserDict:
    parsed = feedparser.parse(data)
    _require(not parsed.bozo, f"feedparser: {parsed.get('bozo_exception')!r}")
    return parsed


def check_rss(data: bytes, self_url: str) -> etree._Element:
    parse_back(data)
    root = etree.fromstring(data)
    _require(root.tag == "rss" and root.get("version") == "2.0", "not an RSS 2.0 document")
    channel = root.find("channel")
    _require(channel is not None, "no channel")
    assert channel is not None
    for name in ("title", "link", "description"):
        _require((channel.findtext(name) or "").strip(), f"channel has no {name}")
    _require(_absolute(channel.findtext("link")), "channel link is not absolute")
    selfs = [link for link in channel.findall(f"{ATOM}link") if link.get("rel") == "self"]
    _require(
        len(selfs) == 1 and selfs[0].get("href") == self_url, "atom:link rel=self missing or wrong"
    )
    _require(selfs[0].get("type") == "application/rss+xml", "self link type")
    _require(channel.findtext("language"), "channel has no language")
    _no_empty_elements(root)
    guids = set()
    for item in channel.findall("item"):
        _require(
            item.findtext("title") or item.findtext("description"),
            "item without title or description",
        )
        _require(_absolute(item.findtext("link")), "item link is not absolute")
        guid = item.find("guid")
        _require(guid is not None and guid.text, "item without guid")
        assert guid is not None
        if guid.get("isPermaLink", "true") == "true":
            _require(_absolute(guid.text), "permalink guid is not a URL")
        _require(guid.text not in guids, f"duplicate guid {guid.text}")
        guids.add(guid.text)
        when = email.utils.parsedate_to_datetime(item.findtext("pubDate") or "")
        _require(when.tzinfo is not None, "pubDate without zone")
        for author in item.findall("author"):
            _require("@" in (author.text or ""), "RSS <author> must hold an email address")
        for enclosure in item.findall("enclosure"):
            _require(_absolute(enclosure.get("url")), "enclosure url")
            _require((enclosure.get("length") or "").isdigit(), "enclosure length")
            _require("/" in (enclosure.get("type") or ""), "enclosure type")
        _require(len(item.findall("enclosure")) <= 1, "more than one enclosure")
        _html_urls_absolute(item.findtext(f"{CONTENT}encoded") or "")
        _require(
            item.find("pubDate") is None or item.find(f"{DC}date") is None, "pubDate and dc:date"
        )
    if channel.find("lastBuildDate") is not None:
        email.utils.parsedate_to_datetime(channel.findtext("lastBuildDate") or "")
    return root


def _atom_dates(element: etree._Element, *names: str) -> None:
    for name in names:
        for value in element.findall(f"{ATOM}{name}"):
            _require(RFC3339.fullmatch(value.text or ""), f"{name} is not RFC 3339: {value.text!r}")


def _one(element: etree._Element, name: str) -> None:
    _require(len(element.findall(f"{ATOM}{name}")) == 1, f"<{name}> must appear exactly once")


def check_atom(data: bytes, self_url: str) -> etree._Element:
    parse_back(data)
    root = etree.fromstring(data)
    _require(root.tag == f"{ATOM}feed", "not an Atom feed")
    for name in ("id", "title", "updated"):
        _one(root, name)
    _atom_dates(root, "updated")
    feed_has_author = root.find(f"{ATOM}author/{ATOM}name") is not None
    selfs = [link for link in root.findall(f"{ATOM}link") if link.get("rel") == "self"]
    _require(len(selfs) == 1 and selfs[0].get("href") == self_url, "self link missing or wrong")
    _no_empty_elements(root)
    ids = set()
    for entry in root.findall(f"{ATOM}entry"):
        for name in ("id", "title", "updated"):
            _one(entry, name)
        _require(len(entry.findall(f"{ATOM}published")) <= 1, "more than one published")
        _atom_dates(entry, "updated", "published")
        entry_id = entry.findtext(f"{ATOM}id")
        _require(entry_id and urlsplit(entry_id).scheme, "entry id is not an IRI")
        _require(entry_id not in ids, "duplicate entry id")
        ids.add(entry_id)
        _require(feed_has_author or entry.find(f"{ATOM}author/{ATOM}name") is not None, "no author")
        links = entry.findall(f"{ATOM}link")
        alternates = [
            (link.get("type"), link.get("hreflang"))
            for link in links
            if link.get("rel", "alternate") == "alternate"
        ]
        _require(
            len(alternates) == len(set(alternates)),
            "two alternate links with one type and hreflang",
        )
        content = entry.find(f"{ATOM}content")
        _require(content is not None or alternates, "entry without content needs an alternate link")
        if content is not None:
            _require(content.get("type") in ("text", "html", "xhtml"), "content type")
            if content.get("type") == "html":
                _html_urls_absolute(content.text or "")
        for link in links:
            _require(_absolute(link.get("href")), "link href is not absolute")
            if link.get("length") is not None:
                _require((link.get("length") or "").isdigit(), "link length")
        summary = entry.find(f"{ATOM}summary")
        if summary is not None:
            _require(summary.get("type", "text") in ("text", "html", "xhtml"), "summary type")
        for category in entry.findall(f"{ATOM}category"):
            _require(category.get("term"), "category without term")
    return root


def check_json(data: bytes, self_url: str) -> dict[str, Any]:
    feed = json.loads(data.decode("utf-8"))
    jsonschema.validate(feed, SCHEMA, format_checker=jsonschema.FormatChecker())
    _require(feed.get("feed_url") == self_url, "feed_url is not where the feed is served")
    for item in feed["items"]:
        for key in ("date_published", "date_modified"):
            if key in item:
                datetime.fromisoformat(item[key])
        _html_urls_absolute(item.get("content_html", ""))
    return feed


CHECKS = {"rss.xml": check_rss, "atom.xml": check_atom, "feed.json": check_json}


def check_feed(path: Path, self_url: str) -> Any:
    return CHECKS[path.name](path.read_bytes(), self_url)


# Stricter rules for sites written for Hugo (tests/test_hugo.py). A feed item is read
# away from its page, often by a reader that resolves nothing: RFC 4287 and the RSS
# profile allow xml:base and relative references, but readers differ on them, so every
# reference is absolute, a same-document one included (permalink#fragment, naming an
# id the item holds). Nothing of Hugo's source syntax may leak into what a reader shows.
TEMPLATE_SYNTAX = re.compile(r"\{\{[<%]|[>%]\}\}")
GOLDMARK_ATTRIBUTES = re.compile(r"\{\s*[#.][\w\-]+(?:\s+[^{}]*)?\}")
_REFERENCE_ATTRIBUTES = ("href", "src", "poster", "cite", "action", "data", "background")


def _unquoted(url: str) -> str:
    return unquote(url)


def check_clean_text(text: str, where: str, code: Iterable[str] = ()) -> None:
    """No shortcode delimiters and no Goldmark attribute lists in text a reader sees,
    other than the ``code`` the item shows as written (a summary drawn from a paragraph
    with inline code repeats it)."""
    for shown in code:
        text = text.replace(shown, " ")
    found = TEMPLATE_SYNTAX.search(text)
    _require(found is None, f"{where}: shortcode syntax {_around(text, found)!r}")
    found = GOLDMARK_ATTRIBUTES.search(text)
    _require(found is None, f"{where}: Goldmark attribute text {_around(text, found)!r}")


def _around(text: str, found: re.Match[str] | None) -> str:
    if found is None:
        return ""
    return text[max(0, found.start() - 30) : found.end() + 30]


def check_item_html(markup: str, permalink: str, where: str) -> None:
    """Every reference in the item absolute; same-document ones name an id it holds;
    no shortcode or attribute syntax outside code (code shows what the author wrote
    to be shown, such as an escaped shortcode)."""
    if not markup.strip():
        return
    doc = lxml_html.fragment_fromstring(markup, create_parent="div")
    ids = {_unquoted(e.get("id") or "") for e in doc.iter() if isinstance(e.tag, str)}
    page = _unquoted(permalink).split("#")[0]
    for element in doc.iter():
        if not isinstance(element.tag, str):
            continue
        for attribute, value in element.attrib.items():
            check_clean_text(value, f"{where}: <{element.tag} {attribute}>")
            if attribute not in _REFERENCE_ATTRIBUTES:
                continue
            _require(_absolute(value), f"{where}: relative reference {value!r} in content")
            base, _, fragment = _unquoted(value).partition("#")
            if fragment and base == page:
                _require(fragment in ids, f"{where}: {value!r} names no id in the item")
        if element.tag == "img":
            for candidate in (element.get("srcset") or "").split(","):
                url = candidate.strip().split(" ")[0]
                _require(not url or _absolute(url), f"{where}: relative srcset {url!r}")
    for code in list(doc.iter("code", "pre")):
        if code.getparent() is not None:
            code.drop_tree()
    check_clean_text(doc.text_content(), where)


def check_feed_references(path: Path) -> int:
    """Apply check_item_html and check_clean_text to every item of one feed file
    (RSS, Atom or JSON Feed); return how many items were checked."""
    data = path.read_bytes()
    items: list[tuple[str, str, list[str], list[str]]] = []  # link, where, html, text
    if path.name == "feed.json":
        for item in json.loads(data.decode("utf-8"))["items"]:
            items.append(
                (
                    item.get("url", ""),
                    f"{path.name} {item.get('url')}",
                    [item.get("content_html", "")],
                    [item.get("title", ""), item.get("summary", ""), item.get("content_text", "")],
                )
            )
    elif path.name == "rss.xml":
        for item in etree.fromstring(data).iter("item"):
            link = item.findtext("link") or ""
            items.append(
                (
                    link,
                    f"{path.name} {link}",
                    [item.findtext(f"{CONTENT}encoded") or ""],
                    [item.findtext("title") or "", item.findtext("description") or ""],
                )
            )
    else:
        for entry in etree.fromstring(data).iter(f"{ATOM}entry"):
            link = next(
                (
                    e.get("href", "")
                    for e in entry.findall(f"{ATOM}link")
                    if e.get("rel", "alternate") == "alternate"
                ),
                "",
            )
            html_parts, text_parts = [], [entry.findtext(f"{ATOM}title") or ""]
            for name in ("content", "summary"):
                element = entry.find(f"{ATOM}{name}")
                if element is None:
                    continue
                if element.get("type") == "html":
                    html_parts.append(element.text or "")
                else:
                    text_parts.append(element.text or "")
            items.append((link, f"{path.name} {link}", html_parts, text_parts))
    for link, where, html_parts, text_parts in items:
        code = []
        for markup in html_parts:
            check_item_html(markup, link, where)
            if markup.strip():
                doc = lxml_html.fragment_fromstring(markup, create_parent="div")
                code += [c.text_content() for c in doc.iter("code")]
        for text in text_parts:
            check_clean_text(text, where, sorted(code, key=len, reverse=True))
    return len(items)
