from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedpub.config import SiteConfig
from feedpub.content.ids import _uuid5
from feedpub.content.post import read_post
from feedpub.content.render import render_post
from feedpub.errors import ContentError
from feedpub.model import Author, Image, Post, Severity
from tests.conftest import WritePost

SHANGHAI = timezone(timedelta(hours=8))


def _read(path: Path, site: SiteConfig, permalink: str = "posts/{slug}/") -> Post:
    post, _ = read_post(path, path.name, site, permalink)
    return post


def _error(path: Path, site: SiteConfig) -> ContentError:
    with pytest.raises(ContentError) as caught:
        read_post(path, path.name, site, "posts/{slug}/")
    return caught.value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-06-09T13:49:22.539Z", datetime(2025, 6, 9, 13, 49, 22, 539000, tzinfo=UTC)),
        ('"2025-06-09T13:49:22.539Z"', datetime(2025, 6, 9, 13, 49, 22, 539000, tzinfo=UTC)),
        ("2025-06-09T13:49:22+02:00", datetime(2025, 6, 9, 11, 49, 22, tzinfo=UTC)),
        ("2025-06-09 13:49:22", datetime(2025, 6, 9, 13, 49, 22, tzinfo=SHANGHAI)),
        ('"2025-06-09 13:49"', datetime(2025, 6, 9, 13, 49, tzinfo=SHANGHAI)),
        ("2025-06-09", datetime(2025, 6, 9, tzinfo=SHANGHAI)),
        ('"Mon, 09 Jun 2025 13:49:22 +0000"', datetime(2025, 6, 9, 13, 49, 22, tzinfo=UTC)),
    ],
)
def test_dates_in_every_form_become_aware(
    write_post: WritePost, site: SiteConfig, value: str, expected: datetime
) -> None:
    post = _read(write_post("a.md", f"title: T\ndate: {value}"), site)
    assert post.date.tzinfo is not None
    assert post.date == expected


def test_updated_comes_from_lastmod_updated_or_sync_time(
    write_post: WritePost, site: SiteConfig
) -> None:
    base = "title: T\ndate: 2025-06-09T10:00:00Z\n"
    synced = _read(write_post("a.md", base + 'sync_time: "2025-06-09T14:44:56.924Z"'), site)
    assert synced.updated == datetime(2025, 6, 9, 14, 44, 56, 924000, tzinfo=UTC)
    lastmod = _read(
        write_post("b.md", base + "lastmod: 2025-06-10T00:00:00Z\nupdated: 2025-06-11"), site
    )
    assert lastmod.updated == datetime(2025, 6, 10, tzinfo=UTC)
    plain = _read(write_post("c.md", base), site)
    assert plain.updated == plain.date


def test_an_update_before_the_date_is_warned_about(write_post: WritePost, site: SiteConfig) -> None:
    path = write_post("a.md", "title: T\ndate: 2025-06-09T10:00:00Z\nlastmod: 2025-01-01")
    post, warnings = read_post(path, "a.md", site, "posts/{slug}/")
    assert post.updated == post.date
    assert [w.message for w in warnings] == ["lastmod is earlier than date; using date"]
    assert warnings[0].severity is Severity.WARNING


def test_all_fields(write_post: WritePost, site: SiteConfig) -> None:
    front = """title: "  Spaced\n  title "
date: 2025-06-09T13:49:22Z
draft: false
tags: ["AI", "C++", AI, 2025]
categories: News
author: {name: Ada, email: ada@example.org}
summary: "A summary that says more than the title."
cover: {image: "cover.png", alt: "The cover"}
source_url: "https://news.example.com/story"
word_count: 12
reading_time: 3
ai_score: 0.5
custom: {nested: [1, 2]}"""
    post = _read(write_post("my-post.md", front), site)
    assert post.title == "Spaced title"
    assert post.tags == ("AI", "C++", "2025")
    assert post.categories == ("News",)
    assert post.author == Author("Ada", "ada@example.org")
    assert post.summary == "A summary that says more than the title."
    assert post.cover == Image(
        "https://example.org/posts/my-post/cover.png", "The cover", "image/png"
    )
    assert post.source_url == "https://news.example.com/story"
    assert (post.word_count, post.reading_time) == (12, 3)
    assert dict(post.extra) == {"ai_score": 0.5, "custom": {"nested": [1, 2]}}
    assert post.url == "https://example.org/posts/my-post/"
    assert post.draft is False


