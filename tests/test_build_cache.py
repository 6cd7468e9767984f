"""The build cache may only decide what need not be redone, never change a byte."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedpub.build import build_feeds
from feedpub.buildcache import BuildCache, OutputRecord, Stamp, Summary
from feedpub.collector import PARALLEL_FROM, ContentCounts
from feedpub.config import Config, load_config
from feedpub.content.files import FileStat
from feedpub.decide import Full, Grow, Observed, Unchanged, decide
from feedpub.model import Problem, StateLocation
from tests.conftest import NOW, REPO


def _site(tmp_path: Path, name: str, content: Path) -> Config:
    config = load_config(REPO / "config.yaml")
    return replace(
        config,
        content=replace(config.content, dir=content),
        feeds=replace(config.feeds, output_dir=tmp_path / name / "feeds"),
        state=StateLocation(tmp_path / name / "state" / "feedpub.db"),
    )


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _same_as_uncached(tmp_path: Path, cached: Config, now=NOW) -> None:  # type: ignore[no-untyped-def]
    fresh = replace(cached, feeds=replace(cached.feeds, output_dir=tmp_path / "fresh" / "feeds"))
    shutil.rmtree(fresh.feeds.output_dir, ignore_errors=True)
    build_feeds(fresh, now, None)
    assert _tree(cached.feeds.output_dir) == _tree(fresh.feeds.output_dir)


def _touch_later(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


@pytest.fixture
def cache() -> BuildCache:
    """The cache of one long-lived process, as the daemon keeps it."""
    return BuildCache()


@pytest.fixture
def content(tmp_path: Path) -> Path:
    folder = tmp_path / "content"
    shutil.copytree(REPO / "content", folder)
    return folder


def test_edits_renames_and_deletions_are_followed(
    tmp_path: Path, content: Path, cache: BuildCache
) -> None:
    config = _site(tmp_path, "cached", content)
    first = build_feeds(config, NOW, cache)
    assert len(first.feeds.written) == 52
    _same_as_uncached(tmp_path, config)

    again = build_feeds(config, NOW, cache)
    assert again.feeds.written == () and len(again.feeds.unchanged) == 52

    post = content / "posts" / "agents-in-production.md"
    post.write_text(post.read_text().replace("the bill arrives", "the invoice arrives"))
    _touch_later(post)
    edited = build_feeds(config, NOW, cache)
    assert "rss.xml" in edited.feeds.written and "tags/agents/rss.xml" in edited.feeds.written
    assert (
        "tags/安全/rss.xml" not in edited.feeds.written
    )  # feeds without that post stay as they are
    assert "the invoice arrives" in (config.feeds.output_dir / "rss.xml").read_text()
    _same_as_uncached(tmp_path, config)

    post.rename(content / "posts" / "agents-renamed.md")
    build_feeds(config, NOW, cache)
    assert "posts/agents-renamed/" in (config.feeds.output_dir / "rss.xml").read_text()
    _same_as_uncached(tmp_path, config)

    (content / "posts" / "agents-renamed.md").unlink()
    removed = build_feeds(config, NOW, cache)
    assert "tags/agents/rss.xml" in removed.feeds.removed
    _same_as_uncached(tmp_path, config)

    retagged = content / "posts" / "open-weights-roundup.md"
    retagged.write_text(retagged.read_text().replace('"C++"', '"Rust"'))
    _touch_later(retagged)
    build_feeds(config, NOW, cache)
    assert (config.feeds.output_dir / "tags" / "rust" / "atom.xml").exists()
    _same_as_uncached(tmp_path, config)

    (content / "posts" / "broken.md").write_text("---\ntitle: [\n---\n")
    broken = build_feeds(config, NOW, cache)
    assert [p.path for p in broken.problems] == [str(content / "posts" / "broken.md")]
    assert [p.path for p in build_feeds(config, NOW, cache).problems] == [
        str(content / "posts" / "broken.md")
    ]


def test_a_scheduled_post_appears_when_its_time_comes(
    tmp_path: Path, content: Path, cache: BuildCache
) -> None:
    config = _site(tmp_path, "cached", content)
    soon = content / "posts" / "soon.md"
    soon.write_text("---\ntitle: Coming soon\ndate: 2026-12-01T00:00:00Z\n---\nNot yet.\n")
    build_feeds(config, NOW, cache)
    assert "Coming soon" not in (config.feeds.output_dir / "rss.xml").read_text()
    later = NOW + timedelta(days=2)
    report = build_feeds(config, later, cache)  # no file changed, but the post came due
    assert "rss.xml" in report.feeds.written
    assert "Coming soon" in (config.feeds.output_dir / "rss.xml").read_text()
    _same_as_uncached(tmp_path, config, later)


@pytest.mark.parametrize("added_after_the_first_build", [False, True])
def test_an_expired_post_leaves_when_its_time_comes(
    tmp_path: Path, content: Path, cache: BuildCache, added_after_the_first_build: bool
) -> None:
    """Whether the post was there for the full road or came in by the grow road."""
    config = _site(tmp_path, "cached", content)
    if added_after_the_first_build:
        build_feeds(config, NOW, cache)
    _new_post(
        content / "posts",
        "offer.md",
        "Limited offer",
        "2026-11-29T10:00:00Z",
        "Agents",
        "expiryDate: 2026-12-01T00:00:00Z\n",
    )
    build_feeds(config, NOW, cache)
    assert "Limited offer" in (config.feeds.output_dir / "rss.xml").read_text()
    later = NOW + timedelta(days=2)
    report = build_feeds(config, later, cache)  # no file changed, but the post expired
    assert "rss.xml" in report.feeds.written
    assert "Limited offer" not in (config.feeds.output_dir / "rss.xml").read_text()
    _same_as_uncached(tmp_path, config, later)


def test_an_edited_shortcode_template_renders_its_posts_again(
    tmp_path: Path, content: Path, cache: BuildCache
) -> None:
    templates = tmp_path / "templates"
    (templates / "shortcodes").mkdir(parents=True)
    greet = templates / "shortcodes" / "greet.html.j2"
    greet.write_text("<strong>Hello</strong>")
    config = replace(_site(tmp_path, "cached", content), templates_dir=templates)
    _new_post(content / "posts", "hi.md", "Greetings", "2026-11-29T10:00:00Z", "Agents")
    (content / "posts" / "hi.md").write_text(
        (content / "posts" / "hi.md").read_text() + "\n{{< greet >}}\n"
    )
    build_feeds(config, NOW, cache)
    assert "Hello" in (config.feeds.output_dir / "rss.xml").read_text()
    greet.write_text("<em>Welcome</em>")
    build_feeds(config, NOW, BuildCache())  # as the next one-shot build
    rss = (config.feeds.output_dir / "rss.xml").read_text()
    assert "Welcome" in rss and "Hello" not in rss
    _same_as_uncached(tmp_path, config)


def test_a_damaged_cache_is_ignored(tmp_path: Path, content: Path, cache: BuildCache) -> None:
    config = _site(tmp_path, "cached", content)
    build_feeds(config, NOW, cache)
    for cache in config.state.path.parent.glob("build-*.pickle"):
        cache.write_bytes(b"not a pickle")
    cache = BuildCache()  # as a new process would start
    report = build_feeds(config, NOW, cache)
    assert report.feeds.written == () and len(report.feeds.unchanged) == 52
    _same_as_uncached(tmp_path, config)


def test_a_new_process_reads_the_cache_from_disk(
    tmp_path: Path, content: Path, cache: BuildCache
) -> None:
    config = _site(tmp_path, "cached", content)
    build_feeds(config, NOW, cache)
    cache = BuildCache()
    post = content / "posts" / "agents-in-production.md"
    post.write_text(post.read_text() + "\nOne more line.\n")
    _touch_later(post)
    report = build_feeds(config, NOW, cache)
    assert "tags/agents/rss.xml" in report.feeds.written and len(report.feeds.written) < 52
    _same_as_uncached(tmp_path, config)


def test_a_long_lived_cache_reads_each_part_from_disk_once(tmp_path: Path, content: Path) -> None:
    config = _site(tmp_path, "cached", content)
    build_feeds(config, NOW, BuildCache())  # a one-shot build leaves its cache on disk
    cache = BuildCache()  # a daemon starts on it
    build_feeds(config, NOW, cache)
    parts = list(config.state.path.parent.glob("build-*.pickle"))
    for part in parts:
        part.unlink()
    report = build_feeds(config, NOW, cache)
    # Nothing changed, and the summary read by the first build is still in memory:
    # no road that reads the content (and saves the cache again) was taken.
    assert len(parts) == 3 and not list(config.state.path.parent.glob("build-*.pickle"))
    assert report.feeds.written == () and len(report.feeds.unchanged) == 52


def test_an_index_that_lags_behind_the_content_is_safe(
    tmp_path: Path, content: Path, cache: BuildCache
) -> None:
    config = _site(tmp_path, "cached", content)
    build_feeds(config, NOW, cache)
    parts = [config.state.path.parent / f"build-{p}.pickle" for p in ("index", "shown")]
    on_disk = [part.read_bytes() for part in parts]
    for n, name in enumerate(("agents-in-production.md", "open-weights-roundup.md")):
        cache = BuildCache()  # each build a new process, as cron runs them
        post = content / "posts" / name
        post.write_text(post.read_text() + f"\nEdit number {n}.\n")
        _touch_later(post)
        build_feeds(config, NOW, cache)
        # A change this small rewrites neither the index nor the rendered bodies.
        assert [part.read_bytes() for part in parts] == on_disk
        _same_as_uncached(tmp_path, config)


def _edit(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new))
    _touch_later(path)


def _built_without_index(config: Config) -> Path:
    """Build, then remove the index (as a new process): a build that collects every
    post again writes it anew; one that reuses the last selection does not."""
    build_feeds(config, NOW, BuildCache())
    index = config.state.path.parent / "build-index.pickle"
    index.unlink()
    return index


def test_a_body_edit_needs_neither_the_index_nor_the_other_posts(
    tmp_path: Path, content: Path, cache: BuildCache
) -> None:
    config = _site(tmp_path, "cached", content)
    index = _built_without_index(config)
    post = content / "posts" / "agents-in-production.md"
    _edit(post, "the bill arrives", "the invoice arrives")
    edited = build_feeds(config, NOW, cache)
    assert not index.exists()  # collecting every post again would have written it
    assert "tags/agents/rss.xml" in edited.feeds.written
    assert "the invoice arrives" in (config.feeds.output_dir / "rss.xml").read_text()
    _same_as_uncached(tmp_path, config)

    # A front-matter edit needs every post again: the index is rebuilt from the files.
    _edit(post, '"Agents"', '"Operators"')
    build_feeds(config, NOW, cache)
    assert index.exists()
    assert (config.feeds.output_dir / "tags" / "operators" / "rss.xml").exists()
    _same_as_uncached(tmp_path, config)


def test_a_body_edit_to_a_post_no_feed_shows_changes_nothing(
    tmp_path: Path, content: Path, cache: BuildCache
) -> None:
    config = _site(tmp_path, "cached", content)
    index = _built_without_index(config)
    draft = content / "posts" / "weekly-notes-draft.md"
    _edit(draft, "\n---\n", "\n---\nStill drafting.\n")
    report = build_feeds(config, NOW, cache)
    assert not index.exists() and report.feeds.written == ()
    assert report.counts.drafts == 1

    # Its front matter is another matter: published now, it must appear.
    _edit(draft, "draft: true", "draft: false")
    published = build_feeds(config, NOW, cache)
    assert "rss.xml" in published.feeds.written and published.counts.drafts == 0
    _same_as_uncached(tmp_path, config)


def test_a_problem_keeps_its_line_when_lines_move_above_it(
    tmp_path: Path, content: Path, cache: BuildCache
) -> None:
    config = _site(tmp_path, "cached", content)
    broken = content / "posts" / "broken.md"
    broken.write_text("---\ntitle: ok\ndate: [\n---\nBody\n")
    first = build_feeds(config, NOW, cache)
    broken.write_text("\n\n" + broken.read_text())
    _touch_later(broken)
    moved = build_feeds(config, NOW, cache)
    [before] = [p.line for p in first.problems if p.path.endswith("broken.md")]
    [after] = [p.line for p in moved.problems if p.path.endswith("broken.md")]
    assert before is not None and after == before + 2


def _new_post(folder: Path, name: str, title: str, date: str, tags: str, extra: str = "") -> None:
    (folder / name).write_text(
        f"---\ntitle: {title}\ndate: {date}\ntags: [{tags}]\n{extra}---\nA new post, {title}.\n"
    )


def test_a_new_post_joins_the_last_plans_without_the_index(
    tmp_path: Path, content: Path, cache: BuildCache
) -> None:
    config = _site(tmp_path, "cached", content)
    index = _built_without_index(config)
    posts = content / "posts"
    _new_post(posts, "fresh.md", "Fresh news", "2026-11-29T10:00:00Z", "Agents, Brand New")
    report = build_feeds(config, NOW, cache)
    assert not index.exists()  # collecting every post again would have written it
    assert {"rss.xml", "tags/agents/rss.xml", "tags/brand-new/rss.xml"} <= set(report.feeds.written)
    assert "tags/安全/rss.xml" not in report.feeds.written
    assert (report.counts.files, report.counts.published) == (9, 7)
    _same_as_uncached(tmp_path, config)

    # Added posts that change more than their own feeds take the long road, and
    # the output is still exactly what a build without the cache gives.
    for name, title, date, tags, extra in [
        ("copy.md", "Fresh news!", "2026-11-29T11:00:00Z", "X", ""),  # the same story
        ("older.md", "Old news", "2025-01-01T00:00:00Z", "agents", ""),  # another spelling
        ("loud.md", "Loud", "2026-11-27T00:00:00Z", "BRAND NEW", ""),  # renames the term
        ("draft.md", "Not yet", "2026-11-29T12:00:00Z", "Y", "draft: true\n"),
        ("later.md", "Later", "2026-12-01T00:00:00Z", "Y", ""),  # scheduled
        ("other.md", "Other", "2026-11-28T00:00:00Z", "Z", "slug: fresh\n"),  # taken URL
        ("plain.md", "Plain", "2026-11-20T00:00:00Z", "Agents", ""),
    ]:
        _new_post(posts, name, title, date, tags, extra)
        build_feeds(config, NOW, cache)
        _same_as_uncached(tmp_path, config)


added_posts = st.lists(
    st.tuples(
        st.sampled_from(["News", "news!", "Other", "新闻", "Fresh news"]),  # titles that clash
        st.sampled_from(["2026-11-29T10:00:00Z", "2026-11-26 08:30", "2026-12-03T00:00:00Z"]),
        st.lists(st.sampled_from(["Agents", "agents", "AGENTS", "New", "new", "C++"]), max_size=3),
        st.sampled_from(["", "draft: true\n", "slug: agents-in-production\n", "slug: x\n"]),
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=25, deadline=None)
@given(added_posts)
def test_any_posts_added_give_what_a_build_without_cache_gives(
    added: list[tuple[str, str, list[str], str]],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        tmp_path = Path(folder)
        content = tmp_path / "content"
        shutil.copytree(REPO / "content", content)
        config = _site(tmp_path, "cached", content)
        cache = BuildCache()
        build_feeds(config, NOW, cache)
        for n, (title, date, tags, extra) in enumerate(added):
            names = ", ".join(f'"{tag}"' for tag in tags)
            _new_post(content / "posts", f"added-{n}.md", f'"{title}"', date, names, extra)
            build_feeds(config, NOW, cache)
            _same_as_uncached(tmp_path, config)


def test_plans_from_another_build_than_the_summary_are_not_used(
    tmp_path: Path, content: Path, cache: BuildCache
) -> None:
    config = _site(tmp_path, "cached", content)
    build_feeds(config, NOW, cache)
    shown = config.state.path.parent / "build-shown.pickle"
    before_retag = shown.read_bytes()
    retagged = content / "posts" / "open-weights-roundup.md"
    retagged.write_text(retagged.read_text().replace('"C++"', '"Rust"'))
    _touch_later(retagged)
    build_feeds(config, NOW, cache)
    shown.write_bytes(before_retag)  # as if this write had been lost in a crash
    cache = BuildCache()
    post = content / "posts" / "agents-in-production.md"
    post.write_text(post.read_text() + "\nOne more line.\n")
    _touch_later(post)
    build_feeds(config, NOW, cache)
    assert (config.feeds.output_dir / "tags" / "rust" / "atom.xml").exists()
    _same_as_uncached(tmp_path, config)


def test_outputs_changed_by_hand_are_rewritten(
    tmp_path: Path, content: Path, cache: BuildCache
) -> None:
    config = _site(tmp_path, "cached", content)
    build_feeds(config, NOW, cache)
    (config.feeds.output_dir / "atom.xml").write_text("scribbled over")
    (config.feeds.output_dir / "feed.json").unlink()
    report = build_feeds(config, NOW, cache)
    assert sorted(report.feeds.written) == ["atom.xml", "feed.json"]
    _same_as_uncached(tmp_path, config)


def test_many_posts_read_in_parallel_give_the_same_feeds(tmp_path: Path, cache: BuildCache) -> None:
    content = tmp_path / "many"
    content.mkdir()
    for i in range(PARALLEL_FROM + 50):
        (content / f"p{i:04}.md").write_text(
            f"---\ntitle: Post {i}\ndate: 2026-{1 + i % 11:02}-{1 + i % 28:02}T{i % 24:02}:00:00Z\n"
            f"tags: [t{i % 7}, shared]\n---\nBody {i} with *markdown* and a [link](../p{i}/).\n"
        )
    config = _site(tmp_path, "cached", content)
    build_feeds(config, NOW, cache)
    _same_as_uncached(tmp_path, config)


def test_a_replaced_cover_image_is_measured_again(
    tmp_path: Path, content: Path, cache: BuildCache
) -> None:
    config = _site(tmp_path, "cached", content)
    build_feeds(config, NOW, cache)
    cover = content / "posts" / "welcome-to-feedpub" / "cover.png"
    cover.write_bytes(cover.read_bytes() * 2)  # the post's own file stays as it was
    replaced = build_feeds(config, NOW, cache)
    assert "rss.xml" in replaced.feeds.written
    assert f'length="{cover.stat().st_size}"' in (config.feeds.output_dir / "rss.xml").read_text()
    _same_as_uncached(tmp_path, config)

    cover.unlink()  # gone: the enclosure says its size is unknown
    build_feeds(config, NOW, cache)
    _same_as_uncached(tmp_path, config)
    cover.write_bytes(b"\x89PNG\r\n")
    build_feeds(config, NOW, cache)
    _same_as_uncached(tmp_path, config)


def _copied_site(tmp_path: Path, name: str, content: Path, host: str) -> Config:
    """A site copied with shutil.copytree, which keeps each file's size and times."""
    folder = tmp_path / name
    shutil.copytree(content, folder / "content")
    text = (REPO / "config.yaml").read_text().replace("example.org", host)
    (folder / "config.yaml").write_text(text)
    return load_config(folder / "config.yaml")


