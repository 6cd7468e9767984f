"""Rendering the posts planned feeds show, and writing the feeds whose inputs changed."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from feedpub.buildcache import OutputRecord, RenderedBody, Stamp, stamp
from feedpub.config import Config
from feedpub.feeds import FILE_NAMES, RENDERERS, STYLESHEET_NAME, FeedPlan, FeedSpec, load_renderers
from feedpub.model import Post, Problem, RenderedPost
from feedpub.output import (
    SyncReport,
    read_manifest,
    remove_stale,
    write_atomic,
    write_manifest,
    writing_to,
)
from feedpub.theme import template_path
from feedpub.workers import forked_map, worth_forking

if TYPE_CHECKING:
    from feedpub.content.render import RenderContext

RENDER_IN_PARALLEL_FROM = 150
FEEDS_IN_PARALLEL_FROM = 30


class FeedJob(NamedTuple):
    """A feed to write: where, in which format, its items and what it says about itself."""

    path: Path
    fmt: str
    items: Sequence[RenderedPost]
    spec: FeedSpec


@dataclass(frozen=True, slots=True)
class Written:
    """What writing the feeds did, and what the cache keeps of it."""

    report: SyncReport
    signatures: dict[str, str]  # by output file: what went into it
    rendered: dict[str, RenderedBody]
    renders: int  # how many bodies were rendered now
    render_problems: tuple[Problem, ...]

    @property
    def media_links(self) -> int:
        return sum(body.media_links for body in self.rendered.values())


def _render_one(
    shared: tuple[Sequence[Post], Mapping[str, Stamp], int, RenderContext], index: int
) -> RenderedBody | str:
    """Render one post; a failure comes back as its reason, never as an exception."""
    from feedpub.content.post import read_body
    from feedpub.content.render import render_post

    posts, files, summary_length, context = shared
    post = posts[index]
    try:
        done = render_post(replace(post, body=read_body(post.path)), summary_length, context)
    except Exception as exc:  # a bug in one post's rendering must not stop the build
        return f"could not be rendered ({exc!r}); left out"
    return RenderedBody(
        files[post.rel_path],
        done.html,
        done.summary,
        done.word_count,
        done.reading_time,
        done.media_links,
    )


def _render_many(
    posts: Sequence[Post], files: Mapping[str, Stamp], config: Config, parallel: bool | None
) -> tuple[dict[str, RenderedBody], list[Problem]]:
    """Render bodies, over every core when there are many; a post that fails is
    reported and left out. ``files`` lists every content file, for the bare
    names a ``ref`` may use."""
    if not posts:
        return {}, []
    from feedpub.content.links import PostNames
    from feedpub.content.render import render_context

    shared = (posts, files, config.feeds.summary_length, render_context(config, PostNames(files)))
    if worth_forking(len(posts), RENDER_IN_PARALLEL_FROM, parallel):
        import feedpub.content.post
        import feedpub.content.render  # noqa: F401  (before the fork: see forked_map)

        outcomes = forked_map(_render_one, shared, len(posts))
    else:
        outcomes = [_render_one(shared, i) for i in range(len(posts))]
    results: dict[str, RenderedBody] = {}
    problems: list[Problem] = []
    for post, outcome in zip(posts, outcomes, strict=True):
        if isinstance(outcome, str):
            problems.append(Problem(post.path, outcome))
        else:
            results[post.rel_path] = outcome
    return results, problems


def _write_feed(jobs: Sequence[FeedJob], index: int) -> bool:
    """Render and write one feed (in a worker: only whether it changed comes back)."""
    job = jobs[index]
    return write_atomic(job.path, RENDERERS[job.fmt](job.items, job.spec), public=True)


def _current(root: Path, previous: Mapping[str, OutputRecord], rel: str, signature: str) -> bool:
    """Whether the file at ``rel`` is what the last build wrote for ``signature``."""
    before = previous.get(rel)
    return (
        before is not None and before.signature == signature and stamp(root / rel) == before.stamp
    )


def write_feeds(
    config: Config,
    key: str,
    plans: Sequence[FeedPlan],
    files: Mapping[str, Stamp],
    cached: Mapping[str, RenderedBody],
    previous: Mapping[str, OutputRecord],
    parallel: bool | None = None,
) -> Written:
    """Render the bodies the plans show that are not cached as their files are
    now, and write each feed whose inputs changed since ``previous`` wrote it."""
    root = config.feeds.output_dir
    needed = {p.rel_path: p for plan in plans for p in plan.posts}
    rendered: dict[str, RenderedBody] = {}
    to_render = []
    for rel, post in needed.items():
        hit = cached.get(rel)
        if hit is not None and hit.stamp == files[rel]:
            rendered[rel] = hit
        else:
            to_render.append(post)
    done, render_problems = _render_many(to_render, files, config, parallel)
    rendered.update(done)

    signatures: dict[str, str] = {}
    kept: list[str] = []
    jobs: list[FeedJob] = []
    for plan in plans:
        shown = [p for p in plan.posts if p.rel_path in rendered]
        items = [RenderedPost(p, *rendered[p.rel_path][1:]) for p in shown]
        inputs = repr([(p.rel_path, *files[p.rel_path], p.cover and p.cover.length) for p in shown])
        for fmt in config.feeds.formats:
            rel = plan.folder + FILE_NAMES[fmt]
            signatures[rel] = hashlib.sha256(f"{key}\0{rel}\0{inputs}".encode()).hexdigest()
            if _current(root, previous, rel, signatures[rel]):
                kept.append(rel)
            else:
                jobs.append(FeedJob(root / rel, fmt, items, plan.spec))
    job_names = [job.path.relative_to(root).as_posix() for job in jobs]
    if config.feeds.stylesheet:
        signatures[STYLESHEET_NAME] = key
    current = set(signatures)
    terms = {plan.folder: plan.name for plan in plans if plan.folder}
    with writing_to(root):
        # The manifest names a file before it is written and forgets it once it
        # is removed: a build that stops half-way leaves no file of its own unlisted.
        listed = read_manifest(root).files
        if not listed.issuperset(current):
            write_manifest(root, listed | current, terms)
        if worth_forking(len(jobs), FEEDS_IN_PARALLEL_FROM, parallel):
            load_renderers()  # before the fork: see forked_map
            changed = forked_map(_write_feed, jobs, len(jobs))
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
        write_manifest(root, current, terms)
    written = [rel for rel, wrote in zip(job_names, changed, strict=True) if wrote]
    unchanged = [rel for rel, wrote in zip(job_names, changed, strict=True) if not wrote]
    report = SyncReport(tuple(sorted(written)), tuple(sorted(kept + unchanged)), tuple(removed))
    return Written(report, signatures, rendered, len(to_render), tuple(render_problems))