def test_empty_values_give_nothing(write_post: WritePost, site: SiteConfig) -> None:
    front = 'title: T\ndate: 2025-06-09\ncover: {image: "", alt: "x"}\nsource_url: ""\nsummary: ""'
    post = _read(write_post("a.md", front), site)
    assert (post.cover, post.source_url, post.summary) == (None, None, None)
    assert post.author == site.author


def test_image_key_and_name_only_author(write_post: WritePost, site: SiteConfig) -> None:
    front = 'title: T\ndate: 2025-06-09\nimage: "/img/a.jpg"\nauthor: "Bo"'
    post = _read(write_post("a.md", front), site)
    assert post.cover == Image("https://example.org/img/a.jpg", "T", "image/jpeg")
    assert post.author == Author("Bo")


def test_summary_equal_to_the_title_is_not_used(write_post: WritePost, site: SiteConfig) -> None:
    post = _read(
        write_post(
            "a.md", 'title: "微软将评定AI安全"\ndate: 2025-06-09\nsummary: "微软将评定 AI 安全！"'
        ),
        site,
    )
    assert post.summary is None
    described = _read(
        write_post("b.md", "title: T\ndate: 2025-06-09\ndescription: Longer words"), site
    )
    assert described.summary == "Longer words"


def test_bad_source_url_is_warned_about_and_dropped(
    write_post: WritePost, site: SiteConfig
) -> None:
    path = write_post("a.md", "title: T\ndate: 2025-06-09\nsource_url: not a url")
    post, warnings = read_post(path, "a.md", site, "posts/{slug}/")
    assert post.source_url is None
    assert warnings[0].message == "source_url: 'not a url' is not an absolute http(s) URL; ignored"


@pytest.mark.parametrize(
    ("name", "front", "slug"),
    [
        ("Hello World.md", "", "hello-world"),
        ("x.md", "slug: My Custom Slug", "my-custom-slug"),
        ("posts/bundle/index.md", "", "bundle"),
        ("微软AI安全.md", "", "微软ai安全"),
        ("！！！.md", "", "post-"),
    ],
)
def test_slugs(write_post: WritePost, site: SiteConfig, name: str, front: str, slug: str) -> None:
    path = write_post(name, f"title: 新闻\ndate: 2025-06-09\n{front}")
    post, _ = read_post(path, name, site, "posts/{slug}/")
    assert post.slug.startswith(slug)
    assert post.slug.strip("-")
    if slug == "post-":
        assert len(post.slug) == len("post-") + 8


def test_cjk_slugs_are_percent_encoded_in_the_url(write_post: WritePost, site: SiteConfig) -> None:
    post = _read(write_post("新闻.md"), site)
    assert post.url == "https://example.org/posts/%E6%96%B0%E9%97%BB/"


def test_permalink_dates_use_the_site_time_zone(write_post: WritePost, site: SiteConfig) -> None:
    path = write_post("late.md", "title: T\ndate: 2025-06-09T20:00:00Z")
    post = _read(path, site, "{year}/{month}/{day}/{slug}.html")
    assert post.url == "https://example.org/2025/06/10/late.html"


def test_control_characters_are_removed_everywhere(write_post: WritePost, site: SiteConfig) -> None:
    front = 'title: "Bad\\x01 title\\x1f"\ndate: 2025-06-09\ntags: ["a\\x0b"]'
    post = _read(write_post("a.md", front, body="Body\x08 text\x00"), site)
    assert post.title == "Bad title"
    assert post.tags == ("a",)
    assert post.body.strip() == "Body text"


