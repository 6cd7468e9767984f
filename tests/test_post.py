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
            "no front matter; the file must start with a line of --- (YAML), +++ (TOML) or { (JSON)",
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


def _raw(content_dir: Path, name: str, text: str) -> Path:
    path = content_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "text",
    [
        '---\ntitle: "Hi"\ndate: 2025-06-09T13:49:22Z\ntags: [a, b]\ncover: {image: c.png}\n---\nBody\n',
        '+++\ntitle = "Hi"\ndate = 2025-06-09T13:49:22Z\ntags = ["a", "b"]\n'
        '[cover]\nimage = "c.png"\n+++\nBody\n',
        '{\n  "title": "Hi",\n  "date": "2025-06-09T13:49:22Z",\n  "tags": ["a", "b"],\n'
        '  "cover": {"image": "c.png"}\n}\n\nBody\n',
    ],
    ids=["yaml", "toml", "json"],
)
def test_front_matter_in_every_form_hugo_reads(
    content_dir: Path, site: SiteConfig, text: str
) -> None:
    post = _read(_raw(content_dir, "hi.md", text), site)
    assert (post.title, post.date, post.tags) == (
        "Hi",
        datetime(2025, 6, 9, 13, 49, 22, tzinfo=UTC),
        ("a", "b"),
    )
    assert post.cover is not None and post.cover.url == "https://example.org/posts/hi/c.png"
    assert post.body == "Body\n"


# Each URL is the one Hugo 0.168 gives the same file (hugo.toml: no permalinks).
@pytest.mark.parametrize(
    ("name", "front", "path"),
    [
        ("istio-1.6-explain.md", "", "posts/istio-1.6-explain/"),
        ("Hello World_x.md", "", "posts/hello-world_x/"),
        ("C++ & C#.md", "", "posts/c++--c%23/"),
        ("blog/My Bundle/index.md", "", "posts/my-bundle/"),
        ("Ｆｕｌｌ.md", "", "posts/%EF%BD%86%EF%BD%95%EF%BD%8C%EF%BD%8C/"),
        ("s.md", "slug: My Custom  Slug!", "posts/my-custom-slug/"),
        ("u.md", "url: /Some Where/Else", "Some%20Where/Else/"),
        ("u2.md", "url: x/v1.0/page", "x/v1.0/page"),
    ],
)
def test_urls_follow_hugos_path_rules(
    write_post: WritePost, site: SiteConfig, name: str, front: str, path: str
) -> None:
    post, _ = read_post(
        write_post(name, f"title: T\ndate: 2025-01-01\n{front}"), name, site, "posts/{slug}/"
    )
    assert post.url == "https://example.org/" + path


# Hugo 0.168 with [permalinks.page] posts = "/:year/:month/:day/:title/" gives these.
@pytest.mark.parametrize(
    ("title", "date", "path"),
    [
        (
            '"C++ Tips & Tricks: 2025"',
            "2025-06-09T23:30:00-05:00",
            "2025/06/09/c-tips-tricks-2025/",
        ),
        ("中文 标题", "2025-06-09", "2025/06/09/%E4%B8%AD%E6%96%87-%E6%A0%87%E9%A2%98/"),
    ],
)
def test_hugo_permalink_patterns_expand_as_hugo_expands_them(
    write_post: WritePost, site: SiteConfig, title: str, date: str, path: str
) -> None:
    post = _read(
        write_post("p1.md", f"title: {title}\ndate: {date}"), site, "/:year/:month/:day/:title/"
    )
    assert post.url == "https://example.org/" + path


@pytest.mark.parametrize(
    ("name", "front", "pattern", "path"),
    [
        ("blog/Post One.md", "", ":section/:filename/", "blog/post-one/"),
        ("blog/trip/index.md", "", ":section/:contentbasename/", "blog/trip/"),
        ("blog/a.md", "", ":slug/", "a-title/"),  # no slug: the title
        ("blog/a.md", "slug: Own", ":slugorfilename/", "own/"),
        (
            "blog/a.md",
            "",
            ":yearday-:weekday-:weekdayname-:monthname/:slugorfilename",
            "160-1-monday-june/a/",
        ),
        ("blog/a.md", "url: /fixed/:year/", ":slug/", "fixed/2025/"),
    ],
)
def test_hugo_attributes(
    write_post: WritePost, site: SiteConfig, name: str, front: str, pattern: str, path: str
) -> None:
    path_written = write_post(name, f"title: A Title\ndate: 2025-06-09\n{front}")
    post, _ = read_post(path_written, name, site, pattern)
    assert post.url == "https://example.org/" + path