def test_copies_of_a_site_built_in_one_process_keep_their_own_posts(
    tmp_path: Path, content: Path, cache: BuildCache
) -> None:
    one = _copied_site(tmp_path, "one", content, "one.example")
    two = _copied_site(tmp_path, "two", content, "two.example")
    build_feeds(one, NOW, cache)
    build_feeds(two, NOW, cache)
    retagged = one.content.dir / "posts" / "open-weights-roundup.md"
    _edit(retagged, '"C++"', '"Rust"')  # new front matter: every post is collected again
    build_feeds(one, NOW, cache)
    build_feeds(two, NOW, cache)
    for config, other in ((one, "two.example"), (two, "one.example")):
        rss = (config.feeds.output_dir / "rss.xml").read_text()
        assert other not in rss and "/posts/agents-in-production/" in rss
        _same_as_uncached(tmp_path, config)


def test_forked_and_serial_builds_write_the_same_bytes(tmp_path: Path, content: Path) -> None:
    forked, serial = _site(tmp_path, "forked", content), _site(tmp_path, "serial", content)
    caches = {forked: BuildCache(), serial: BuildCache()}
    steps = [
        lambda: None,
        lambda: _edit(content / "posts" / "agents-in-production.md", "the bill", "the invoice"),
        lambda: _new_post(content / "posts", "fresh.md", "Fresh", "2026-11-29T10:00:00Z", "Agents"),
        lambda: _edit(content / "posts" / "open-weights-roundup.md", '"C++"', '"Rust"'),
    ]
    for step in steps:
        step()
        for config, parallel in ((forked, True), (serial, False)):
            build_feeds(config, NOW, caches[config], parallel=parallel)
        assert _tree(forked.feeds.output_dir) == _tree(serial.feeds.output_dir)
        _same_as_uncached(tmp_path, serial)


