from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from feedpub.collector import (
    Filters,
    collect,
    content_counts,
    freeze,
    next_change,
    read_one,
    select,
    thaw,
)
from feedpub.config import ContentConfig, SiteConfig, load_config
from feedpub.content.files import find_files, is_content_file
from feedpub.model import Post
from tests.conftest import NOW, REPO, WritePost


def _content(directory: Path, exclude: tuple[str, ...] = ()) -> ContentConfig:
    return ContentConfig(
        directory, directory / "static", ("**/*.md", "**/*.markdown"), exclude, "posts/{slug}/"
    )


def test_find_files_uses_include_and_exclude_globs(content_dir: Path) -> None:
    for name in (
        "a.md",
        "b.markdown",
        "c.txt",
        "x/d.md",
        "x/y/e.md",
        "x/_index.md",
        ".hidden.md",
        ".git/f.md",
        "drafts/g.md",
    ):
        path = content_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    found = find_files(content_dir, ("**/*.md", "**/*.markdown"), ("**/_index.md", "drafts/**"))
    assert found == ["a.md", "b.markdown", "x/d.md", "x/y/e.md"]
    assert find_files(content_dir, ("*.md",), ()) == ["a.md"]


def test_a_leaf_bundle_is_one_post_and_its_markdown_files_are_resources(
    content_dir: Path,
) -> None:
    """As Hugo reads bundles: a folder with index.md is one page, whatever else it
    holds (headless snippets, notes in subfolders); _index.md holds pages."""
    for name in (
        "posts/_index.md",
        "posts/plain.md",
        "posts/trip/index.md",
        "posts/trip/day-one.md",
        "posts/trip/notes/more.md",
        "posts/trip/photo.png",
        "snippets/index.md",
        "snippets/hours.md",
        "index.md",  # the content folder itself is no bundle
        "about.md",
    ):
        path = content_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    content = ContentConfig(content_dir, content_dir, ("**/*.md",), ("**/_index.md",), "{slug}/")
    found = find_files(content_dir, content.include, content.exclude)
    assert found == [
        "about.md",
        "index.md",
        "posts/plain.md",
        "posts/trip/index.md",
        "snippets/index.md",
    ]
    every = [p.relative_to(content_dir).as_posix() for p in content_dir.rglob("*.md")]
    assert sorted(r for r in every if is_content_file(content, r)) == found


def test_one_bad_post_never_stops_the_others(
    content_dir: Path, write_post: WritePost, site: SiteConfig
) -> None:
    write_post("good.md")
    write_post("other.md", "title: Other\ndate: 2026-11-02")
    write_post("bad.md", "title: [unclosed\ndate: 2026-11-01")
    write_post("empty.md", raw=b"")
    collection = collect(_content(content_dir), site)
    assert [p.rel_path for p in collection.posts] == ["good.md", "other.md"]
    assert collection.files == 4
    assert [(Path(p.path).name, p.line) for p in collection.problems] == [
        ("bad.md", 3),
        ("empty.md", None),
    ]


def test_two_posts_with_one_permalink_are_reported(
    content_dir: Path, write_post: WritePost, site: SiteConfig
) -> None:
    write_post("a/hello.md")
    write_post("b/hello.md")
    collection = collect(_content(content_dir), site)
    assert [p.rel_path for p in collection.posts] == ["a/hello.md"]
    (problem,) = collection.problems
    assert problem.path == str(content_dir / "b/hello.md")
    assert problem.message == (
        f"permalink https://example.org/posts/hello/ is already used by {content_dir / 'a/hello.md'}; "
        "give one of them another slug (skipped)"
    )


def test_a_missing_content_folder_is_reported(tmp_path: Path, site: SiteConfig) -> None:
    collection = collect(_content(tmp_path / "nowhere"), site)
    assert collection.posts == ()
    assert [p.message for p in collection.problems] == ["content folder not found (content.dir)"]


def test_the_sample_content_is_clean() -> None:
    config = load_config(REPO / "config.yaml")
    collection = collect(config.content, config.site)
    assert collection.problems == ()
    assert len(collection.posts) == collection.files == 8
    chosen = select(collection.posts, NOW)
    assert len(chosen) == 6
    assert not any(p.draft for p in chosen)


# select() is pure: build posts directly.


@pytest.fixture
def base(site: SiteConfig, write_post: WritePost) -> Post:
    from feedpub.content.post import read_post

    path = write_post("base.md")
    post, _ = read_post(path, "base.md", site, "posts/{slug}/")
    return post


def _post(base: Post, name: str, hours_ago: float, **changes: object) -> Post:
    return replace(
        base,
        rel_path=name,
        title=changes.pop("title", name),
        date=NOW - timedelta(hours=hours_ago),
        **changes,
    )  # type: ignore[arg-type]