@pytest.mark.parametrize(
    ("front", "name", "published"),
    [
        ("publishDate: 2025-02-02", "a.md", datetime(2025, 2, 2, tzinfo=SHANGHAI)),
        ("pubdate: 2025-02-03", "a.md", datetime(2025, 2, 3, tzinfo=SHANGHAI)),
        ("published: 2025-02-05", "a.md", datetime(2025, 2, 5, tzinfo=SHANGHAI)),
        ("modified: 2025-02-06", "a.md", datetime(2025, 2, 6, tzinfo=SHANGHAI)),
        ("Date: 2025-02-07", "a.md", datetime(2025, 2, 7, tzinfo=SHANGHAI)),
        # a later publishDate holds the post back; an earlier one does not move it
        (
            "date: 2025-02-01\npublishDate: 2025-03-01",
            "a.md",
            datetime(2025, 3, 1, tzinfo=SHANGHAI),
        ),
        (
            "date: 2025-02-01\npublishDate: 2025-01-01",
            "a.md",
            datetime(2025, 2, 1, tzinfo=SHANGHAI),
        ),
        ("", "2025-03-04-dated.md", datetime(2025, 3, 4, tzinfo=SHANGHAI)),
        ("date: 2025-02-01", "2025-03-04-dated.md", datetime(2025, 2, 1, tzinfo=SHANGHAI)),
    ],
)
def test_dates_as_hugos_default_frontmatter_config_reads_them(
    write_post: WritePost, site: SiteConfig, front: str, name: str, published: datetime
) -> None:
    post, _ = read_post(write_post(name, f"title: T\n{front}"), name, site, "posts/{slug}/")
    assert post.date == published
    # A date taken from the name leaves the rest as the slug, as Hugo's :filename
    # date does; a date from the front matter leaves the name whole, as Hugo does.
    dated_by_name = not front and name.startswith("2025-03-04-")
    assert post.slug == ("dated" if dated_by_name else name.removesuffix(".md"))


def test_lastmod_modified_and_expiry(write_post: WritePost, site: SiteConfig) -> None:
    post = _read(
        write_post(
            "a.md",
            "title: T\ndate: 2025-01-01\nmodified: 2025-01-05\nexpiryDate: 2025-02-01T00:00:00Z",
        ),
        site,
    )
    assert post.updated == datetime(2025, 1, 5, tzinfo=SHANGHAI)
    assert post.expires == datetime(2025, 2, 1, tzinfo=UTC)
    assert _read(
        write_post("b.md", "title: T\ndate: 2025-01-01\nunpublishdate: 2025-03-01"), site
    ).expires == datetime(2025, 3, 1, tzinfo=SHANGHAI)
    assert _read(write_post("c.md"), site).expires is None


@pytest.mark.parametrize(
    ("front", "listed"),
    [
        ("", True),
        ("build: {list: never}", False),
        ("build: {list: local}", False),
        ("_build: {list: false}", False),
        ("build: {render: never}", False),
        ("build: {render: link, list: always}", True),
        ("headless: true", False),
        ("headless: false", True),
    ],
)
def test_posts_hugo_lists_nowhere_are_not_listed(
    write_post: WritePost, site: SiteConfig, front: str, listed: bool
) -> None:
    assert _read(write_post("a.md", f"title: T\ndate: 2025-01-01\n{front}"), site).listed is listed


def test_toml_build_options_and_a_bad_one(content_dir: Path, site: SiteConfig) -> None:
    toml = '+++\ntitle = "T"\ndate = 2025-01-01\n[_build]\nlist = "never"\n+++\n'
    assert _read(_raw(content_dir, "a.md", toml), site).listed is False
    bad = _raw(content_dir, "b.md", "---\ntitle: T\ndate: 2025-01-01\nbuild: never\n---\n")
    assert _error(bad, site).reason == "build: expected {list, render} options, got 'never'"