def test_raw_control_characters_do_not_cost_the_post(content_dir: Path, site: SiteConfig) -> None:
    path = content_dir / "a.md"
    path.write_bytes(b"---\ntitle: Tab\x0bbed\x01\ndate: 2025-06-09\n---\nBody\x1f\n")
    post = _read(path, site)
    assert (post.title, post.body) == ("Tabbed", "Body\n")


def test_bom_and_crlf_are_fine(content_dir: Path, site: SiteConfig) -> None:
    path = content_dir / "a.md"
    path.write_bytes("\ufeff---\r\ntitle: Windows\r\ndate: 2025-06-09\r\n---\r\nBody\r\n".encode())
    post = _read(path, site)
    assert post.title == "Windows"
    assert post.body == "Body\n"


@pytest.mark.parametrize(
    ("raw", "reason", "line"),
    [
        (b"", "empty file", None),
        (b"  \n\n", "empty file", None),
        (b"---\ntitle: x\n---\nok\n\xff bad\n", "not UTF-8 text; save the file as UTF-8", 5),
        ("---\ntitle: x\n---\n".encode("utf-16"), "UTF-16 text; save the file as UTF-8", None),
        (
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\xff",
            "binary file, not a text post",
            None,
        ),
        (
            b"Just text, no front matter.\n",
            "no front matter; the file must start with a line of ---",
            1,
        ),
        (b"---\ntitle: x\ndate: 2025-06-09\nbody\n", "front matter has no closing --- line", 1),
        (b"---\n- a\n- b\n---\nx\n", "front matter must be a mapping of keys", 2),
        (
            b"---\ntitle: ok\ndate: 2025-06-09\ntags: [a, b\nother: 1\n---\nx\n",
            "invalid YAML in front matter: did not find expected ',' or ']'",
            5,
        ),
        (
            b"---\ntitle: ok\n  bad: indent: here\n---\nx\n",
            "invalid YAML in front matter: mapping values are not allowed in this context",
            3,
        ),
        (b"---\ndate: 2025-06-09\n---\nx\n", "no title; add title: to the front matter", None),
        (
            b"---\ntitle: T\n---\nx\n",
            "no date; add date: such as 2025-06-09T13:49:22Z to the front matter",
            None,
        ),
        (
            b"---\ntitle: T\ndate: tomorrow\n---\nx\n",
            "date: 'tomorrow' is not a date; write it as 2025-06-09T13:49:22Z",
            None,
        ),
        (
            b"---\ntitle: T\ndate: 2025-06-09\ndraft: maybe\n---\nx\n",
            "draft: expected true or false, got 'maybe'",
            None,
        ),
        (b"---\ntitle: [a]\ndate: 2025-06-09\n---\nx\n", "title: expected text, got a list", None),
        (
            b"---\ntitle: T\ndate: 2025-06-09\ntags: {a: 1}\n---\nx\n",
            "tags: expected a list of names, got a mapping",
            None,
        ),
    ],
)
def test_unusable_files_are_explained(
    content_dir: Path, site: SiteConfig, raw: bytes, reason: str, line: int | None
) -> None:
    path = content_dir / "bad.md"
    path.write_bytes(raw)
    error = _error(path, site)
    assert (error.reason, error.line) == (reason, line)
    assert error.path == str(path)


def test_yaml_error_lines_count_leading_blank_lines(content_dir: Path, site: SiteConfig) -> None:
    path = content_dir / "bad.md"
    path.write_bytes(b"\n\n---\ntitle: ok\nbad: [\n---\n")
    assert _error(path, site).line == 6


