"""Building the feeds, incrementally.

A build remembers, beside the state file, what it read and wrote, in three parts
(_Summary, _Shown, _Index): the files with their sizes and modification times and
each output file with a signature of what went into it; the posts the feeds show,
their rendered bodies and a digest of every file's front matter; and every file's
post. The next build takes the cheapest road that the changes allow:

- nothing changed, and no scheduled post has come due: stop after listing files;
- no file removed or renamed, no changed file with new front matter, and every
  new file a published post that changes no other post's place (see _from_last):
  take the last plans, add the new posts, render the new and changed posts they
  show and rewrite their feeds, reading nothing else;
- otherwise: read the files that changed, select and plan again, render the
  changed posts some feed shows, and regenerate the feeds whose signature changed.

The cache never changes the output: it only decides what need not be redone.
Delete it (or pass use_cache=False) and the same bytes come out.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import pickle
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from feedpub import __version__
from feedpub.collector import (
    Collection,
    ContentCounts,
    FileResult,
    Frozen,
    assemble,
    content_counts,
    freeze,
    read_files,
    read_head,
    scan,
    select,
    story_keys,
    thaw,
    worker_pool,
    worth_forking,
)
from feedpub.config import Config
from feedpub.errors import ProblemsError
from feedpub.feeds import (
    FILE_NAMES,
    RENDERERS,
    STYLESHEET_NAME,
    FeedPlan,
    FeedSpec,
    load_renderers,
    plan_feeds,
    plan_with,
)
from feedpub.model import Post, Problem, RenderedPost
from feedpub.output import (
    MANIFEST_NAME,
    SyncReport,
    read_manifest,
    remove_stale,
    write_atomic,
    write_manifest,
    writing_to,
)
from feedpub.theme import template_path

CACHE_FORMAT = 5
RENDER_IN_PARALLEL_FROM = 150
FEEDS_IN_PARALLEL_FROM = 30


@dataclass(frozen=True, slots=True)
class BuildReport:
    counts: ContentCounts
    problems: tuple[Problem, ...]
    feeds: SyncReport
    seconds: float


@dataclass
class _Summary:
    """The small part of the cache: enough to see that nothing changed."""

    stats: list[tuple[str, int, int]]
    valid_until: datetime | None
    counts: ContentCounts
    problems: tuple[Problem, ...]
    render_problems: tuple[Problem, ...]
    outputs: dict[str, tuple[str, int, int]]
    manifest: tuple[int, int] | None  # the manifest's size and modification time
    plans: str  # the generation of _Shown written with it
    covers: dict[str, int | None]  # the shown posts' local cover files and their sizes


@dataclass
class _Shown:
    """The middle part: what the feeds showed, enough to rebuild them when only
    bodies changed. Posts are plain tuples (see collector.freeze), each rendered
    body is keyed by its file's size and modification time, and every file's
    head digest tells whether its post can have changed.

    Each new set of plans is a new generation, named in the summary written
    with it: a summary and plans from different builds (one of the two writes
    lost) are never used together."""

    generation: str
    plans: list[tuple[str, FeedSpec, tuple[str, ...], str]]
    posts: dict[str, Frozen]
    rendered: dict[str, tuple[int, int, str, str, int, int]]
    heads: dict[str, bytes | None]
    urls: set[bytes]  # digests of every post's permalink
    stories: set[bytes]  # digests of every published post's story keys


@dataclass
class _Index:
    """The large part: every file's post, as plain tuples."""

    files: dict[str, tuple[int, int, Frozen]]


@dataclass(frozen=True, slots=True)
class _Selection:
    """The feeds to write, and what collecting the posts for them found."""

    plans: list[FeedPlan]
    counts: ContentCounts
    problems: tuple[Problem, ...]
    valid_until: datetime | None
    shown: dict[str, Frozen]
    heads: dict[str, bytes | None]
    urls: set[bytes]
    stories: set[bytes]
    same_plans: bool  # the last build's, taken from the cache