@pytest.mark.parametrize(
    ("front", "author", "warning"),
    [
        (
            'author: "[Jane Doe](https://github.com/jane)"',
            Author("Jane Doe", None, "https://github.com/jane"),
            None,
        ),
        ("author: [Ann, Bob]", Author("Ann"), None),
        (
            "author: [{name: Ann, email: ann@example.org, url: 'https://ann.example'}]",
            Author("Ann", "ann@example.org", "https://ann.example"),
            None,
        ),
        (
            "author: {name: Bo, link: 'https://bo.example/'}",
            Author("Bo", None, "https://bo.example/"),
            None,
        ),
        ("author: []", Author("Site Author", "site@example.org"), None),
        (
            "author: '[Cy](/about/)'",
            Author("Cy"),
            "author: '/about/' is not an absolute http(s) URL; ignored",
        ),
    ],
)
def test_authors_in_every_form(
    write_post: WritePost, site: SiteConfig, front: str, author: Author, warning: str | None
) -> None:
    path = write_post("a.md", f"title: T\ndate: 2025-01-01\n{front}")
    post, warnings = read_post(path, "a.md", site, "posts/{slug}/")
    assert post.author == author
    assert [w.message for w in warnings] == ([warning] if warning else [])


def test_a_bad_author_is_explained(write_post: WritePost, site: SiteConfig) -> None:
    error = _error(write_post("a.md", "title: T\ndate: 2025-01-01\nauthor: 3"), site)
    assert error.reason == "author: expected a name, [name](url) or {name, email, url}, got 3"


@pytest.mark.parametrize(
    ("front", "url"),
    [
        ("images: [/img/a.png, /img/b.png]", "https://example.org/img/a.png"),
        ("featured_image: f.jpg", "https://example.org/posts/a/f.jpg"),
        ("banner: /b.webp\nthumbnail: /t.webp", "https://example.org/b.webp"),
        ("thumbnail: /t.webp", "https://example.org/t.webp"),
        ("image: /i.png\nimages: [/first.png]", "https://example.org/first.png"),
        ("cover: c.png", "https://example.org/posts/a/c.png"),
        ("Cover: {Image: c.png}", "https://example.org/posts/a/c.png"),
        ("images: []\nimage: /i.png", "https://example.org/i.png"),
    ],
)
def test_cover_fields_are_tried_in_order(
    write_post: WritePost, site: SiteConfig, front: str, url: str
) -> None:
    post = _read(write_post("a.md", f"title: T\ndate: 2025-01-01\n{front}"), site)
    assert post.cover is not None and post.cover.url == url


def test_cover_fields_can_be_chosen(write_post: WritePost, site: SiteConfig) -> None:
    path = write_post(
        "a.md", "title: T\ndate: 2025-01-01\nimage: /i.png\nhero: {src: /h.png, alt: Hero}"
    )
    post, warnings = read_post(path, "a.md", site, "posts/{slug}/", cover_fields=("hero.src",))
    assert post.cover == Image("https://example.org/h.png", "Hero", "image/png")
    odd = write_post("b.md", "title: T\ndate: 2025-01-01\nimages: [{x: 1}]\nimage: /i.png")
    post, warnings = read_post(odd, "b.md", site, "posts/{slug}/")
    assert post.cover is not None and post.cover.url == "https://example.org/i.png"
    assert [w.message for w in warnings] == [
        "images: expected an image path, got a mapping; ignored"
    ]


def test_odd_dated_names_and_unknown_url_attributes_cost_nothing(
    write_post: WritePost, site: SiteConfig
) -> None:
    assert _error(write_post("2025-13-45-x.md", "title: T"), site).reason == (
        "no date; add date: such as 2025-06-09T13:49:22Z to the front matter"
    )
    post = _read(write_post("a.md", "title: T\ndate: 2025-01-01\nurl: /x/:nope/"), site)
    assert post.url == "https://example.org/x/:nope/"


@pytest.mark.parametrize(
    ("rel_path", "front", "url"),
    [  # as the real Hugo 0.168 binary wrote them for a hugo.toml without [permalinks]
        ("post/tech/2026-07-21/a.md", "slug: calldiff\n", "post/tech/2026-07-21/calldiff/"),
        ("post/tech/2026-07-21/B.File.md", "", "post/tech/2026-07-21/b.file/"),
        ("post/My Trips/Big Trip/index.md", "", "post/my-trips/big-trip/"),
        ("top.md", "", "top/"),
    ],
)
def test_folder_and_slug_give_hugos_default_urls(
    content_dir: Path, site: SiteConfig, rel_path: str, front: str, url: str
) -> None:
    path = content_dir / rel_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"---\ntitle: T\ndate: 2026-07-21\n{front}---\nhi\n")
    post, _ = read_post(path, rel_path, site, "{folder}{slug}/")
    assert post.url == "https://example.org/" + url
