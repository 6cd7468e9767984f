"""Rendering a post: its body to sanitised HTML, and its summary decided."""

from __future__ import annotations

from feedpub.content.body import render_body
from feedpub.content.text import collapse_space, short_digest, trim, words_and_minutes
from feedpub.model import Post, RenderedPost


def render_post(post: Post, summary_length: int) -> RenderedPost:
    """Render the body and decide the summary: front matter, then the text before
    ``<!--more-->``, then the opening paragraphs trimmed to ``summary_length``."""
    body = render_body(post.body, post.url, short_digest(post.url))
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
    )
