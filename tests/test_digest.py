from __future__ import annotations

import email
import shutil
from dataclasses import replace
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from lxml import html as lxml_html

from feedpub.collector import collect, folded_terms, select
from feedpub.config import Config, load_config
from feedpub.content.text import display_width
from feedpub.digest import PLACEHOLDERS, IssuePlan, IssueTemplates, plan_issue, render_issue
from feedpub.errors import ConfigError, RenderError
from feedpub.feeds import plan_feeds
from feedpub.mail import SMTP_POLICY, build_message, personalise
from feedpub.model import Issue, Post, Recipient
from feedpub.pipeline import compose_digest
from tests.conftest import NOW, REPO

GOLDEN = Path(__file__).parent / "golden" / "digest"
ADA = Recipient("ada@example.net", "Ada Lovelace", "tok-ada-0123456789abcdef0123456789abcdef")


def _parse(message: EmailMessage) -> EmailMessage:
    parsed = email.message_from_bytes(message.as_bytes(), policy=SMTP_POLICY)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _part(message: EmailMessage, kind: str) -> str:
    """A part's text as a reader sees it (the wire form has CRLF line ends)."""
    part = message.get_body((kind,))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def _html(message: EmailMessage) -> str:
    return _part(message, "html")


def _text(message: EmailMessage) -> str:
    return _part(message, "plain")


# Composition is pure: posts and the ids already sent in, a plan out.


def _posts(config: Config) -> list[Post]:
    return select(collect(config.content, config.site).posts, NOW)


def test_plan_takes_only_posts_no_issue_included(config: Config) -> None:
    posts = _posts(config)
    first = plan_issue(posts, frozenset(), 4)
    assert first is not None
    assert [p.title for p in first.posts] == [p.title for p in posts[:4]]
    assert first.more == 2 and len(first.covered) == 6
    assert plan_issue(posts, frozenset(first.covered), 4) is None


def test_a_late_post_with_an_old_date_is_not_lost(config: Config) -> None:
    posts = _posts(config)
    sent = frozenset(p.id for p in posts[1:])
    late = replace(posts[0], id="urn:uuid:late", date=NOW - timedelta(days=400))
    plan = plan_issue([*posts[1:], late], sent, 10)
    assert plan is not None and [p.id for p in plan.posts] == ["urn:uuid:late"]


def test_a_variant_takes_the_posts_of_its_term_feeds(config: Config) -> None:
    """A subscriber's tags pick posts by the rule that fills the term feeds."""
    posts = _posts(config)
    feeds = replace(config.feeds, limit=len(posts), taxonomies=("tags", "categories"))
    members: dict[str, set[str]] = {}
    for plan in plan_feeds(posts, config.site, feeds)[1:]:
        slug = plan.folder.strip("/").split("/")[1]
        assert folded_terms([plan.name]) == {slug}
        members.setdefault(slug, set()).update(p.id for p in plan.posts)
    assert len(members) > 5
    for slug, ids in members.items():
        variant = plan_issue(posts, frozenset(), len(posts), {slug})
        assert variant is not None and set(variant.covered) == ids, slug


def test_a_variant_matches_tags_and_categories_in_any_spelling(config: Config) -> None:
    posts = _posts(config)
    wanted = folded_terms(["machine learning", "ai news"])
    plan = plan_issue(posts, frozenset(), 1, wanted)
    assert plan is not None
    shown = [p.title for p in posts if {"Machine Learning", "AI News"} & {*p.tags, *p.categories}]
    assert [p.title for p in plan.posts] == shown[:1] and plan.more == len(shown) - 1
    assert plan_issue(posts, frozenset(plan.covered), 1, wanted) is None
    assert plan_issue(posts, frozenset(), 1, folded_terms(["Robotics"])) is None


# The rendered issue and the message built from it.


def test_html_is_inlined_once_and_personalised_after(config: Config, issue: Issue) -> None:
    html = _html(build_message(issue, ADA, config.newsletter))  # type: ignore[arg-type]
    values = {
        "name": "Ada Lovelace",
        "email": ADA.email,
        "unsubscribe_url": f"https://example.org/newsletter/unsubscribe/{ADA.token}",
        "manage_url": f"https://example.org/newsletter/manage/{ADA.token}",
    }
    # The message holds the issue's already-inlined HTML with only the recipient filled in.
    assert html == personalise(issue.html, values, markup=True)
    assert all(p not in html for p in PLACEHOLDERS.values())
    assert 'style="' in html and "Ada Lovelace" in html and values["unsubscribe_url"] in html


