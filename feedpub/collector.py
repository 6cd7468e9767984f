"""Scan the content folder into posts, and select the ones to publish.

``collect`` does the file I/O; ``select`` is pure: posts and ``now`` in, posts out.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import astuple, dataclass, fields
from datetime import datetime
from typing import Any

from feedpub.config import ContentConfig, SiteConfig
from feedpub.content.files import FileStat, find_files
from feedpub.content.text import normalise_title, term_slug
from feedpub.errors import ContentError
from feedpub.model import Author, Image, Post, Problem, Severity
from feedpub.workers import forked_map, worth_forking


@dataclass(frozen=True, slots=True)
class Collection:
    """Every usable post, and every problem met on the way."""

    posts: tuple[Post, ...]
    problems: tuple[Problem, ...]
    files: int


@dataclass(frozen=True, slots=True)
class Filters:
    """Which posts a selection keeps. Names match as terms do (see ``term_slug``)."""

    limit: int | None = None
    tags: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    exclude_tags: frozenset[str] = frozenset()
    exclude_categories: frozenset[str] = frozenset()


# Post fields stored as they are by freeze(); author and cover go as tuples after them.
POST_FIELDS = tuple(f.name for f in fields(Post) if f.name not in ("author", "cover"))
# Below this many files, starting worker processes costs more than it saves.
PARALLEL_FROM = 400


def key_digest(text: str) -> bytes:
    """A short digest for sets the build cache keeps of every post: two texts
    that share one only send the build down the longer road."""
    return hashlib.blake2b(text.encode(), digest_size=8).digest()


@dataclass(frozen=True)
class FileResult:
    """What reading one content file gave: a post, or the problems that stopped it,
    and a digest of the file's head (see content.front.head_digest): while that
    stays the same, so do the post and the problems."""

    rel_path: str
    post: Post | None
    problems: tuple[Problem, ...]
    head: bytes | None = None

    @functools.cached_property
    def keys(self) -> tuple[bytes, frozenset[bytes]]:
        """Digests of the post's permalink and of its story keys (``story_keys``),
        worked out once for as long as the result is kept (a daemon's life)."""
        if self.post is None:
            return b"", frozenset()
        stories = frozenset(key_digest(key) for key in story_keys(self.post))
        return key_digest(self.post.url), stories


@dataclass(frozen=True, slots=True)
class IndexedFile:
    """A file's result as read when the file had this size and modification time."""

    size: int
    mtime: int
    result: FileResult


# A FileResult as plain tuples (see freeze).
Frozen = tuple[tuple[Any, ...] | None, tuple[Any, ...], bytes | None]


def read_one(content: ContentConfig, site: SiteConfig, rel: str, bodies: bool = True) -> FileResult:
    # Imported here: YAML parsing only when a file is read.
    from feedpub.content.front import head_digest
    from feedpub.content.post import read_post, read_text

    path = content.dir / rel
    head = None
    try:
        text = read_text(path)
        head = head_digest(text)
        post, warnings = read_post(
            path,
            rel,
            site,
            content.permalink,
            content.static_dir,
            keep_body=bodies,
            text=text,
            cover_fields=content.cover_fields,
        )
    except ContentError as exc:
        return FileResult(rel, None, (exc.problem,), head)
    except OSError as exc:
        return FileResult(
            rel, None, (Problem(str(path), f"cannot be read: {exc.strerror or exc}"),)
        )
    return FileResult(rel, post, tuple(warnings), head)


def freeze(result: FileResult) -> Frozen:
    """A result as plain tuples, which pickle many times faster than dataclasses:
    for worker processes and the build cache."""
    post = result.post
    problems = tuple((p.path, p.message, p.line, p.severity.value) for p in result.problems)
    if post is None:
        return None, problems, result.head
    author = (post.author.name, post.author.email, post.author.uri)
    cover = None if post.cover is None else astuple(post.cover)
    row = tuple(getattr(post, name) for name in POST_FIELDS)
    return (*row, author, cover), problems, result.head


def thaw(
    rel: str, row: tuple[Any, ...] | None, problems: tuple[Any, ...], head: bytes | None
) -> FileResult:
    found = tuple(
        Problem(path, message, line, Severity(severity))
        for path, message, line, severity in problems
    )
    if row is None:
        return FileResult(rel, None, found, head)
    *values, author, cover = row
    fields = dict(zip(POST_FIELDS, values, strict=True))
    fields["author"] = Author(*author)
    fields["cover"] = None if cover is None else Image(*cover)
    return FileResult(rel, Post(**fields), found, head)


def _read_frozen(shared: tuple[ContentConfig, SiteConfig, Sequence[str], bool], at: int) -> Frozen:
    content, site, rels, bodies = shared
    return freeze(read_one(content, site, rels[at], bodies))


def read_files(
    content: ContentConfig,
    site: SiteConfig,
    rels: Sequence[str],
    *,
    bodies: bool = True,
    parallel: bool | None = None,
) -> list[FileResult]:
    """Read ``rels`` in order, over every core when there are many.

    ``bodies=False`` leaves each post's body empty: builds that render only the
    posts some feed shows fetch those bodies later (content.post.read_body).
    """
    if not worth_forking(len(rels), PARALLEL_FROM, parallel):
        return [read_one(content, site, rel, bodies) for rel in rels]
    import feedpub.content.post  # noqa: F401  (before the fork: see forked_map)

    frozen = forked_map(_read_frozen, (content, site, rels, bodies), len(rels))
    return [thaw(rel, *row) for rel, row in zip(rels, frozen, strict=True)]


def read_changed(
    content: ContentConfig,
    site: SiteConfig,
    stats: Sequence[FileStat],
    known: Mapping[str, IndexedFile],
    parallel: bool | None = None,
) -> tuple[dict[str, IndexedFile], int]:
    """Every file's result by path, in path order: from ``known`` while the file
    keeps its size and time there, else read now; and how many were read."""

    def current(rel: str, size: int, mtime: int) -> bool:
        entry = known.get(rel)
        return entry is not None and entry.size == size and entry.mtime == mtime

    stale = [stat for stat in stats if not current(*stat)]
    fresh = read_files(content, site, [rel for rel, _, _ in stale], bodies=False, parallel=parallel)
    index = {stat[0]: known[stat[0]] for stat in stats if current(*stat)}
    index.update(
        (rel, IndexedFile(size, mtime, result))
        for (rel, size, mtime), result in zip(stale, fresh, strict=True)
    )
    return {rel: index[rel] for rel, _, _ in stats}, len(stale)


def assemble(results: Sequence[FileResult], files: int) -> Collection:
    """Posts in path order; a post whose permalink is taken is reported and left out."""
    posts: list[Post] = []
    problems: list[Problem] = []
    by_url: dict[str, Post] = {}
    for result in results:
        problems.extend(result.problems)
        post = result.post
        if post is None:
            continue
        first = by_url.get(post.url)
        if first is not None:
            problems.append(
                Problem(
                    post.path,
                    f"permalink {post.url} is already used by {first.path}; "
                    "give one of them another slug (skipped)",
                )
            )
            continue
        by_url[post.url] = post
        posts.append(post)
    return Collection(tuple(posts), tuple(problems), files)


def collect(content: ContentConfig, site: SiteConfig) -> Collection:
    """Read every content file; a bad one is reported and skipped, never fatal."""
    if not content.dir.is_dir():
        problem = Problem(str(content.dir), "content folder not found (content.dir)")
        return Collection((), (problem,), 0)
    files = find_files(content.dir, content.include, content.exclude)
    return assemble(read_files(content, site, files), len(files))


@dataclass(frozen=True, slots=True)
class ContentCounts:
    """What a run found in the content folder, for its summary line."""

    files: int
    posts: int
    published: int
    drafts: int
    scheduled: int
    duplicates: int
    hidden: int = 0  # due, but expired or unlisted

    @property
    def skipped(self) -> int:
        return self.files - self.posts


def content_counts(
    collection: Collection, now: datetime, published: int | None = None
) -> ContentCounts:
    """The counts; ``published`` saves selecting again when the caller already did."""
    posts = collection.posts
    drafts = sum(p.draft for p in posts)
    scheduled = sum(not p.draft and p.date > now for p in posts)
    hidden = sum(not p.draft and p.date <= now and not live(p, now) for p in posts)
    if published is None:
        published = len(select(posts, now))
    duplicates = len(posts) - drafts - scheduled - hidden - published
    return ContentCounts(
        collection.files, len(posts), published, drafts, scheduled, duplicates, hidden
    )


def folded_terms(names: Iterable[str]) -> frozenset[str]:
    """Tag or category names as terms, folded as the term feeds fold them
    (``term_slug``): ``Machine Learning`` and ``machine-learning`` are one term."""
    return frozenset(term_slug(name) for name in names)


def _wanted(post: Post, filters: Filters) -> bool:
    tags, categories = folded_terms(post.tags), folded_terms(post.categories)
    if filters.tags and not tags & folded_terms(filters.tags):
        return False
    if filters.categories and not categories & folded_terms(filters.categories):
        return False
    return not (
        tags & folded_terms(filters.exclude_tags)
        or categories & folded_terms(filters.exclude_categories)
    )


def story_keys(post: Post) -> set[str]:
    """What makes two posts one story: the same source URL, or the same title once
    normalised."""
    title = normalise_title(post.title)
    keys = {"title:" + title} if title else set()
    if post.source_url:
        keys.add("source:" + post.source_url)
    return keys


def _unique_stories(posts: Iterable[Post]) -> list[Post]:
    """Drop later copies of a story (see story_keys)."""
    seen: set[str] = set()
    kept: list[Post] = []
    for post in sorted(posts, key=lambda p: (p.date, p.rel_path)):
        keys = story_keys(post)
        if keys & seen:
            continue
        seen |= keys
        kept.append(post)
    return kept


def live(post: Post, now: datetime) -> bool:
    """Whether the post belongs in the feeds at ``now``: not a draft, dated
    ``now`` or before, not expired by then, and listed (see ``Post.listed``)."""
    return (
        not post.draft
        and post.date <= now
        and post.listed
        and (post.expires is None or post.expires > now)
    )


def next_change(posts: Iterable[Post], now: datetime) -> datetime | None:
    """The first moment after ``now`` at which ``live`` changes its answer for
    one of ``posts``: a scheduled post comes due, or a post's expiry does. A
    build whose selection holds until then need not select again before it."""
    moments = [
        moment
        for post in posts
        if not post.draft and post.listed
        for moment in (post.date, post.expires)
        if moment is not None and moment > now
    ]
    return min(moments, default=None)


def select(posts: Iterable[Post], now: datetime, filters: Filters = Filters()) -> list[Post]:
    """Live posts (see ``live``), one per story, filtered, newest first with
    ties in path order, at most ``filters.limit``."""
    published = (p for p in posts if live(p, now))
    chosen = _unique_stories(published)
    if filters.tags or filters.categories or filters.exclude_tags or filters.exclude_categories:
        chosen = [p for p in chosen if _wanted(p, filters)]
    chosen.sort(key=lambda p: p.rel_path)
    chosen.sort(key=lambda p: p.date, reverse=True)
    return chosen if filters.limit is None else chosen[: filters.limit]