def test_a_restarted_process_builds_what_the_daemon_builds(tmp_path: Path, content: Path) -> None:
    daemon, restarted = _site(tmp_path, "daemon", content), _site(tmp_path, "restarted", content)
    kept = BuildCache()  # the daemon's, for its whole life
    posts = content / "posts"
    steps = [
        lambda: None,
        lambda: _edit(posts / "agents-in-production.md", "the bill", "the invoice"),
        lambda: _new_post(posts, "fresh.md", "Fresh", "2026-11-29T10:00:00Z", "Agents, New"),
        lambda: _edit(posts / "open-weights-roundup.md", '"C++"', '"Rust"'),
        lambda: (posts / "fresh.md").unlink(),
    ]
    for step in steps:
        step()
        build_feeds(daemon, NOW, kept)
        build_feeds(restarted, NOW, BuildCache())  # loaded from disk, as after a restart
        assert _tree(daemon.feeds.output_dir) == _tree(restarted.feeds.output_dir)
        _same_as_uncached(tmp_path, daemon)


def _summary(stats: tuple[FileStat, ...], **changes: Any) -> Summary:
    counts = ContentCounts(len(stats), len(stats), len(stats), 0, 0, 0)
    outputs = {"rss.xml": OutputRecord("signature", Stamp(10, 20))}
    summary = Summary(stats, None, counts, (), (), outputs, Stamp(1, 2), "generation", {}, 0)
    return replace(summary, **changes)