# The libraries whose output goes into the feeds: upgrading one starts afresh.
LIBRARIES = ("feedgen", "lxml", "markdown_it", "mdit_py_plugins", "nh3", "frontmatter", "yaml")


def _libraries() -> tuple[tuple[str, int], ...]:
    """Where each library is installed and when: found without importing them,
    and far quicker than asking importlib.metadata for their versions."""
    stamps = []
    for name in LIBRARIES:
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec is not None else None
        stamps.append((origin or name, os.stat(origin).st_mtime_ns if origin else 0))
    return tuple(stamps)


def _config_key(config: Config) -> str:
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
    )
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _cache_paths(config: Config) -> tuple[Path, Path, Path]:
    folder = config.state_path.parent.resolve()  # as _MEMORY knows them
    return (
        folder / "build-summary.pickle",
        folder / "build-shown.pickle",
        folder / "build-index.pickle",
    )


_Part = TypeVar("_Part", "_Summary", "_Shown", "_Index")

# The daemon builds again and again in one process: it keeps the cache in memory
# as well, so that its rebuilds skip reading it back from disk (by the part's
# absolute path, each with the config key it was made for),
_MEMORY: dict[Path, tuple[str, object]] = {}
# and the posts themselves, by config key, path, size and modification time.
_POSTS: dict[tuple[str, str, int, int], FileResult] = {}


def _load(path: Path, key: str, kind: type[_Part]) -> _Part | None:
    remembered = _MEMORY.get(path)
    if remembered is not None and remembered[0] == key and isinstance(remembered[1], kind):
        return remembered[1]
    try:
        with path.open("rb") as stream:
            stored_key, value = pickle.load(stream)
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError):
        return None  # missing, damaged or from another version: build without it
    return value if stored_key == key and isinstance(value, kind) else None


# The large index on disk may lag behind: its entries are checked against each
# file's size and time, so an older one only means reading a few files again.
# So may the rendered bodies, when the feeds show the same posts as before.
# A one-shot build rewrites such a part once that many entries differ from it;
# a long-lived process at most every five minutes.
INDEX_REWRITE_FROM = 50
INDEX_WRITE_INTERVAL = 300.0
_LAST_WRITE: dict[Path, float] = {}


def _save(path: Path, key: str, value: object) -> None:
    _MEMORY[path] = (key, value)
    _LAST_WRITE[path] = time.monotonic()
    # A cache that cannot be saved, or is lost in a crash, only makes the next
    # build slower: each part is checked before it is used.
    with contextlib.suppress(OSError):
        data = pickle.dumps((key, value), protocol=pickle.HIGHEST_PROTOCOL)
        write_atomic(path, data, durable=False)  # private: it holds the site's drafts


def _save_lagging(path: Path, key: str, value: object, on_disk: bool, stale: int) -> None:
    """Keep a part of the cache that may lag: in memory always, and on disk when
    it is missing there or due (see INDEX_REWRITE_FROM)."""
    if not on_disk:
        due = True
    elif path not in _MEMORY:  # the first build of this process
        due = stale >= INDEX_REWRITE_FROM
    else:
        due = time.monotonic() - _LAST_WRITE.get(path, 0.0) >= INDEX_WRITE_INTERVAL
    if due:
        _save(path, key, value)
    else:
        _MEMORY[path] = (key, value)


def _remembered(
    key: str, rel: str, stamp: tuple[int, int], known: dict[str, tuple[int, int, Frozen]]
) -> FileResult:
    """A cached file's result: from memory in a long-lived process, else from the index."""
    return _POSTS.get((key, rel, *stamp)) or thaw(rel, *known[rel][2])


