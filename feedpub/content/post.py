"""One content file -> one ``Post``; one ``Post`` -> one ``RenderedPost``."""

from __future__ import annotations

import codecs
import email.utils
import mimetypes
import posixpath
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

from feedpub.config import SiteConfig
from feedpub.config_schema import DEFAULT_COVER_FIELDS
from feedpub.content.front import body_of, split
from feedpub.content.ids import post_id
from feedpub.content.media import local_file, local_size
from feedpub.content.text import (
    collapse_space,
    normalise_title,
    xml_safe,
)
from feedpub.content.urls import post_slug, relative_url
from feedpub.errors import ContentError
from feedpub.model import Author, Image, Post, Problem, Severity

KNOWN_KEYS = frozenset(
    "title date lastmod updated sync_time draft tags categories author summary description"
    " cover image source_url slug word_count reading_time guid publishdate pubdate published"
    " modified expirydate unpublishdate url build _build headless".split()
)
# Hugo's default [frontmatter] dates (resources/page/pagemeta/page_frontmatter.go),
# each key with its aliases; feedpub's own updated and sync_time follow lastmod's.
DATE_KEYS = ("date", "publishdate", "pubdate", "published", "lastmod", "modified")
PUBLISH_DATE_KEYS = ("publishdate", "pubdate", "published")
LASTMOD_KEYS = ("lastmod", "modified", "updated", "sync_time")
EXPIRY_DATE_KEYS = ("expirydate", "unpublishdate")
# A Markdown link as an author (Docsy: author: "[Name](https://github.com/name)").
_AUTHOR_LINK = re.compile(r"\[([^\]]+)\]\(\s*(\S+?)\s*\)")
# A file name that starts with a date (Jekyll's and Hugo's :filename).
_DATED_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})[ _-]")


def _lower_keys(meta: Mapping[str, Any]) -> dict[str, Any]:
    """``meta`` with its keys, and those of the mappings in it, lower-cased; the
    first of two keys that differ only in case wins."""
    lowered: dict[str, Any] = {}
    for key, value in meta.items():
        lowered.setdefault(
            key.lower() if isinstance(key, str) else key,
            _lower_keys(value) if isinstance(value, Mapping) else value,
        )
    return lowered


def _hugo_never(value: object, never: tuple[str, ...]) -> bool:
    """Whether a Hugo build option says no: false, or one of ``never``."""
    return value is False or (isinstance(value, str) and value.lower() in never)


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return repr(value)


