"""The digest: which posts go into the next issue, and the issue rendered from
the site's templates (see templating.py) with its CSS inlined by premailer, once
per issue.

Recipient details are left as placeholders (``PLACEHOLDERS``) that mail.py fills
in per recipient, so the costly part never runs per recipient.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from premailer import Premailer

from feedpub import templating
from feedpub.collector import folded_terms
from feedpub.config import NewsletterConfig, SiteConfig
from feedpub.content.render import RenderContext, render_post
from feedpub.content.text import collapse_space, term_slug, wrap, xml_safe
from feedpub.model import Issue, Post, RenderedPost
from feedpub.theme import template_path

# Stand-ins for recipient details: plain words that survive HTML parsing and
# CSS inlining unchanged, and that no post text will contain.
PLACEHOLDERS = {
    "name": "feedpubRecipientName7c1e",
    "email": "feedpubRecipientEmail7c1e",
    "unsubscribe_url": "feedpubUnsubscribeUrl7c1e",
    "manage_url": "feedpubManageUrl7c1e",
}
TEXT_WIDTH = 72


def _wrap_filter(text: object, width: int = TEXT_WIDTH) -> str:
    return "\n".join(wrap(str(text), width))


# The readers of the whole issue: an empty set of terms stands for every post.
EVERY_POST: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class IssuePlan:
    """The posts an issue shows, and in ``covered`` the id of every new post it
    accounts for: those it shows, and the ``more`` ones it only counts, so that no
    later issue repeats them."""

    posts: tuple[Post, ...]
    covered: tuple[str, ...]

    @property
    def more(self) -> int:
        """How many covered posts the issue only counts."""
        return len(self.covered) - len(self.posts)


def plan_issue(
    published: Sequence[Post],
    included: AbstractSet[str],
    max_posts: int,
    wanted: AbstractSet[str] = EVERY_POST,
) -> IssuePlan | None:
    """The next issue for readers of the ``wanted`` terms (see ``folded_terms``; empty:
    every post): published posts (newest first) that no earlier issue included
    and that carry one of those terms as a tag or category, at most ``max_posts``
    shown; None when there is nothing for them."""
    new = [
        post
        for post in published
        if post.id not in included
        and (not wanted or not wanted.isdisjoint(folded_terms((*post.tags, *post.categories))))
    ]
    if not new:
        return None
    return IssuePlan(tuple(new[:max_posts]), tuple(post.id for post in new))


class StyleRules:
    """Stylesheets' rules as premailer writes them out, kept for every issue and
    variant inlined with them: premailer parses a stylesheet once, but writes
    its rules out again on every transform, which cost more than the rest of
    inlining. What it writes depends on the stylesheet and the settings alone,
    and inline_css always passes the same."""

    def __init__(self) -> None:
        self.rules: dict[tuple[str, int], tuple[list[Any], list[Any]]] = {}
        self.leftover: dict[int, tuple[list[Any], str]] = {}


class _Inliner(Premailer):  # type: ignore[misc]  # premailer has no type hints
    """premailer, reading and keeping the rules it writes out in ``kept``."""

    def __init__(self, html: str, kept: StyleRules, **options: Any) -> None:
        super().__init__(html, **options)
        self.kept = kept

    def _parse_style_rules(self, css_body: str, ruleset_index: int) -> tuple[list[Any], list[Any]]:
        key = (css_body, ruleset_index)
        if key not in self.kept.rules:
            self.kept.rules[key] = super()._parse_style_rules(css_body, ruleset_index)
        return self.kept.rules[key]

    def _css_rules_to_string(self, rules: list[Any]) -> str:
        """The rules left in a <style> block (``@media`` ones), written once for
        each list _parse_style_rules kept."""
        kept = self.kept.leftover.get(id(rules))
        if kept is None or kept[0] is not rules:
            kept = self.kept.leftover[id(rules)] = (rules, super()._css_rules_to_string(rules))
        return kept[1]


def inline_css(html: str, kept: StyleRules | None = None) -> str:
    """Move the CSS into style attributes, as most email clients need; the
    stylesheets' rules are read from ``kept`` when it has them, and kept there.

    ``@media`` rules (dark mode, narrow screens) cannot be inlined: premailer keeps
    them in a <style> block, and strip_important=False keeps their ``!important``,
    without which they could not override the inlined styles. premailer would
    also copy CSS widths into width/height attributes; the templates set those
    for Outlook themselves (width="552" on a fluid image), so that stays off.
    """
    return str(
        _Inliner(
            html,
            StyleRules() if kept is None else kept,
            allow_network=False,
            base_url=None,
            strip_important=False,
            disable_basic_attributes=["width", "height"],
            disable_validation=True,
            cssutils_logging_level=logging.CRITICAL,
        ).transform()
    )


def subject_line(pattern: str, **fields: object) -> str:
    """The subject, on one line: no CR, LF or other control character survives."""
    return collapse_space(xml_safe(pattern.format(**fields)))


class IssueTemplates:
    """An issue's templates and stylesheet, loaded and compiled once for every
    issue and variant rendered with them (compiling them costs more than
    rendering an issue), and the stylesheet's rules as inlining writes them."""

    def __init__(self, templates_dir: Path, name: str) -> None:
        self.name = name
        self.environment = templating.environment(templates_dir, wrap=_wrap_filter)
        css_file = template_path(templates_dir, f"{name}.css")
        self.css = css_file.read_text(encoding="utf-8") if css_file.is_file() else ""
        self.style_rules = StyleRules()


