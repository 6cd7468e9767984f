"""Building the feeds, incrementally.

A build lists the content files and asks decide() which road to take, given
what the last build left in the BuildCache (see feedpub.buildcache):

- Unchanged: nothing changed, and no scheduled post has come due: stop there;
- Grow: no file removed or renamed: read the changed and new files; when every
  changed file kept its head (front matter) and every new file is a published
  post that takes no other post's place (see _grown), select and plan again
  from the posts the feeds showed and the new ones, reading no other file;
- Full (or a Grow that the files read do not allow): collect every post,
  reading only files the index does not hold as they are now, and select and
  plan them all.

Then it renders the posts the feeds show that are not cached as they are now,
and writes each feed whose inputs changed. The cache never changes the output:
it only decides what need not be redone. Build without it (cache None) and the
same bytes come out.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from feedpub.buildcache import (
    BuildCache,
    OutputRecord,
    PlannedFeed,
    PostIndex,
    Shown,
    Stamp,
    Summary,
    cache_paths,
    config_key,
    stamp,
)
from feedpub.collector import (
    Collection,
    ContentCounts,
    FileResult,
    IndexedFile,
    assemble,
    content_counts,
    live,
    next_change,
    read_changed,
    read_files,
    select,
)
from feedpub.config import Config
from feedpub.content.files import FileStat, scan
from feedpub.content.media import local_size
from feedpub.decide import Grow, Observed, Unchanged, decide
from feedpub.errors import ProblemsError
from feedpub.feeds import FeedPlan, plan_feeds, terms_of
from feedpub.feedwriter import Written, write_feeds
from feedpub.model import Post, Problem
from feedpub.output import MANIFEST_NAME, SyncReport


@dataclass(frozen=True, slots=True)
class BuildReport:
    counts: ContentCounts
    problems: tuple[Problem, ...]
    feeds: SyncReport
    seconds: float
    media_links: int = 0  # videos, sounds and frames the feeds show as links


@dataclass(frozen=True, slots=True)
class Selection:
    """The feeds to write, and what collecting the posts for them found."""

    plans: list[FeedPlan]
    counts: ContentCounts
    problems: tuple[Problem, ...]
    valid_until: datetime | None
    shown: dict[str, FileResult]
    heads: Mapping[str, bytes | None]
    urls: frozenset[bytes]
    stories: frozenset[bytes]
    same_plans: bool  # the last build's: its generation is kept


def _measure_covers(plans: Sequence[FeedPlan]) -> tuple[list[FeedPlan], dict[str, int | None]]:
    """The plans with the local cover images of the posts they show measured now.

    A post keeps its cover's size from when its file was read, and a cover can be
    replaced without touching the post: measuring the few that feeds show on every
    build keeps the feeds what a build without the cache would write."""
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


def _observe(
    root: Path, previous: Summary | None, files: tuple[FileStat, ...], strict: bool
) -> Observed:
    """What decide() needs to see: the last build's outputs and covers as they are now."""
    if previous is None:
        return Observed(files, {}, None, {}, strict)
    folder = str(root)  # joined as strings: a site may have thousands of feeds
    outputs = {rel: stamp(os.path.join(folder, rel)) for rel in previous.outputs}
    covers = {file: local_size(file) for file in previous.covers}
    return Observed(files, outputs, stamp(root / MANIFEST_NAME), covers, strict)


def _grown(
    config: Config,
    previous: Summary,
    shown: Shown,
    road: Grow,
    fresh: Mapping[str, FileResult],
    now: datetime,
) -> Selection | None:
    """The last selection with the new posts added, selected and planned from the
    posts the feeds showed and the new ones alone. That gives what selecting every
    post gives when each changed file kept its head, so that its post is as it
    was, and each new file is a published post without problems that is no other
    post's story, takes no other post's permalink, and spells its terms as their
    feeds name them (a name goes by what all the term's posts say). None when
    that is not so."""
    if any(
        fresh[rel].head is None or fresh[rel].head != shown.heads.get(rel) for rel in road.changed
    ):
        return None
    names = {plan.folder: plan.name for plan in shown.plans if plan.name}
    posts, heads = dict(shown.posts), dict(shown.heads)
    urls, stories = set(shown.urls), set(shown.stories)
    added_posts: list[Post] = []
    for rel in road.added:
        result, post = fresh[rel], fresh[rel].post
        if post is None or result.problems or not live(post, now):
            return None
        url, keys = result.keys
        if url in urls or keys & stories:
            return None
        for taxonomy in config.feeds.taxonomies:
            for slug, name in terms_of(post, taxonomy).items():
                if names.get(f"{taxonomy}/{slug}/", name) != name:
                    return None
        urls.add(url)
        stories |= keys
        added_posts.append(post)
        heads[rel] = result.head
        posts[rel] = result
    published = select((r.post for r in posts.values() if r.post is not None), now)
    plans = plan_feeds(published, config.site, config.feeds, names)
    added = len(road.added)
    counts = replace(
        previous.counts,
        files=previous.counts.files + added,
        posts=previous.counts.posts + added,
        published=previous.counts.published + added,
    )
    return Selection(
        plans,
        counts,
        previous.problems,
        min(
            (m for m in (previous.valid_until, next_change(added_posts, now)) if m is not None),
            default=None,
        ),
        {p.rel_path: posts[p.rel_path] for plan in plans for p in plan.posts},
        heads,
        frozenset(urls),
        frozenset(stories),
        same_plans=not road.added,
    )