def test_html_design_rules(config: Config, issue: Issue) -> None:
    html = _html(build_message(issue, ADA, config.newsletter))  # type: ignore[arg-type]
    doc = lxml_html.document_fromstring(html)
    style = doc.find("head/style")
    assert style is not None and "@media (prefers-color-scheme: dark)" in (style.text or "")
    assert "!important" in (style.text or "")
    assert "@media screen and (max-width: 620px)" in (style.text or "")
    container = doc.find_class("container")[0]
    assert container.tag == "table" and container.get("width") == "600"
    assert "max-width:600px" in container.get("style", "").replace(" ", "")
    for link in doc.iter("a"):
        assert link.get("href", "").startswith(("https://", "mailto:"))
    covers = doc.find_class("cover")
    assert covers and all(
        img.get("alt") and img.get("width") == "552" and img.get("src", "").startswith("https://")
        for img in covers
    )
    assert (
        doc.find_class("preheader")[0].text_content().startswith("微软将为云客户评定AI模型安全等级")
    )
    footer = doc.find_class("footer")[0].text_content()
    assert "ada@example.net" in footer and "AI News Digest, 1 Example Road" in footer
    assert "退订" in footer and "管理订阅" in footer
    assert "微软" in html and "&#" not in html  # CJK stays UTF-8, never entities


def test_text_part_is_readable_and_lists_links(config: Config, issue: Issue) -> None:
    text = _text(build_message(issue, ADA, config.newsletter))  # type: ignore[arg-type]
    assert "<" not in text.replace("<!--", "")
    for line in text.splitlines():
        assert display_width(line) <= 78 or line.split()[-1].startswith("https://")
    assert "[1] https://example.org/posts/microsoft-ai-safety-ranking/" in text
    assert f"退订: https://example.org/newsletter/unsubscribe/{ADA.token}" in text
    assert "Ada Lovelace，你好：" in text


def _templates(config: Config) -> IssueTemplates:
    assert config.newsletter is not None
    return IssueTemplates(config.templates_dir, config.newsletter.template)


def test_a_hostile_title_is_escaped_and_cannot_inject_headers(config: Config) -> None:
    hostile = replace(
        _posts(config)[0], title='<script>alert("x")</script>\r\nBcc: victim@example.com'
    )
    plan = IssuePlan((hostile,), (hostile.id,))
    bad = render_issue(plan, 7, NOW, config.site, config.newsletter, _templates(config), 70)  # type: ignore[arg-type]
    message = _parse(build_message(bad, ADA, config.newsletter))  # type: ignore[arg-type]
    assert message["Bcc"] is None
    assert "\n" not in message["Subject"] and "Bcc: victim" in message["Subject"]
    html = _html(message)
    assert lxml_html.document_fromstring(html).find(".//body//script") is None
    assert "&lt;script&gt;" in html
    assert '<script>alert("x")</script>' in _text(message)


def test_a_hostile_summary_is_escaped(config: Config) -> None:
    post = replace(_posts(config)[0], summary='<img src=x onerror="steal()"> & more')
    plan = IssuePlan((post,), (post.id,))
    bad = render_issue(plan, 7, NOW, config.site, config.newsletter, _templates(config), 70)  # type: ignore[arg-type]
    assert "onerror=" not in bad.html.replace("&quot;", '"').split("&lt;img")[0]
    assert "&lt;img src=x onerror=" in bad.html


def test_a_term_spelt_two_ways_is_named_once(config: Config) -> None:
    post = replace(
        _posts(config)[0], tags=("Service Mesh", "Istio"), categories=("service-mesh", "Cloud")
    )
    plan = IssuePlan((post,), (post.id,))
    issue = render_issue(plan, 7, NOW, config.site, config.newsletter, _templates(config), 70)  # type: ignore[arg-type]
    assert " · Service Mesh · Istio · Cloud" in issue.text
    assert "service-mesh" not in issue.text and "service-mesh" not in issue.html