def render_issue(
    plan: IssuePlan,
    number: int,
    now: datetime,
    site: SiteConfig,
    newsletter: NewsletterConfig,
    templates: IssueTemplates,
    summary_length: int,
    rendering: RenderContext | None = None,
) -> Issue:
    """Render ``plan`` as issue ``number``: its subject, HTML with inlined CSS,
    and plain text; ``rendering`` expands the posts' shortcodes."""
    rendered: tuple[RenderedPost, ...] = tuple(
        render_post(p, summary_length, rendering) for p in plan.posts
    )
    local = now.astimezone(site.timezone)
    date = local.strftime("%Y-%m-%d")
    subject = subject_line(
        newsletter.subject,
        title=newsletter.title,
        site_title=site.title,
        number=number,
        date=date,
        lead_title=rendered[0].post.title,
    )
    context = {
        "site": site,
        "newsletter": newsletter,
        "issue": {"number": number, "date": date, "subject": subject},
        "posts": [_post_context(item, site, newsletter.content == "full") for item in rendered],
        "more": plan.more,
        "recipient": PLACEHOLDERS,
        "css": templates.css,
        "language": site.language.lower(),
    }
    html = inline_css(
        templating.render(templates.environment, f"{templates.name}.html.j2", context),
        templates.style_rules,
    )
    text = templating.render(templates.environment, f"{templates.name}.txt.j2", context)
    return Issue(number, now, subject, html, text)


def _distinct_terms(post: Post) -> list[str]:
    """The post's tags, then its categories, each term once in its first spelling:
    "Service Mesh" and "service-mesh" are one term, as the feeds count them."""
    named: dict[str, str] = {}
    for term in (*post.tags, *post.categories):
        named.setdefault(term_slug(term), term)
    return list(named.values())


def _post_context(item: RenderedPost, site: SiteConfig, full: bool) -> dict[str, Any]:
    post = item.post
    return {
        "title": post.title,
        "url": post.url,
        "date": post.date.astimezone(site.timezone).strftime("%Y-%m-%d"),
        "terms": _distinct_terms(post),
        "author": post.author.name,
        "cover": post.cover,
        "summary": item.summary,
        "html": item.html if full else None,
        "reading_time": item.reading_time,
    }