class _Reader:
    """Reads typed fields out of one post's front matter."""

    def __init__(self, label: str, meta: Mapping[str, Any], zone: ZoneInfo) -> None:
        self.label = label
        self.meta = _lower_keys(meta)  # Hugo reads front-matter keys in any case
        self.zone = zone
        self.warnings: list[Problem] = []

    def fail(self, reason: str) -> ContentError:
        return ContentError(self.label, reason)

    def warn(self, message: str) -> None:
        self.warnings.append(Problem(self.label, message, severity=Severity.WARNING))

    def text(self, key: str) -> str | None:
        """Plain text, whitespace collapsed; None when absent or empty."""
        value = self.meta.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(f"{key}: expected text, got {_kind(value)}")
        return collapse_space(str(value)) or None

    def terms(self, key: str) -> tuple[str, ...]:
        value = self.meta.get(key)
        if value is None:
            return ()
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in items):
            raise self.fail(f"{key}: expected a list of names, got {_kind(value)}")
        names = (collapse_space(str(v)) for v in items)
        return tuple(dict.fromkeys(n for n in names if n))

    def when(self, key: str) -> datetime | None:
        value = self.meta.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, date):
            moment = datetime.combine(value, time())
        elif isinstance(value, str):
            moment = self._parse_date(key, value.strip())
        else:
            raise self.fail(
                f"{key}: expected a date such as 2025-06-09T13:49:22Z, got {_kind(value)}"
            )
        return moment if moment.tzinfo else moment.replace(tzinfo=self.zone)

    def _parse_date(self, key: str, value: str) -> datetime:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
        try:
            return email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            raise self.fail(
                f"{key}: {value!r} is not a date; write it as 2025-06-09T13:49:22Z"
            ) from None

    def first_when(self, keys: Sequence[str]) -> datetime | None:
        """The first of ``keys`` that holds a date."""
        for key in keys:
            moment = self.when(key)
            if moment is not None:
                return moment
        return None

    def flag(self, key: str) -> bool:
        value = self.meta.get(key, False)
        if not isinstance(value, bool):
            raise self.fail(f"{key}: expected true or false, got {_kind(value)}")
        return value

    def count(self, key: str) -> int | None:
        value = self.meta.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.warn(f"{key}: expected a whole number, got {_kind(value)}; computing it instead")
            return None
        return value

    def author(self, default: Author) -> Author:
        """The post's author: a name, a Markdown link ``[Name](url)``, a mapping
        of name, email and url (or link), or a list of these, whose first is the
        author (a post has one author in feedpub; Atom allows more, but RSS and
        the digest name one)."""
        value = self.meta.get("author")
        if isinstance(value, list):
            value = value[0] if value else None
        if value is None or value == "":
            return default
        if isinstance(value, str):
            link = _AUTHOR_LINK.fullmatch(value.strip())
            if link is None:
                return Author(collapse_space(value))
            return Author(collapse_space(link[1]), None, self._author_uri(link[2]))
        if isinstance(value, Mapping) and isinstance(value.get("name"), str):
            email_address = value.get("email")
            uri = value.get("url", value.get("link"))
            return Author(
                collapse_space(value["name"]),
                email_address if isinstance(email_address, str) and email_address else None,
                self._author_uri(uri) if isinstance(uri, str) and uri else None,
            )
        raise self.fail(
            f"author: expected a name, [name](url) or {{name, email, url}}, got {_kind(value)}"
        )

    def _author_uri(self, uri: str) -> str | None:
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            self.warn(f"author: {uri!r} is not an absolute http(s) URL; ignored")
            return None
        return uri

    def cover(
        self,
        fields: Sequence[str],
        base_url: str,
        title: str,
        local_dirs: tuple[Path, Path] | None,
    ) -> Image | None:
        """The first of the front-matter ``fields`` (``cover.image``: a key in a
        mapping) that names an image; a list gives its first item."""
        for field in fields:
            found = self._image(field)
            if found is not None:
                source, alt = found
                url = urljoin(base_url, source)
                mime, _ = mimetypes.guess_type(urlsplit(url).path)
                file = local_file(source, local_dirs)
                return Image(url, alt or title, mime, local_size(file), file)
        return None

    def _image(self, field: str) -> tuple[str, str] | None:
        """The image path and alternative text ``field`` holds, if any. A mapping
        field's ``alt`` is its text; a field that is a path where a mapping was
        expected (``cover: a.png`` for ``cover.image``) is the path."""
        head, _, key = field.lower().partition(".")
        value, alt = self.meta.get(head), None
        if key and isinstance(value, Mapping):
            alt = value.get("alt")
            value = value.get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            self.warn(f"{field}: expected an image path, got {_kind(value)}; ignored")
            return None
        return value.strip(), collapse_space(alt) if isinstance(alt, str) else ""

    def listed(self) -> bool:
        """Whether Hugo lists the post: not when its build options say
        ``list: never`` or ``local`` (or ``render: never``), or it is headless."""
        if self.meta.get("headless") is True:
            return False
        options = self.meta.get("build", self.meta.get("_build"))
        if options is None:
            return True
        if not isinstance(options, Mapping):
            raise self.fail(f"build: expected {{list, render}} options, got {_kind(options)}")
        return not (
            _hugo_never(options.get("list"), ("never", "local"))
            or _hugo_never(options.get("render"), ("never",))
        )

    def link(self, key: str) -> str | None:
        value = self.text(key)
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            self.warn(f"{key}: {value!r} is not an absolute http(s) URL; ignored")
            return None
        return value


def read_text(path: Path) -> str:
    """A content file's text: UTF-8, newlines as ``\\n``, no characters XML forbids.
    Raises ``ContentError`` for a file that is empty, binary or not UTF-8."""
    label = str(path)
    raw = path.read_bytes()
    if not raw.strip():
        raise ContentError(label, "empty file")
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ContentError(label, "UTF-16 text; save the file as UTF-8")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if b"\x00" in raw:
            raise ContentError(label, "binary file, not a text post") from None
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ContentError(label, "not UTF-8 text; save the file as UTF-8", line) from None
    # YAML refuses raw control characters and XML cannot carry them: drop them
    # here so that a stray one costs nothing rather than the whole post.
    return xml_safe(text.replace("\r\n", "\n").replace("\r", "\n"))


