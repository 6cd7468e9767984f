"""One content file -> one ``Post``; one ``Post`` -> one ``RenderedPost``."""

from __future__ import annotations

import codecs
import email.utils
import mimetypes
import posixpath
from collections.abc import Mapping
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit
from zoneinfo import ZoneInfo

from feedpub.config import SiteConfig
from feedpub.content.front import body_of, split
from feedpub.content.ids import post_id
from feedpub.content.media import local_file, local_size
from feedpub.content.text import (
    collapse_space,
    normalise_title,
    short_digest,
    slugify,
    xml_safe,
)
from feedpub.errors import ContentError
from feedpub.model import Author, Image, Post, Problem, Severity

KNOWN_KEYS = frozenset(
    "title date lastmod updated sync_time draft tags categories author summary description"
    " cover image source_url slug word_count reading_time guid".split()
)
# A page bundle's content file: its folder names the page (Hugo's leaf and branch bundles).
BUNDLE_INDEX = ("index", "_index")
# The suffixes of Markdown content files, which a reference to a page may leave out.
CONTENT_SUFFIXES = (".md", ".markdown")


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
        self.meta = meta
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
        value = self.meta.get("author")
        if value is None or value == "":
            return default
        if isinstance(value, str):
            return Author(collapse_space(value))
        if isinstance(value, Mapping) and isinstance(value.get("name"), str):
            email_address = value.get("email")
            return Author(
                collapse_space(value["name"]),
                email_address if isinstance(email_address, str) and email_address else None,
            )
        raise self.fail(f"author: expected a name or {{name, email}}, got {_kind(value)}")

    def cover(
        self, base_url: str, title: str, local_dirs: tuple[Path, Path] | None
    ) -> Image | None:
        value = self.meta.get("cover")
        alt: str | None = None
        if isinstance(value, Mapping):
            source, alt = value.get("image"), value.get("alt")
        elif value is None or isinstance(value, str):
            source = value or self.meta.get("image")
        else:
            raise self.fail(f"cover: expected an image path or {{image, alt}}, got {_kind(value)}")
        if not source:
            return None
        if not isinstance(source, str):
            raise self.fail(f"cover: expected an image path, got {_kind(source)}")
        source = source.strip()
        alt_text = collapse_space(alt) if isinstance(alt, str) else ""
        url = urljoin(base_url, source)
        mime, _ = mimetypes.guess_type(urlsplit(url).path)
        file = local_file(source, local_dirs)
        return Image(url, alt_text or title, mime, local_size(file), file)

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


def _slug(meta_slug: str | None, rel_path: str) -> str:
    if meta_slug:
        candidate = slugify(meta_slug)
    else:
        folder, file_name = posixpath.split(rel_path)
        stem = posixpath.splitext(file_name)[0]
        parent = posixpath.basename(folder)
        candidate = slugify(parent if stem in BUNDLE_INDEX and parent else stem)
    return candidate or "post-" + short_digest(rel_path)


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
) -> tuple[Post, list[Problem]]:
    """Parse one content file. Raises ``ContentError`` when it cannot be used.

    ``static_dir`` is where root-relative cover images live, to learn their size;
    ``text`` is the file's ``read_text`` when the caller has it already.
    """
    label = str(path)
    meta, body = split(read_text(path) if text is None else text, label)
    fields = _Reader(label, meta, site.timezone)
    title = fields.text("title")
    if title is None:
        raise fields.fail("no title; add title: to the front matter")
    published = fields.when("date")
    if published is None:
        raise fields.fail("no date; add date: such as 2025-06-09T13:49:22Z to the front matter")
    updated = fields.when("lastmod") or fields.when("updated") or fields.when("sync_time")
    if updated is not None and updated < published:
        fields.warn("lastmod is earlier than date; using date")
    updated = max(updated or published, published)

    slug = _slug(fields.text("slug"), rel_path)
    local = published.astimezone(site.timezone)
    relative_url = permalink.format(
        slug=quote(slug, safe=""),
        year=f"{local.year:04d}",
        month=f"{local.month:02d}",
        day=f"{local.day:02d}",
    )
    url = urljoin(site.url, relative_url)
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
        cover=fields.cover(url, title, None if static_dir is None else (path.parent, static_dir)),
        source_url=fields.link("source_url"),
        body=body if keep_body else "",
        word_count=fields.count("word_count"),
        reading_time=fields.count("reading_time"),
        extra={k: v for k, v in meta.items() if k not in KNOWN_KEYS},
    )
    return post, fields.warnings


def read_body(path: str) -> str:
    """The Markdown body of a file ``read_post`` accepted, without parsing its YAML
    again: builds that cache posts keep no bodies and fetch the few they render."""
    return body_of(read_text(Path(path)))
