"""What feed builds remember: named records, and the BuildCache that holds them.

The cache is in three parts beside the state file: the Summary (enough to see
that nothing changed), Shown (the posts the feeds show, their rendered bodies,
and digests of every file's head, permalink and story) and the PostIndex
(every file's post). Each part is stored with the key of everything besides
the content files that the output depends on: a part made for another key is
never used.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import pickle
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from feedpub import __version__
from feedpub.collector import ContentCounts, FileResult, Frozen, IndexedFile, freeze, thaw
from feedpub.config import Config
from feedpub.content.files import FileStat
from feedpub.feeds import STYLESHEET_NAME, FeedSpec
from feedpub.model import Problem
from feedpub.output import write_atomic
from feedpub.theme import shortcode_sources, template_path

CACHE_FORMAT = 10
# The libraries whose output goes into the feeds: upgrading one starts afresh.
LIBRARIES = ("feedgen", "lxml", "pyromark", "nh3", "frontmatter", "yaml")
# A part of the cache that may lag behind (the index; the rendered bodies when
# the plans stay the same) is rewritten by a one-shot build once that many
# entries differ from it, and by a long-lived one at most every five minutes.
INDEX_REWRITE_FROM = 50
INDEX_WRITE_INTERVAL = 300.0


class Stamp(NamedTuple):
    """A file's size and modification time (nanoseconds)."""

    size: int
    mtime: int


def stamp(path: str | Path) -> Stamp | None:
    """The file's stamp; None when it cannot be seen."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return Stamp(stat.st_size, stat.st_mtime_ns)


class OutputRecord(NamedTuple):
    """A file the last build left in the feed folder: a signature of what went
    into it, and its stamp once written."""

    signature: str
    stamp: Stamp


class RenderedBody(NamedTuple):
    """A post's rendered body, as rendered from its file at ``stamp``."""

    stamp: Stamp
    html: str
    summary: str
    word_count: int
    reading_time: int
    media_links: int


class PlannedFeed(NamedTuple):
    """A FeedPlan with its posts named by path."""

    folder: str
    spec: FeedSpec
    rels: tuple[str, ...]
    name: str


@dataclass(frozen=True, slots=True)
class Summary:
    """The small part: enough to see that nothing changed."""

    stats: tuple[FileStat, ...]
    valid_until: datetime | None  # when the first scheduled post comes due
    counts: ContentCounts
    problems: tuple[Problem, ...]
    render_problems: tuple[Problem, ...]
    outputs: Mapping[str, OutputRecord]
    manifest: Stamp | None
    plans: str  # the generation of Shown written with it
    covers: Mapping[str, int | None]  # the shown posts' local cover files and their sizes
    media_links: int  # in the posts the feeds show (see RenderedPost.media_links)


@dataclass(frozen=True, slots=True)
class Shown:
    """The middle part: what the feeds showed, and what tells whether a new or
    changed file can join them without collecting every post again.

    Each new set of plans is a new generation, named in the summary written
    with it: a summary and plans from different builds (one of the two writes
    lost) are never used together."""

    generation: str
    plans: tuple[PlannedFeed, ...]
    posts: Mapping[str, FileResult]
    rendered: Mapping[str, RenderedBody]
    heads: Mapping[str, bytes | None]  # every file's head digest
    urls: frozenset[bytes]  # digests of every post's permalink
    stories: frozenset[bytes]  # digests of every published post's story keys

    def __reduce__(self) -> tuple[Any, ...]:
        frozen = {rel: freeze(result) for rel, result in self.posts.items()}
        rest = (self.rendered, self.heads, self.urls, self.stories)
        return _thawed_shown, (self.generation, self.plans, frozen, *rest)


def _thawed_shown(
    generation: str, plans: tuple[PlannedFeed, ...], posts: dict[str, Frozen], *rest: Any
) -> Shown:
    return Shown(generation, plans, {rel: thaw(rel, *row) for rel, row in posts.items()}, *rest)


@dataclass(frozen=True, slots=True)
class PostIndex:
    """The large part: every file's result. Stored as plain tuples (see
    collector.freeze), which pickle many times faster than dataclasses."""

    files: Mapping[str, IndexedFile]

    def __reduce__(self) -> tuple[Any, ...]:
        rows = {rel: (e.size, e.mtime, freeze(e.result)) for rel, e in self.files.items()}
        return _thawed_index, (rows,)