def _published(fields: _Reader, rel_path: str) -> tuple[datetime, str | None]:
    """When the post is published, by Hugo's default [frontmatter] rules: ``date``,
    else ``publishDate`` (or ``pubdate``, ``published``), else ``lastmod`` (or
    ``modified``); a later ``publishDate`` wins, since Hugo holds the post back
    until then. Hugo's default leaves the file name alone; feedpub takes a
    ``2025-06-09-`` prefix when the front matter has no date at all, rather than
    refuse the post, and then, as Hugo's ``:filename`` date does, the rest of the
    name as the slug (returned second; None when the date is the front matter's)."""
    published = fields.first_when(DATE_KEYS)
    publish_date = fields.first_when(PUBLISH_DATE_KEYS)
    if published is not None and publish_date is not None and publish_date > published:
        return publish_date, None
    if published is not None:
        return published, None
    dated = _DATED_NAME.match(posixpath.basename(rel_path))
    try:
        day = None if dated is None else date.fromisoformat(dated[1])
    except ValueError:  # 2025-13-45-x.md
        day = None
    if dated is not None and day is not None:
        rest = posixpath.splitext(posixpath.basename(rel_path))[0][dated.end() :]
        return datetime.combine(day, time(), fields.zone), rest or None
    raise fields.fail("no date; add date: such as 2025-06-09T13:49:22Z to the front matter")


def _summary(front: str | None, title: str) -> str | None:
    """The front-matter summary, when it says more than the title does."""
    if front is None:
        return None
    if normalise_title(front) in normalise_title(title):
        return None
    return front


def read_post(
    path: Path,
    rel_path: str,
    site: SiteConfig,
    permalink: str,
    static_dir: Path | None = None,
    keep_body: bool = True,
    text: str | None = None,
    cover_fields: Sequence[str] = DEFAULT_COVER_FIELDS,
) -> tuple[Post, list[Problem]]:
    """Parse one content file. Raises ``ContentError`` when it cannot be used.

    ``static_dir`` is where root-relative cover images live, to learn their size;
    ``text`` is the file's ``read_text`` when the caller has it already;
    ``cover_fields`` are the front-matter fields tried for the cover image.
    """
    label = str(path)
    meta, body = split(read_text(path) if text is None else text, label)
    fields = _Reader(label, meta, site.timezone)
    title = fields.text("title")
    if title is None:
        raise fields.fail("no title; add title: to the front matter")
    published, name_slug = _published(fields, rel_path)
    updated = fields.first_when(LASTMOD_KEYS)
    if updated is not None and updated < published:
        fields.warn("lastmod is earlier than date; using date")
    updated = max(updated or published, published)

    meta_slug = fields.text("slug") or name_slug
    slug = post_slug(meta_slug, rel_path)
    written = fields.text("url")
    if written is not None and urlsplit(written).scheme:
        fields.warn(f"url: {written!r} is not a path on the site; ignored")
        written = None
    relative = relative_url(
        permalink, written, meta_slug, slug, title, rel_path, published, site.timezone
    )
    url = urljoin(site.url, relative)
    post = Post(
        path=label,
        rel_path=rel_path,
        id=fields.text("guid") or post_id(site.id, rel_path),
        slug=slug,
        url=url,
        title=title,
        date=published,
        updated=updated,
        draft=fields.flag("draft"),
        tags=fields.terms("tags"),
        categories=fields.terms("categories"),
        author=fields.author(site.author),
        summary=_summary(fields.text("summary") or fields.text("description"), title),
        cover=fields.cover(
            cover_fields, url, title, None if static_dir is None else (path.parent, static_dir)
        ),
        source_url=fields.link("source_url"),
        body=body if keep_body else "",
        word_count=fields.count("word_count"),
        reading_time=fields.count("reading_time"),
        extra={k: v for k, v in meta.items() if str(k).lower() not in KNOWN_KEYS},
        expires=fields.first_when(EXPIRY_DATE_KEYS),
        listed=fields.listed(),
    )
    return post, fields.warnings


def read_body(path: str) -> str:
    """The Markdown body of a file ``read_post`` accepted, without parsing its YAML
    again: builds that cache posts keep no bodies and fetch the few they render."""
    return body_of(read_text(Path(path)))