def test_an_issue_of_default_size_stays_under_gmails_clip(tmp_path: Path, config: Config) -> None:
    content = tmp_path / "content"
    content.mkdir()
    words = " ".join(["lorem ipsum dolor sit amet"] * 40)
    for i in range(30):
        (content / f"p{i:02}.md").write_text(
            f'---\ntitle: "A fairly long title for post number {i} about AI 新闻"\n'
            f"date: 2026-11-{1 + i % 28:02}\ntags: [AI, LLM, Agents, 评测]\n"
            f'cover: {{image: "https://cdn.example.org/covers/{i}.jpg", alt: "Cover {i}"}}\n---\n{words}\n'
        )
    sized = replace(config, content=replace(config.content, dir=content))
    draft = compose_digest(sized, NOW, frozenset(), 1)
    assert draft.issue is not None and draft.plan is not None
    assert len(draft.plan.posts) == 10 and draft.plan.more == 20
    html = _html(build_message(draft.issue, ADA, config.newsletter))  # type: ignore[arg-type]
    assert len(html.encode()) < 100_000
    assert "20 篇新文章" in html


def test_templates_can_be_overridden(tmp_path: Path, config: Config) -> None:
    (tmp_path / "digest.txt.j2").write_text(
        "Own text for {{ recipient.email }}: {{ posts|length }} posts\n"
    )
    own = replace(config, templates_dir=tmp_path)
    draft = compose_digest(own, NOW, frozenset(), 1)
    assert draft.issue is not None
    assert (
        _text(build_message(draft.issue, ADA, config.newsletter))
        == "Own text for ada@example.net: 6 posts\n"
    )  # type: ignore[arg-type]
    assert 'class="post-title"' in draft.issue.html  # the built-in HTML template still serves


def test_a_broken_template_is_a_clear_error(tmp_path: Path, config: Config) -> None:
    (tmp_path / "digest.txt.j2").write_text("line one\n{{ posts|nosuchfilter }}\n")
    with pytest.raises(RenderError, match=r"digest\.txt\.j2:2: No filter named 'nosuchfilter'"):
        compose_digest(replace(config, templates_dir=tmp_path), NOW, frozenset(), 1)
    (tmp_path / "digest.txt.j2").write_text("{{ issue.nope }}\n")
    with pytest.raises(
        RenderError, match=r"digest\.txt\.j2: 'dict object' has no attribute 'nope'"
    ):
        compose_digest(replace(config, templates_dir=tmp_path), NOW, frozenset(), 1)


def test_no_newsletter_section(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("site: {title: T, url: 'https://e.org/'}\n")
    with pytest.raises(ConfigError) as caught:
        compose_digest(load_config(path), NOW, frozenset(), 1)
    assert (
        str(caught.value)
        == f"{path}: newsletter: section missing; the digest needs newsletter.from"
    )


GOLDEN_FILES = ("issue.html", "issue.txt", "issue.eml")


@pytest.mark.parametrize("name", GOLDEN_FILES)
def test_golden_digest(config: Config, issue: Issue, update_golden: bool, name: str) -> None:
    """The sample issue as subscribers get it; regenerate with --update-golden."""
    message = build_message(issue, ADA, config.newsletter)  # type: ignore[arg-type]
    actual = {
        "issue.html": _html(message).encode(),
        "issue.txt": _text(message).encode(),
        "issue.eml": message.as_bytes(),
    }[name]
    golden = GOLDEN / name
    if update_golden:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(actual)
    assert golden.read_bytes() == actual


def test_preview_command_records_nothing(tmp_path: Path) -> None:
    from tests.test_cli import _run

    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    shutil.copytree(REPO / "content", tmp_path / "content")
    out = tmp_path / "preview"
    result = _run("digest", "preview", "--config", str(tmp_path / "config.yaml"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("issue #1: 6 posts shown, 0 more; subject: AI 新闻速递")
    assert sorted(p.name for p in out.iterdir()) == ["issue.eml", "issue.html", "issue.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "content", "preview"]
    parsed = email.message_from_bytes((out / "issue.eml").read_bytes(), policy=SMTP_POLICY)
    assert parsed["To"] == "reader@example.org"
    assert "读者，你好" in (out / "issue.txt").read_text()