def _observed(files: tuple[FileStat, ...], **changes: Any) -> Observed:
    observed = Observed(files, {"rss.xml": Stamp(10, 20)}, Stamp(1, 2), {}, strict=False)
    return replace(observed, **changes)


A, B, C = ("a.md", 1, 1), ("b.md", 2, 2), ("c.md", 3, 3)


def test_decide_takes_the_cheapest_road_the_changes_allow() -> None:
    last = _summary((A, B))
    assert decide(None, _observed((A, B)), NOW) == Full("no cache")
    assert decide(last, _observed((A, B)), NOW) == Unchanged()
    # The files as they were, but an output or a cover not as the last build left it.
    assert decide(last, _observed((A, B), outputs={"rss.xml": None}), NOW) == Grow((), ())
    assert decide(last, _observed((A, B), manifest=None), NOW) == Grow((), ())
    assert decide(last, _observed((A, B), covers={"c.png": 5}), NOW) == Grow((), ())
    edited = ("b.md", 2, 9)
    assert decide(last, _observed((A, edited, C)), NOW) == Grow(("b.md",), ("c.md",))
    assert isinstance(decide(last, _observed((A,)), NOW), Full)  # removed
    assert isinstance(decide(last, _observed((A, C)), NOW), Full)  # renamed


def test_decide_starts_afresh_when_time_or_strictness_asks() -> None:
    due = _summary((A,), valid_until=NOW)
    assert decide(due, _observed((A,)), NOW) == Full("a scheduled post came due")
    assert decide(due, _observed((A,)), NOW - timedelta(seconds=1)) == Unchanged()
    problems = (Problem("a.md", "bad"),)
    troubled = _summary((A,), problems=problems)
    assert decide(troubled, _observed((A,)), NOW) == Unchanged()
    assert isinstance(decide(troubled, _observed((A,), strict=True), NOW), Full)
