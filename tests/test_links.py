from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from feedpub.config import ContentConfig, SiteConfig
from feedpub.content.files import find_files
from feedpub.content.links import PostNames, resolve_post_link
from tests.conftest import WritePost


@pytest.fixture
def content(content_dir: Path, tmp_path: Path) -> ContentConfig:
    return ContentConfig(
        dir=content_dir,
        static_dir=tmp_path / "static",
        include=("**/*.md", "**/*.markdown"),
        exclude=("**/_index.md",),
        permalink="posts/{slug}/",
    )


@pytest.fixture
def blog(write_post: WritePost) -> None:
    """A small site: plain posts, a bundle, a nested section, a draft and a clash."""
    write_post("blog/first.md", "title: First\ndate: 2025-01-01\nslug: first-post")
    write_post("blog/second.md", "title: Second\ndate: 2025-01-02")
    write_post("blog/bundle/index.md", "title: Bundle\ndate: 2025-01-03")
    write_post("blog/bundle/sibling.md", "title: Inside\ndate: 2025-01-04")
    write_post("docs/deep/guide.markdown", "title: Guide\ndate: 2025-01-05")
    write_post("docs/hidden.md", "title: Hidden\ndate: 2025-01-06\ndraft: true")
    write_post("docs/_index.md", "title: Docs\ndate: 2025-01-07")
    write_post("a/same.md", "title: Same A\ndate: 2025-01-08")
    write_post("b/same.md", "title: Same B\ndate: 2025-01-09\nslug: same-b")
    write_post("blog/broken.md", "date: 2025-01-10")


def _names(content: ContentConfig) -> PostNames:
    return PostNames(find_files(content.dir, content.include, content.exclude))


@pytest.mark.parametrize(
    ("from_rel", "target", "url"),
    [
        # beside the current file, with or without the suffix
        ("blog/second.md", "first.md", "https://example.org/posts/first-post/"),
        ("blog/second.md", "first", "https://example.org/posts/first-post/"),
        ("blog/second.md", "./first.md", "https://example.org/posts/first-post/"),
        # a bundle by its folder, its index, or with a trailing slash
        ("blog/second.md", "bundle", "https://example.org/posts/bundle/"),
        ("blog/second.md", "bundle/", "https://example.org/posts/bundle/"),
        ("blog/second.md", "bundle/index.md", "https://example.org/posts/bundle/"),
        # from inside a bundle: its siblings; a Markdown file in its own folder is
        # one of its resources, no page (Hugo's leaf bundles)
        ("blog/bundle/index.md", "second.md", "https://example.org/posts/second/"),
        ("blog/bundle/index.md", "sibling.md", None),
        ("blog/bundle/index.md", "../first.md", "https://example.org/posts/first-post/"),
        # from the content folder
        ("blog/first.md", "/docs/deep/guide.markdown", "https://example.org/posts/guide/"),
        ("blog/first.md", "/docs/deep/guide", "https://example.org/posts/guide/"),
        ("blog/first.md", "docs/deep/guide.md", "https://example.org/posts/guide/"),
        # fragments are kept; a fragment alone names the current post
        ("blog/second.md", "first.md#setup", "https://example.org/posts/first-post/#setup"),
        ("blog/second.md", "#intro", "https://example.org/posts/second/#intro"),
        # a bare name anywhere, from the index
        ("blog/first.md", "guide", "https://example.org/posts/guide/"),
        ("blog/first.md", "guide.md", "https://example.org/posts/guide/"),
        ("docs/deep/guide.markdown", "Bundle", "https://example.org/posts/bundle/"),
        # a percent-encoded Markdown destination
        ("blog/second.md", "fir%73t.md", "https://example.org/posts/first-post/"),
    ],
)
def test_references_resolve_as_hugo_resolves_them(
    blog: None,
    content: ContentConfig,
    site: SiteConfig,
    from_rel: str,
    target: str,
    url: str | None,
) -> None:
    assert resolve_post_link(content, site, from_rel, target, _names(content)) == url


@pytest.mark.parametrize(
    ("from_rel", "target"),
    [
        ("blog/second.md", "missing.md"),
        ("blog/second.md", "./guide"),  # a dot path is relative only
        ("blog/second.md", "deep/guide"),  # a path with a folder is not a bare name
        ("blog/second.md", "same"),  # two posts share the name
        ("blog/second.md", "/docs/hidden.md"),  # a draft
        ("blog/second.md", "/docs/_index.md"),  # excluded from the content
        ("blog/second.md", "/docs"),  # a section whose _index.md is excluded
        ("blog/second.md", "broken.md"),  # not a usable post
        ("blog/second.md", "../../outside.md"),  # above the content folder
        ("blog/second.md", "https://example.net/first.md"),
        ("blog/second.md", "//example.net/first.md"),
        ("blog/second.md", ""),
    ],
)
def test_references_to_no_post_give_none(
    blog: None, content: ContentConfig, site: SiteConfig, from_rel: str, target: str
) -> None:
    assert resolve_post_link(content, site, from_rel, target, _names(content)) is None


def test_bare_names_elsewhere_need_the_index(
    blog: None, content: ContentConfig, site: SiteConfig
) -> None:
    assert resolve_post_link(content, site, "blog/first.md", "guide") is None
    assert resolve_post_link(content, site, "blog/first.md", "second") == (
        "https://example.org/posts/second/"
    )


def test_the_link_is_the_targets_own_permalink(
    write_post: WritePost, content: ContentConfig, site: SiteConfig
) -> None:
    write_post("a.md", "title: A\ndate: 2025-03-04T23:00:00Z")
    write_post("b.md", "title: B\ndate: 2025-03-04")
    dated = ContentConfig(
        content.dir, content.static_dir, content.include, (), "{year}/{month}/{day}/{slug}/"
    )
    # 23:00 UTC is the next day in the site's time zone (Asia/Shanghai), as in a's feed item.
    assert resolve_post_link(dated, site, "b.md", "a") == "https://example.org/2025/03/05/a/"


def test_the_index_and_arguments_pickle(blog: None, content: ContentConfig) -> None:
    names = _names(content)
    assert pickle.loads(pickle.dumps(names)) == names
    assert names.get("same") == ("a/same.md", "b/same.md")
    assert names.get("bundle") == ("blog/bundle/index.md",)
    assert names.get("nowhere") == ()
    assert pickle.loads(pickle.dumps(names)).get("same") == ("a/same.md", "b/same.md")
