"""Rendering a post: its shortcodes expanded, its body to sanitised HTML, and
its summary decided."""

from __future__ import annotations

from dataclasses import dataclass

from feedpub.config import Config, ContentConfig, SiteConfig
from feedpub.content.body import render_body
from feedpub.content.links import PostNames, resolve_post_link
from feedpub.content.sanitise import Resolver
from feedpub.content.shortcodes import (
    Expansion,
    ShortcodeTemplates,
    expand_shortcodes,
    front_matter,
)
from feedpub.content.text import collapse_space, trim, words_and_minutes
from feedpub.errors import RenderError
from feedpub.model import Post, RenderedPost


@dataclass(frozen=True, slots=True)
class RenderContext:
    """What rendering a body needs beyond the post, made once per build: plain
    data that pickles (the shortcode templates pickle as their folder)."""

    site: SiteConfig
    content: ContentConfig
    shortcodes: ShortcodeTemplates
    names: PostNames | None = None


def render_context(config: Config, names: PostNames | None = None) -> RenderContext:
    """The context of this site's posts; ``names`` lets a bare-name ``ref`` find
    a post anywhere (see ``links.PostNames``)."""
    return RenderContext(
        config.site, config.content, ShortcodeTemplates(config.templates_dir), names
    )


def _resolver(post: Post, context: RenderContext) -> Resolver:
    """The permalink a link or ``ref`` in ``post`` names, or None."""

    def resolve(target: str) -> str | None:
        return resolve_post_link(
            context.content, context.site, post.rel_path, target, context.names
        )

    return resolve


def expand_post(post: Post, context: RenderContext) -> Expansion:
    """The post's body with its shortcodes expanded, for ``render_post`` and for
    ``feedpub check``."""
    resolve = _resolver(post, context)

    def markdownify(markdown: str) -> str:
        return render_body(markdown, post.url, resolve=resolve).html

    return expand_shortcodes(
        post.body, front_matter(post), context.site, context.shortcodes, resolve, markdownify
    )


def render_post(
    post: Post, summary_length: int, context: RenderContext | None = None
) -> RenderedPost:
    """Expand the shortcodes, render the body and decide the summary: front
    matter, then the text before ``<!--more-->``, then the opening paragraphs
    trimmed to ``summary_length``. A shortcode template that fails is a
    RenderError. Without a ``context`` the body is plain Markdown: no shortcode
    is expanded and no link resolved to a post."""
    if context is None:
        body = render_body(post.body, post.url)
    else:
        expansion = expand_post(post, context)
        failed = [note for note in expansion.notes if note.error]
        if failed:
            raise RenderError(f"body line {failed[0].line}: {failed[0].message}")
        body = render_body(
            expansion.markdown,
            post.url,
            parts=expansion.parts,
            resolve=_resolver(post, context),
        )
    if post.summary is not None:
        summary = post.summary
    elif body.before_more:
        summary = collapse_space(body.before_more)
    elif body.paragraphs:
        summary = trim(" ".join(body.paragraphs), summary_length)
    else:
        summary = post.title
    words, minutes = (
        (0, 0)
        if post.word_count is not None and post.reading_time is not None
        else words_and_minutes(body.text)
    )
    return RenderedPost(
        post=post,
        html=body.html,
        summary=summary,
        word_count=words if post.word_count is None else post.word_count,
        reading_time=minutes if post.reading_time is None else post.reading_time,
        media_links=body.media_replaced,
    )
