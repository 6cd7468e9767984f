"""Rendering a post: its body to sanitised HTML, and its summary decided."""

from __future__ import annotations

from feedpub.content.body import render_body
from feedpub.content.text import collapse_space, count_words, reading_minutes, short_digest, trim
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
    return RenderedPost(
        post=post,
        html=body.html,
        summary=summary,
        word_count=post.word_count if post.word_count is not None else count_words(body.text),
        reading_time=post.reading_time
        if post.reading_time is not None
        else reading_minutes(body.text),
    )