def _thawed_index(rows: dict[str, tuple[int, int, Frozen]]) -> PostIndex:
    return PostIndex({rel: IndexedFile(s, m, thaw(rel, *row)) for rel, (s, m, row) in rows.items()})


class CachePaths(NamedTuple):
    summary: Path
    shown: Path
    post_index: Path


def cache_paths(config: Config) -> CachePaths:
    """Where the parts live: beside the state file."""
    folder = config.state.path.parent.resolve()
    return CachePaths(*(folder / f"build-{part}.pickle" for part in ("summary", "shown", "index")))


def _libraries() -> tuple[tuple[str, int], ...]:
    """Where each library is installed and when: found without importing them,
    and far quicker than asking importlib.metadata for their versions."""
    stamps = []
    for name in LIBRARIES:
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec is not None else None
        stamps.append((origin or name, os.stat(origin).st_mtime_ns if origin else 0))
    return tuple(stamps)


def config_key(config: Config) -> str:
    """Everything besides the content files that the output depends on, and
    where those files are: two copies of one site are two sites."""
    stylesheet = template_path(config.templates_dir, STYLESHEET_NAME)
    parts = (
        CACHE_FORMAT,
        __version__,
        _libraries(),
        config.site,
        config.content,
        config.content.dir.resolve(),
        config.feeds,
        stylesheet.read_bytes() if config.feeds.stylesheet else b"",
        shortcode_sources(config.templates_dir),
    )
    return hashlib.sha256(repr(parts).encode()).hexdigest()


Part = TypeVar("Part", Summary, Shown, PostIndex)


class BuildCache:
    """What builds remember, owned by whoever builds.

    A daemon keeps one for its life, so its rebuilds read nothing back; a
    one-shot build makes a new one, which reads each part from disk when first
    asked for it. Every part saved is kept in memory and written to disk
    (readable by its owner only: it holds the site's drafts), at once or, for a
    part that may lag, when due. A part that cannot be saved, or is lost in a
    crash, only makes the next build slower: each is checked before use.
    """

    def __init__(self) -> None:
        self._parts: dict[Path, tuple[str, object]] = {}
        self._synced: dict[Path, float] = {}  # when memory and disk last held the same part

    def load(self, path: Path, key: str, kind: type[Part]) -> Part | None:
        """The part stored at ``path`` for ``key``; None when there is none."""
        remembered = self._parts.get(path)
        if remembered is None:
            try:
                with path.open("rb") as stream:
                    remembered = pickle.load(stream)
            except (
                OSError,
                pickle.UnpicklingError,
                EOFError,
                ValueError,
                TypeError,
                AttributeError,
            ):
                return None  # missing, damaged or from another version
            if not (isinstance(remembered, tuple) and len(remembered) == 2):
                return None
            self._parts[path] = remembered
            self._synced[path] = time.monotonic()
        stored_key, value = remembered
        return value if stored_key == key and isinstance(value, kind) else None

    def save(self, path: Path, key: str, value: Summary | Shown | PostIndex) -> None:
        self._parts[path] = (key, value)
        self._synced[path] = time.monotonic()
        with contextlib.suppress(OSError):
            data = pickle.dumps((key, value), protocol=pickle.HIGHEST_PROTOCOL)
            write_atomic(path, data, durable=False)

    def save_lagging(
        self, path: Path, key: str, value: Shown | PostIndex, on_disk: bool, stale: int
    ) -> None:
        """Keep a part that may lag: in memory always, and on disk when it is
        missing there, when this build changed ``stale`` of its entries (see
        INDEX_REWRITE_FROM),
        or when it was last written or read INDEX_WRITE_INTERVAL ago."""
        synced = self._synced.get(path)
        due = (
            not on_disk
            or synced is None
            or stale >= INDEX_REWRITE_FROM
            or time.monotonic() - synced >= INDEX_WRITE_INTERVAL
        )
        if due:
            self.save(path, key, value)
        else:
            self._parts[path] = (key, value)