def _stamp(path: Path) -> tuple[int, int] | None:
    """A file's size and modification time; None when it cannot be seen."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def _outputs_intact(root: Path, outputs: dict[str, tuple[str, int, int]]) -> bool:
    return all(_stamp(root / rel) == (size, mtime) for rel, (_, size, mtime) in outputs.items())


def _covers_unchanged(covers: dict[str, int | None]) -> bool:
    if not covers:
        return True
    from feedpub.content.post import local_size

    return all(local_size(file) == size for file, size in covers.items())


def _measure_covers(plans: Sequence[FeedPlan]) -> tuple[list[FeedPlan], dict[str, int | None]]:
    """The plans with the local cover images of the posts they show measured now.

    A post keeps its cover's size from when its file was read, and a cover can be
    replaced without touching the post: measuring the few that feeds show on every
    build keeps the feeds what a build without the cache would write."""
    from feedpub.content.post import local_size

    sizes: dict[str, int | None] = {}
    measured: dict[str, Post] = {}

    def current(post: Post) -> Post:
        cover = post.cover
        if cover is None or cover.file is None:
            return post
        if post.rel_path not in measured:
            size = sizes[cover.file] = local_size(cover.file)
            measured[post.rel_path] = (
                post if size == cover.length else replace(post, cover=replace(cover, length=size))
            )
        return measured[post.rel_path]

    return [replace(plan, posts=tuple(map(current, plan.posts))) for plan in plans], sizes


def _next_change(posts: Sequence[Post], now: datetime) -> datetime | None:
    """When the selection changes by itself: the first scheduled post comes due."""
    return min((p.date for p in posts if not p.draft and p.date > now), default=None)


# What rendering a post gives: its path, HTML, summary, word count, reading time.
Rendered = tuple[str, str, str, int, int]
# Work for forked workers, set just before the fork so that they inherit it
# instead of receiving it pickled: only an index goes to each worker.
_SHARED: Any = None


def _call_shared(function: Callable[[Any, int], Any], index: int) -> Any:
    return function(_SHARED, index)


def _forked_map(function: Callable[[Any, int], Any], shared: Any, count: int) -> list[Any]:
    """``[function(shared, i) for i in range(count)]``, over every core."""
    global _SHARED
    _SHARED = shared
    load_renderers()
    try:
        with worker_pool() as pool:
            chunk = max(1, count // 32)
            return list(pool.map(_call_shared, [function] * count, range(count), chunksize=chunk))
    finally:
        _SHARED = None


def _render_one(shared: tuple[Sequence[Post], int], index: int) -> Rendered | str:
    """Render one post; a failure comes back as its reason, never as an exception."""
    from feedpub.content.post import read_body
    from feedpub.content.render import render_post

    posts, summary_length = shared
    post = posts[index]
    try:
        done = render_post(replace(post, body=read_body(post.path)), summary_length)
    except Exception as exc:  # a bug in one post's rendering must not stop the build
        return f"could not be rendered ({exc!r}); left out"
    return post.rel_path, done.html, done.summary, done.word_count, done.reading_time


def _render_many(
    posts: Sequence[Post], summary_length: int
) -> tuple[list[Rendered], list[Problem]]:
    """Render bodies, over every core when there are many; a post that fails is
    reported and left out."""
    shared = (posts, summary_length)
    if worth_forking(len(posts), RENDER_IN_PARALLEL_FROM):
        outcomes = _forked_map(_render_one, shared, len(posts))
    else:
        outcomes = [_render_one(shared, i) for i in range(len(posts))]
    results: list[Rendered] = []
    problems: list[Problem] = []
    for post, outcome in zip(posts, outcomes, strict=True):
        if isinstance(outcome, str):
            problems.append(Problem(post.path, outcome))
        else:
            results.append(outcome)
    return results, problems


# A feed to write: its path, format, items and what it says about itself.
FeedJob = tuple[Path, str, Sequence[RenderedPost], FeedSpec]


def _write_feed(jobs: Sequence[FeedJob], index: int) -> bool:
    """Render and write one feed (in a worker: only whether it changed comes back)."""
    path, fmt, items, spec = jobs[index]
    return write_atomic(path, RENDERERS[fmt](items, spec), public=True)


def _current(
    root: Path, previous: dict[str, tuple[str, int, int]], rel: str, signature: str
) -> bool:
    """Whether the file at ``rel`` is what the last build wrote for ``signature``."""
    before = previous.get(rel)
    return before is not None and before[0] == signature and _outputs_intact(root, {rel: before})


def _still_valid(summary: _Summary, now: datetime) -> bool:
    """Whether no scheduled post has come due since the summary was written."""
    return summary.valid_until is None or now < summary.valid_until


def _digest(text: str) -> bytes:
    """A short digest for sets the cache keeps of every post: two texts that
    share one only send the build down the longer road."""
    return hashlib.blake2b(text.encode(), digest_size=8).digest()


def _from_last(
    config: Config,
    key: str,
    summary: _Summary,
    shown: _Shown,
    stats: list[tuple[str, int, int]],
    now: datetime,
) -> _Selection | None:
    """The last selection again, or grown by new posts, reading neither the index
    nor any file that did not change. That holds when no file was removed or
    renamed and no changed file has a new head (front matter), so that every post
    is as it was; and when every new file is a published post without problems
    that is no other post's story, takes no other post's permalink, and spells its
    terms as their feeds name them (see feeds.plan_with). None when that is not so."""
    existing, added = stats, []
    if len(stats) != len(summary.stats):
        known = {rel for rel, _, _ in summary.stats}
        existing = [entry for entry in stats if entry[0] in known]
        added = [entry for entry in stats if entry[0] not in known]
        if len(existing) != len(summary.stats):
            return None  # a file was removed
    # Both lists are sorted by path: a file renamed shows as a pair of paths that differ.
    pairs = [(new, old) for new, old in zip(existing, summary.stats, strict=True) if new != old]
    if any(new[0] != old[0] for new, old in pairs):
        return None
    for new, _ in pairs:
        head = read_head(config.content, new[0])
        if head is None or head != shown.heads.get(new[0]):
            return None
    frozen = dict(shown.posts)
    heads, urls, stories = shown.heads, shown.urls, shown.stories
    posts = {rel: thaw(rel, *entry).post for rel, entry in frozen.items()}
    plans = [
        FeedPlan(folder, spec, tuple(p for p in map(posts.get, rels) if p is not None), name)
        for folder, spec, rels, name in shown.plans
    ]
    fresh = read_files(config.content, config.site, [rel for rel, _, _ in added], bodies=False)
    if fresh:
        heads, urls, stories = dict(heads), set(urls), set(stories)
    for result in fresh:
        post = result.post
        if post is None or result.problems or post.draft or post.date > now:
            return None
        keys = {_digest(key) for key in story_keys(post)}
        url = _digest(post.url)
        if url in urls or keys & stories:
            return None
        grown = plan_with(plans, post, config.site, config.feeds)
        if grown is None:
            return None
        plans = grown
        urls.add(url)
        stories |= keys
        heads[post.rel_path] = result.head
        frozen[post.rel_path] = freeze(result)
    for new, old in pairs:  # the same post, now under the file's new size and time
        remembered = _POSTS.pop((key, *old), None)
        if remembered is not None:
            _POSTS[key, *new] = remembered
    for entry, result in zip(added, fresh, strict=True):
        _POSTS[key, *entry] = result
    count = len(fresh)
    counts = replace(
        summary.counts,
        files=summary.counts.files + count,
        posts=summary.counts.posts + count,
        published=summary.counts.published + count,
    )
    shown_posts = {p.rel_path: frozen[p.rel_path] for plan in plans for p in plan.posts}
    return _Selection(
        plans,
        counts,
        summary.problems,
        summary.valid_until,
        shown_posts,
        heads,
        urls,
        stories,
        same_plans=not fresh,
    )


def _everything(
    config: Config,
    now: datetime,
    stats: list[tuple[str, int, int]],
    files: dict[str, tuple[int, int]],
    key: str,
    strict: bool,
    use_cache: bool,
) -> _Selection:
    """Collect every post (reading only files the index does not hold as they
    are now), select the published ones and plan the feeds."""
    content = config.content
    index_path = _cache_paths(config)[2]
    loaded = _load(index_path, key, _Index) if use_cache else None
    known = loaded.files if loaded is not None else {}
    changed = [rel for rel, size, mtime in stats if known.get(rel, (0, 0))[:2] != (size, mtime)]
    fresh = {r.rel_path: r for r in read_files(content, config.site, changed, bodies=False)}
    results = [
        fresh[rel] if rel in fresh else _remembered(key, rel, files[rel], known) for rel in files
    ]
    _POSTS.clear()
    _POSTS.update({(key, result.rel_path, *files[result.rel_path]): result for result in results})
    collection = assemble(results, len(stats))
    if not stats and not content.dir.is_dir():
        missing = Problem(str(content.dir), "content folder not found (content.dir)")
        collection = Collection(collection.posts, (missing,), 0)
    if strict and collection.problems:
        stop = "nothing written: --strict stops on content problems"
        raise ProblemsError(collection.problems, stop)

    published = select(collection.posts, now)
    plans = plan_feeds(published, config.site, config.feeds)
    counts = content_counts(collection, now, len(published))
    frozen = {
        rel: (*files[rel], freeze(fresh[rel]) if rel in fresh else known[rel][2]) for rel in files
    }
    if use_cache:
        _save_lagging(index_path, key, _Index(frozen), loaded is not None, len(changed))
    shown = {p.rel_path: frozen[p.rel_path][2] for plan in plans for p in plan.posts}
    heads = {rel: entry[2][2] for rel, entry in frozen.items()}
    urls = {_digest(post.url) for post in collection.posts}
    candidates = (p for p in collection.posts if not p.draft and p.date <= now)
    stories = {_digest(key) for post in candidates for key in story_keys(post)}
    next_change = _next_change(collection.posts, now)
    return _Selection(
        plans, counts, collection.problems, next_change, shown, heads, urls, stories, False
    )


@dataclass(frozen=True, slots=True)
class _Written:
    report: SyncReport
    signatures: dict[str, str]
    rendered: dict[str, tuple[int, int, str, str, int, int]]
    renders: int
    render_problems: tuple[Problem, ...]


def _write_feeds(
    config: Config,
    key: str,
    plans: Sequence[FeedPlan],
    files: dict[str, tuple[int, int]],
    cached: dict[str, tuple[int, int, str, str, int, int]],
    previous: dict[str, tuple[str, int, int]],
) -> _Written:
    """Render the bodies the plans show that are not cached as they are now, and
    write each feed whose inputs changed since ``previous`` wrote it."""
    root = config.feeds.output_dir
    needed = {p.rel_path: p for plan in plans for p in plan.posts}
    rendered: dict[str, tuple[int, int, str, str, int, int]] = {}
    to_render = []
    for rel, post in needed.items():
        hit = cached.get(rel)
        if hit is not None and hit[:2] == files[rel]:
            rendered[rel] = hit
        else:
            to_render.append(post)
    done, render_problems = _render_many(to_render, config.feeds.summary_length)
    for rel, html, text, words, minutes in done:
        rendered[rel] = (*files[rel], html, text, words, minutes)

    signatures: dict[str, str] = {}
    kept: list[str] = []
    jobs: list[FeedJob] = []
    job_names: list[str] = []
    for plan in plans:
        shown = [p for p in plan.posts if p.rel_path in rendered]
        items = [RenderedPost(p, *rendered[p.rel_path][2:]) for p in shown]
        inputs = repr([(p.rel_path, *files[p.rel_path], p.cover and p.cover.length) for p in shown])
        for fmt in config.feeds.formats:
            rel = plan.folder + FILE_NAMES[fmt]
            signatures[rel] = hashlib.sha256(f"{key}\0{rel}\0{inputs}".encode()).hexdigest()
            if _current(root, previous, rel, signatures[rel]):
                kept.append(rel)
            else:
                jobs.append((root / rel, fmt, items, plan.spec))
                job_names.append(rel)
    if config.feeds.stylesheet:
        signatures[STYLESHEET_NAME] = key
    current = set(signatures)
    with writing_to(root):
        # The manifest names a file before it is written and forgets it once it
        # is removed: a build that stops half-way leaves no file of its own unlisted.
        listed = read_manifest(root)
        if not listed.issuperset(current):
            write_manifest(root, listed | current)
        if worth_forking(len(jobs), FEEDS_IN_PARALLEL_FROM):
            changed = _forked_map(_write_feed, jobs, len(jobs))
        else:
            changed = [_write_feed(jobs, i) for i in range(len(jobs))]
        if config.feeds.stylesheet:
            if _current(root, previous, STYLESHEET_NAME, key):
                kept.append(STYLESHEET_NAME)
            else:
                stylesheet = template_path(config.templates_dir, STYLESHEET_NAME)
                job_names.append(STYLESHEET_NAME)
                changed.append(
                    write_atomic(root / STYLESHEET_NAME, stylesheet.read_bytes(), public=True)
                )
        # Only files feedpub listed are removed: others in the folder are never touched.
        removed = remove_stale(root, listed - current)
        write_manifest(root, current)
    written = [rel for rel, wrote in zip(job_names, changed, strict=True) if wrote]
    unchanged = [rel for rel, wrote in zip(job_names, changed, strict=True) if not wrote]
    report = SyncReport(tuple(sorted(written)), tuple(sorted(kept + unchanged)), tuple(removed))
    return _Written(report, signatures, rendered, len(to_render), tuple(render_problems))


def build_feeds(
    config: Config, now: datetime, *, strict: bool = False, use_cache: bool = True
) -> BuildReport:
    """Collect, select and render posts, then write every feed that changed."""
    started = time.perf_counter()
    stats = scan(config.content) if config.content.dir.is_dir() else []
    key = _config_key(config)
    summary_path, shown_path, _ = _cache_paths(config)
    summary = _load(summary_path, key, _Summary) if use_cache else None
    root = config.feeds.output_dir
    usable = (
        summary is not None and _still_valid(summary, now) and not (strict and summary.problems)
    )
    if (
        summary is not None
        and usable
        and summary.stats == stats
        and _outputs_intact(root, summary.outputs)
        and _stamp(root / MANIFEST_NAME) == summary.manifest  # else the build rewrites it
        and _covers_unchanged(summary.covers)
    ):
        report = SyncReport((), tuple(sorted(summary.outputs)), ())
        problems = (*summary.problems, *summary.render_problems)
        return BuildReport(summary.counts, problems, report, time.perf_counter() - started)

    files = {rel: (size, mtime) for rel, size, mtime in stats}
    shown = _load(shown_path, key, _Shown) if use_cache else None
    selection = None
    if summary is not None and shown is not None and usable and summary.plans == shown.generation:
        selection = _from_last(config, key, summary, shown, stats, now)
    if selection is None:
        selection = _everything(config, now, stats, files, key, strict, use_cache)
    plans, covers = _measure_covers(selection.plans)
    written = _write_feeds(
        config,
        key,
        plans,
        files,
        shown.rendered if shown is not None else {},
        summary.outputs if summary is not None else {},
    )
    if use_cache:
        outputs = {}
        for rel, signature in written.signatures.items():
            stat = (root / rel).stat()
            outputs[rel] = (signature, stat.st_size, stat.st_mtime_ns)
        planned = [(p.folder, p.spec, tuple(x.rel_path for x in p.posts), p.name) for p in plans]
        kept = shown if selection.same_plans else None
        generation = kept.generation if kept is not None else os.urandom(8).hex()
        latest = _Shown(
            generation,
            planned,
            selection.shown,
            written.rendered,
            selection.heads,
            selection.urls,
            selection.stories,
        )
        # Later builds reuse the plans, so new ones are written at once; the
        # rendered bodies alone may lag.
        if kept is None:
            _save(shown_path, key, latest)
        else:
            _save_lagging(shown_path, key, latest, True, written.renders)
        _save(
            summary_path,
            key,
            _Summary(
                stats,
                selection.valid_until,
                selection.counts,
                selection.problems,
                written.render_problems,
                outputs,
                _stamp(root / MANIFEST_NAME),
                generation,
                covers,
            ),
        )
    problems = (*selection.problems, *written.render_problems)
    return BuildReport(selection.counts, problems, written.report, time.perf_counter() - started)