def _collected(
    config: Config,
    cache: BuildCache | None,
    key: str,
    stats: Sequence[FileStat],
    fresh: Mapping[str, FileResult],
    strict: bool,
    now: datetime,
    parallel: bool | None,
) -> Selection:
    """Collect every post (reading only files that neither the index nor
    ``fresh``, read by this build already, hold as they are now), select the
    published ones and plan the feeds."""
    content = config.content
    path = cache_paths(config).post_index
    loaded = cache.load(path, key, PostIndex) if cache is not None else None
    known = dict(loaded.files) if loaded is not None else {}
    known.update(
        (rel, IndexedFile(size, mtime, fresh[rel])) for rel, size, mtime in stats if rel in fresh
    )
    index, read = read_changed(content, config.site, stats, known, parallel)
    collection = assemble([entry.result for entry in index.values()], len(stats))
    if not stats and not content.dir.is_dir():
        missing = Problem(str(content.dir), "content folder not found (content.dir)")
        collection = Collection(collection.posts, (missing,), 0)
    if strict and collection.problems:
        raise ProblemsError(
            collection.problems, "nothing written: --strict stops on content problems"
        )
    if cache is not None:
        cache.save_lagging(path, key, PostIndex(index), loaded is not None, read + len(fresh))

    published = select(collection.posts, now)
    plans = plan_feeds(published, config.site, config.feeds)
    results = [index[post.rel_path].result for post in collection.posts]
    return Selection(
        plans,
        content_counts(collection, now, len(published)),
        collection.problems,
        next_change(collection.posts, now),
        {p.rel_path: index[p.rel_path].result for plan in plans for p in plan.posts},
        {rel: entry.result.head for rel, entry in index.items()},
        frozenset(result.keys[0] for result in results),
        frozenset(
            key
            for post, result in zip(collection.posts, results, strict=True)
            if not post.draft and post.date <= now
            for key in result.keys[1]
        ),
        same_plans=False,
    )


def build_feeds(
    config: Config,
    now: datetime,
    cache: BuildCache | None,
    *,
    strict: bool = False,
    parallel: bool | None = None,
) -> BuildReport:
    """Collect, select and render posts, then write every feed that changed.

    ``cache`` None builds from nothing and remembers nothing. ``parallel`` True
    or False forks worker processes or not whatever the amount of work."""
    started = time.perf_counter()
    stats = scan(config.content) if config.content.dir.is_dir() else ()
    key = config_key(config)
    paths = cache_paths(config)
    root = config.feeds.output_dir
    previous = cache.load(paths.summary, key, Summary) if cache is not None else None
    road = decide(previous, _observe(root, previous, stats, strict), now)
    if isinstance(road, Unchanged) and previous is not None:
        report = SyncReport((), tuple(sorted(previous.outputs)), ())
        problems = (*previous.problems, *previous.render_problems)
        seconds = time.perf_counter() - started
        return BuildReport(previous.counts, problems, report, seconds, previous.media_links)

    shown = cache.load(paths.shown, key, Shown) if cache is not None else None
    selection, fresh = None, {}
    same_build = previous is not None and shown is not None and shown.generation == previous.plans
    if isinstance(road, Grow) and same_build and previous is not None and shown is not None:
        rels = [*road.changed, *road.added]
        read = read_files(config.content, config.site, rels, bodies=False, parallel=parallel)
        fresh = {result.rel_path: result for result in read}
        selection = _grown(config, previous, shown, road, fresh, now)
    if selection is None:
        selection = _collected(config, cache, key, stats, fresh, strict, now, parallel)
    plans, covers = _measure_covers(selection.plans)
    files = {rel: Stamp(size, mtime) for rel, size, mtime in stats}
    written = write_feeds(
        config,
        key,
        plans,
        files,
        shown.rendered if shown is not None else {},
        previous.outputs if previous is not None else {},
        parallel,
    )
    if cache is not None:
        kept = shown if selection.same_plans else None
        generation = kept.generation if kept is not None else os.urandom(8).hex()
        latest = _shown(generation, selection, plans, written)
        if kept is None:  # later builds reuse the plans: new ones are written at once
            cache.save(paths.shown, key, latest)
        else:  # the rendered bodies alone may lag
            cache.save_lagging(paths.shown, key, latest, True, written.renders)
        _remember(cache, config, key, stats, selection, covers, written, generation)
    problems = (*selection.problems, *written.render_problems)
    seconds = time.perf_counter() - started
    return BuildReport(selection.counts, problems, written.report, seconds, written.media_links)


def _shown(
    generation: str, selection: Selection, plans: Sequence[FeedPlan], written: Written
) -> Shown:
    planned = tuple(
        PlannedFeed(p.folder, p.spec, tuple(x.rel_path for x in p.posts), p.name) for p in plans
    )
    return Shown(
        generation,
        planned,
        selection.shown,
        written.rendered,
        selection.heads,
        selection.urls,
        selection.stories,
    )


def _remember(
    cache: BuildCache,
    config: Config,
    key: str,
    stats: tuple[FileStat, ...],
    selection: Selection,
    covers: dict[str, int | None],
    written: Written,
    generation: str,
) -> None:
    """Save the summary of this build: what the next one compares with."""
    root = config.feeds.output_dir
    outputs = {}
    for rel, signature in written.signatures.items():
        stat = (root / rel).stat()
        outputs[rel] = OutputRecord(signature, Stamp(stat.st_size, stat.st_mtime_ns))
    summary = Summary(
        stats,
        selection.valid_until,
        selection.counts,
        selection.problems,
        written.render_problems,
        outputs,
        stamp(root / MANIFEST_NAME),
        generation,
        covers,
        written.media_links,
    )
    cache.save(cache_paths(config).summary, key, summary)