def test_render_post_summary_rules(write_post: WritePost, site: SiteConfig) -> None:
    words = " ".join(f"w{i}" for i in range(100))
    long = _read(write_post("long.md", body=f"# Heading\n\n{words}\n"), site)
    assert render_post(long, 10).summary == " ".join(f"w{i}" for i in range(10)) + "…"
    more = _read(write_post("more.md", body="Lead **para**.\n\n<!--more-->\n\nRest."), site)
    assert render_post(more, 1).summary == "Lead para."
    given = _read(write_post("given.md", "title: T\ndate: 2025-06-09\nsummary: From front"), site)
    assert render_post(given, 1).summary == "From front"
    empty = _read(write_post("empty.md", body=""), site)
    assert render_post(empty, 5).summary == "A post"


def test_render_post_counts_words_when_the_front_matter_does_not(
    write_post: WritePost, site: SiteConfig
) -> None:
    post = _read(write_post("a.md", body="微软 Azure 云\n\nTwo words."), site)
    rendered = render_post(post, 70)
    assert (rendered.word_count, rendered.reading_time) == (6, 1)


def test_local_cover_images_have_a_size(
    content_dir: Path, write_post: WritePost, site: SiteConfig
) -> None:
    static = content_dir.parent / "static"
    (static / "img").mkdir(parents=True)
    (static / "img" / "wide.webp").write_bytes(b"x" * 123)
    bundle = write_post("trip/index.md", 'title: T\ndate: 2025-06-09\ncover: {image: "c%20d.png"}')
    (bundle.parent / "c d.png").write_bytes(b"y" * 45)
    root = write_post("root.md", 'title: T\ndate: 2025-06-09\nimage: "/img/wide.webp"')
    remote = write_post(
        "remote.md", 'title: T\ndate: 2025-06-09\nimage: "https://cdn.example/x.gif"'
    )
    missing = write_post("missing.md", 'title: T\ndate: 2025-06-09\nimage: "nope.jpg"')

    def cover(path: Path) -> Image | None:
        post, _ = read_post(
            path, path.relative_to(content_dir).as_posix(), site, "posts/{slug}/", static
        )
        return post.cover

    bundle_image = str(bundle.parent / "c d.png")
    assert cover(bundle) == Image(
        "https://example.org/posts/trip/c%20d.png", "T", "image/png", 45, bundle_image
    )
    wide = str(static / "img" / "wide.webp")
    assert cover(root) == Image("https://example.org/img/wide.webp", "T", "image/webp", 123, wide)
    assert cover(remote) == Image("https://cdn.example/x.gif", "T", "image/gif", None)
    # Not there (yet): no size, but the file a later build looks for.
    assert cover(missing) == Image(
        "https://example.org/posts/missing/nope.jpg",
        "T",
        "image/jpeg",
        None,
        str(content_dir / "nope.jpg"),
    )


def test_ids_survive_moves_and_differ_between_sites(
    write_post: WritePost, site: SiteConfig
) -> None:
    from dataclasses import replace

    path = write_post("news/story.md")
    first = _read(path, site).id
    moved = replace(site, url="http://new-domain.example/")
    assert (
        read_post(path, "news/story.md", site, "posts/{slug}/")[0].id
        == read_post(path, "news/story.markdown", moved, "{year}/{slug}.html")[0].id
    )
    other_site = replace(site, id="other.example")
    assert (
        read_post(path, "news/story.md", other_site, "posts/{slug}/")[0].id
        != read_post(path, "news/story.md", site, "posts/{slug}/")[0].id
    )
    assert first.startswith("urn:uuid:")
    given = _read(
        write_post("g.md", "title: T\ndate: 2025-06-09\nguid: tag:old.example,2020:1"), site
    )
    assert given.id == "tag:old.example,2020:1"


@given(st.binary(min_size=16, max_size=16), st.text())
def test_ids_are_the_uuid5_of_rfc_4122(namespace: bytes, name: str) -> None:
    assert _uuid5(namespace, name) == str(uuid.uuid5(uuid.UUID(bytes=namespace), name))
