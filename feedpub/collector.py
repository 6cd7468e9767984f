"""Scan the content folder into posts, and select the ones to publish.

``collect`` does the file I/O; ``select`` is pure: posts and ``now`` in, posts out.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from feedpub.config import ContentConfig, SiteConfig
from feedpub.content.post import read_post
from feedpub.content.text import normalise_title, term_slug
from feedpub.errors import ContentError
from feedpub.model import Post, Problem


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


def glob_pattern(pattern: str) -> re.Pattern[str]:
    """A glob over POSIX relative paths: ``**/`` spans folders, ``*`` and ``?`` do not."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def find_files(directory: Path, include: Sequence[str], exclude: Sequence[str]) -> list[str]:
    """Relative POSIX paths under ``directory`` that match, sorted; hidden entries skipped."""
    wanted = [glob_pattern(p) for p in include]
    unwanted = [glob_pattern(p) for p in exclude]
    found: list[str] = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        base = Path(root).relative_to(directory).as_posix()
        for name in files:
            if name.startswith("."):
                continue
            rel = name if base == "." else f"{base}/{name}"
            if any(p.fullmatch(rel) for p in wanted) and not any(
                p.fullmatch(rel) for p in unwanted
            ):
                found.append(rel)
    return sorted(found)


def collect(content: ContentConfig, site: SiteConfig) -> Collection:
    """Read every content file; a bad one is reported and skipped, never fatal."""
    if not content.dir.is_dir():
        problem = Problem(str(content.dir), "content folder not found (content.dir)")
        return Collection((), (problem,), 0)
    files = find_files(content.dir, content.include, content.exclude)
    posts: list[Post] = []
    problems: list[Problem] = []
    by_url: dict[str, Post] = {}
    for rel in files:
        path = content.dir / rel
        try:
            post, warnings = read_post(path, rel, site, content.permalink, content.static_dir)
        except ContentError as exc:
            problems.append(exc.problem)
            continue
        except OSError as exc:
            problems.append(Problem(str(path), f"cannot be read: {exc.strerror or exc}"))
            continue
        problems.extend(warnings)
        first = by_url.get(post.url)
        if first is not None:
            problems.append(
                Problem(
                    str(path),
                    f"permalink {post.url} is already used by {first.path}; "
                    "give one of them another slug (skipped)",
                )
            )
            continue
        by_url[post.url] = post
        posts.append(post)
    return Collection(tuple(posts), tuple(problems), len(files))


def _folded(names: Iterable[str]) -> frozenset[str]:
    return frozenset(term_slug(n) for n in names)


def _wanted(post: Post, filters: Filters) -> bool:
    tags, categories = _folded(post.tags), _folded(post.categories)
    if filters.tags and not tags & _folded(filters.tags):
        return False
    if filters.categories and not categories & _folded(filters.categories):
        return False
    return not (
        tags & _folded(filters.exclude_tags) or categories & _folded(filters.exclude_categories)
    )


def _unique_stories(posts: Iterable[Post]) -> list[Post]:
    """Drop later copies of a story: same source URL, or the same title once normalised."""
    seen: set[str] = set()
    kept: list[Post] = []
    for post in sorted(posts, key=lambda p: (p.date, p.rel_path)):
        title = normalise_title(post.title)
        keys = {"title:" + title} if title else set()
        if post.source_url:
            keys.add("source:" + post.source_url)
        if keys & seen:
            continue
        seen |= keys
        kept.append(post)
    return kept


def select(posts: Iterable[Post], now: datetime, filters: Filters = Filters()) -> list[Post]:
    """Published posts (no drafts, nothing dated after ``now``), one per story,
    filtered, newest first with ties in path order, at most ``filters.limit``."""
    published = (p for p in posts if not p.draft and p.date <= now)
    chosen = [p for p in _unique_stories(published) if _wanted(p, filters)]
    chosen.sort(key=lambda p: p.rel_path)
    chosen.sort(key=lambda p: p.date, reverse=True)
    return chosen if filters.limit is None else chosen[: filters.limit]