def test_select_drops_drafts_and_future_posts(base: Post) -> None:
    posts = [
        _post(base, "old", 5),
        _post(base, "draft", 1, draft=True),
        _post(base, "future", -1),
        _post(base, "now", 0),
    ]
    assert [p.rel_path for p in select(posts, NOW)] == ["now", "old"]


def test_select_orders_newest_first_with_ties_in_path_order(base: Post) -> None:
    posts = [_post(base, "b", 1), _post(base, "c", 2), _post(base, "a", 1)]
    assert [p.rel_path for p in select(posts, NOW)] == ["a", "b", "c"]
    assert [p.rel_path for p in select(list(reversed(posts)), NOW)] == ["a", "b", "c"]


def test_select_limit(base: Post) -> None:
    posts = [_post(base, f"p{i}", i) for i in range(10)]
    assert [p.rel_path for p in select(posts, NOW, Filters(limit=3))] == ["p0", "p1", "p2"]


def test_select_filters_on_tags_and_categories_ignoring_case(base: Post) -> None:
    posts = [
        _post(base, "ai", 1, tags=("AI",), categories=("News",)),
        _post(base, "ml", 2, tags=("ML", "ai"), categories=("Analysis",)),
        _post(base, "none", 3, tags=(), categories=()),
    ]

    def names(filters: Filters) -> list[str]:
        return [p.rel_path for p in select(posts, NOW, filters)]

    assert names(Filters(tags=frozenset({"ai"}))) == ["ai", "ml"]
    assert names(Filters(categories=frozenset({"analysis"}))) == ["ml"]
    assert names(Filters(exclude_tags=frozenset({"ML"}))) == ["ai", "none"]
    assert names(Filters(exclude_categories=frozenset({"news"}))) == ["ml", "none"]


def test_select_keeps_the_earliest_copy_of_a_story(base: Post) -> None:
    posts = [
        _post(base, "copy-late", 1, title="Same Story!", source_url=None),
        _post(base, "copy-early", 5, title="same story", source_url=None),
        _post(base, "src-late", 2, title="Different words", source_url="https://n.example/1"),
        _post(base, "src-early", 6, title="Other words", source_url="https://n.example/1"),
        _post(base, "unique", 3, title="Unique", source_url=None),
    ]
    assert [p.rel_path for p in select(posts, NOW)] == ["unique", "copy-early", "src-early"]


def test_select_does_not_merge_posts_with_titles_of_punctuation_only(base: Post) -> None:
    posts = [_post(base, "a", 1, title="!!!"), _post(base, "b", 2, title="???")]
    assert len(select(posts, NOW)) == 2


def test_select_drops_expired_and_unlisted_posts(base: Post) -> None:
    posts = [
        _post(base, "expired", 5, expires=NOW - timedelta(hours=1)),
        _post(base, "expires now", 5, expires=NOW),
        _post(base, "expires later", 5, expires=NOW + timedelta(hours=1)),
        _post(base, "unlisted", 5, listed=False),
        _post(base, "plain", 6),
    ]
    assert [p.rel_path for p in select(posts, NOW)] == ["expires later", "plain"]


def test_next_change_is_the_first_due_date_or_expiry(base: Post) -> None:
    hour = timedelta(hours=1)
    posts = [
        _post(base, "live", 5, expires=NOW + 3 * hour),
        _post(base, "scheduled", -2),
        _post(base, "gone", 5, expires=NOW - hour),
        _post(base, "draft", -1, draft=True),
        _post(base, "unlisted", -1, listed=False),
    ]
    assert next_change(posts, NOW) == NOW + 2 * hour
    assert next_change(posts[:1], NOW) == NOW + 3 * hour
    assert next_change(posts[2:], NOW) is None


def test_counts_tell_hidden_posts_from_duplicates(
    content_dir: Path, site: SiteConfig, write_post: WritePost
) -> None:
    write_post("a.md", "title: A\ndate: 2026-11-01\nexpiryDate: 2026-11-02")
    write_post("b.md", "title: B\ndate: 2026-11-01\nheadless: true")
    write_post("c.md", "title: C\ndate: 2026-11-01")
    write_post("d.md", "title: C\ndate: 2026-11-02")
    counts = content_counts(collect(_content(content_dir), site), NOW)
    assert (counts.published, counts.hidden, counts.duplicates) == (1, 2, 1)


def test_a_post_survives_freezing_with_its_new_fields(
    content_dir: Path, site: SiteConfig, write_post: WritePost
) -> None:
    write_post(
        "a.md",
        "title: A\ndate: 2026-11-01\nexpiryDate: 2026-12-01\nbuild: {list: never}\n"
        "author: '[Ann](https://ann.example/)'",
    )
    result = read_one(_content(content_dir), site, "a.md")
    assert result.post is not None and result.post.author.uri == "https://ann.example/"
    assert thaw("a.md", *freeze(result)) == result
