"""Compose the stages: the CLI and the scheduler call these, nothing else."""

from __future__ import annotations

import time
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime

from feedpub.collector import Collection, collect, select
from feedpub.config import Config
from feedpub.content.post import render_post
from feedpub.digest import plan_issue, render_issue
from feedpub.errors import ProblemsError
from feedpub.feeds import FILE_NAMES, RENDERERS, STYLESHEET_NAME, plan_feeds
from feedpub.model import Issue, Post, Problem, RenderedPost
from feedpub.output import SyncReport, sync_outputs
from feedpub.theme import template_path

# Files a build owns in the output folder; it removes those it no longer makes.
MANAGED_FILES = frozenset({*FILE_NAMES.values(), STYLESHEET_NAME})


@dataclass(frozen=True, slots=True)
class BuildReport:
    collection: Collection
    published: int
    problems: tuple[Problem, ...]
    feeds: SyncReport
    seconds: float


def _render_all(
    posts: list[Post], summary_length: int
) -> tuple[dict[str, RenderedPost], list[Problem]]:
    """Render each post once; one that fails is reported and left out, never fatal."""
    rendered: dict[str, RenderedPost] = {}
    problems: list[Problem] = []
    for post in posts:
        if post.rel_path in rendered:
            continue
        try:
            rendered[post.rel_path] = render_post(post, summary_length)
        except Exception as exc:  # a bug in one post's rendering must not stop the build
            problems.append(Problem(str(post.path), f"could not be rendered ({exc!r}); left out"))
    return rendered, problems


def build_feeds(config: Config, now: datetime, *, strict: bool = False) -> BuildReport:
    """Collect, select and render posts, then write every feed that changed."""
    started = time.perf_counter()
    collection = collect(config.content, config.site)
    if strict and collection.problems:
        raise ProblemsError(
            collection.problems, "nothing written: --strict stops on content problems"
        )
    published = select(collection.posts, now)
    plans = plan_feeds(published, config.site, config.feeds)
    rendered, problems = _render_all(
        [p for plan in plans for p in plan.posts], config.feeds.summary_length
    )
    outputs: dict[str, bytes] = {}
    for plan in plans:
        items = [rendered[p.rel_path] for p in plan.posts if p.rel_path in rendered]
        for fmt in config.feeds.formats:
            outputs[plan.folder + FILE_NAMES[fmt]] = RENDERERS[fmt](items, plan.spec)
    if config.feeds.stylesheet:
        outputs[STYLESHEET_NAME] = template_path(config.templates_dir, STYLESHEET_NAME).read_bytes()
    report = sync_outputs(config.feeds.output_dir, outputs, MANAGED_FILES)
    return BuildReport(
        collection=collection,
        published=len(published),
        problems=(*collection.problems, *problems),
        feeds=report,
        seconds=time.perf_counter() - started,
    )


@dataclass(frozen=True, slots=True)
class DigestDraft:
    """The next issue (None when no post is new) and what reading the content met."""

    issue: Issue | None
    collection: Collection


def compose_digest(
    config: Config, now: datetime, included: AbstractSet[str], number: int
) -> DigestDraft:
    """Collect and select posts, and render issue ``number`` from those not in ``included``."""
    newsletter = config.require_newsletter()
    collection = collect(config.content, config.site)
    plan = plan_issue(select(collection.posts, now), included, newsletter.max_posts)
    if plan is None:
        return DigestDraft(None, collection)
    issue = render_issue(
        plan,
        number,
        now,
        config.site,
        newsletter,
        config.templates_dir,
        config.feeds.summary_length,
    )
    return DigestDraft(issue, collection)
