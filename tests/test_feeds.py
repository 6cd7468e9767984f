from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import feedparser
import pytest
from lxml import etree

from feedpub.build import build_feeds
from feedpub.buildcache import BuildCache
from feedpub.config import Config, load_config
from feedpub.errors import OutputError
from feedpub.model import StateLocation
from feedpub.output import MANIFEST_NAME, write_atomic
from tests.conftest import NOW, REPO
from tests.feedcheck import (
    ATOM,
    CONTENT,
    FeedProblem,
    check_atom,
    check_feed,
    check_json,
    check_rss,
)

GOLDEN = Path(__file__).parent / "golden"
FEED_FILES = ("rss.xml", "atom.xml", "feed.json")


def _config(tmp_path: Path, content: Path | None = None, **feeds: object) -> Config:
    config = load_config(REPO / "config.yaml")
    return replace(
        config,
        content=replace(config.content, dir=content or config.content.dir),
        feeds=replace(config.feeds, output_dir=tmp_path / "out", **feeds),
        state=StateLocation(tmp_path / "state" / "feedpub.db"),
    )


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    build_feeds(_config(tmp_path), NOW, BuildCache())
    return tmp_path / "out"


def test_every_feed_is_valid_and_served_where_it_says(sample: Path) -> None:
    files = [p for p in sample.rglob("*") if p.name in FEED_FILES]
    assert len(files) == 3 * (1 + 12 + 4)  # the site, 12 tags and 4 categories
    for path in files:
        folder = path.parent.relative_to(sample).as_posix()
        prefix = "" if folder == "." else folder + "/"
        check_feed(path, f"https://example.org/feeds/{quote(prefix)}{path.name}")


def test_site_feed_holds_published_posts_newest_first(sample: Path) -> None:
    titles = {}
    for name in ("rss.xml", "atom.xml"):
        titles[name] = [e.title for e in feedparser.parse(sample / name).entries]
    titles["feed.json"] = [
        i["title"] for i in json.loads((sample / "feed.json").read_text())["items"]
    ]
    expected = [
        "微软将为云客户评定AI模型安全等级",
        "Agents in production: what breaks first",
        "Open-weight models: a November round-up",
        "边缘设备上的小模型",
        "Welcome to the AI News Digest",
        "大模型评测：从基准分数到真实任务",
    ]
    assert titles == {name: expected for name in FEED_FILES}


def test_feed_update_time_is_the_newest_items(sample: Path) -> None:
    rss = etree.parse(str(sample / "rss.xml")).getroot()
    assert rss.findtext("channel/lastBuildDate") == "Sat, 28 Nov 2026 14:44:56 +0000"
    atom = etree.parse(str(sample / "atom.xml")).getroot()
    assert atom.findtext(f"{ATOM}updated") == "2026-11-28T14:44:56.924000+00:00"


def test_items_carry_every_field(sample: Path) -> None:
    rss = feedparser.parse(sample / "rss.xml").entries
    atom = feedparser.parse(sample / "atom.xml").entries
    items = json.loads((sample / "feed.json").read_text())["items"]
    welcome = 4
    assert rss[welcome].id == atom[welcome].id == items[welcome]["id"]
    assert rss[welcome].id.startswith("urn:uuid:")
    assert rss[welcome].enclosures == [
        {
            "href": "https://example.org/posts/welcome-to-feedpub/cover.png",
            "length": "344",
            "type": "image/png",
        }
    ]
    assert atom[welcome].enclosures == [
        {
            "href": "https://example.org/posts/welcome-to-feedpub/cover.png",
            "length": "344",
            "type": "image/png",
        }
    ]
    assert items[welcome]["image"] == "https://example.org/posts/welcome-to-feedpub/cover.png"
    assert items[welcome]["date_modified"] == "2026-11-21T02:30:00Z"
    assert atom[welcome].updated == "2026-11-21T10:30:00+08:00"
    assert [t.term for t in rss[welcome].tags] == ["Announcements", "Feeds", "Site News"]
    assert items[welcome]["tags"] == ["Announcements", "Feeds", "Site News"]
    assert rss[welcome].author == "lin@example.org (Lin Wei)"
    agents = 1  # a name-only author: dc:creator in RSS, never <author>
    assert rss[agents].author == "Sam Carter"
    assert b"<author>Sam Carter" not in (sample / "rss.xml").read_bytes()
    roundup = 2
    assert items[roundup]["external_url"] == "https://news.example.com/open-weights-november"
    assert {"rel": "via", "href": "https://news.example.com/open-weights-november"} in [
        {k: v for k, v in link.items() if k in ("rel", "href")} for link in atom[roundup].links
    ]
    assert rss[roundup].summary == atom[roundup].summary == items[roundup]["summary"]
    assert (
        '<img src="https://example.org/posts/open-weights-roundup/chart.png"'
        in items[roundup]["content_html"]
    )


def test_empty_front_matter_values_make_no_elements(sample: Path) -> None:
    safety = json.loads((sample / "feed.json").read_text())["items"][0]
    assert "image" not in safety and "external_url" not in safety
    entry = etree.parse(str(sample / "rss.xml")).getroot().find("channel/item")
    assert entry is not None and entry.find("enclosure") is None


def test_term_feeds(sample: Path) -> None:
    assert sorted(p.name for p in (sample / "tags").iterdir()) == sorted(
        [
            "agents",
            "ai",
            "announcements",
            "c-61321478",
            "feeds",
            "llm",
            "machine-learning",
            "microsoft",
            "open-source",
            "安全",
            "评测",
            "边缘计算",
        ]
    )
    llm = feedparser.parse(sample / "tags" / "llm" / "atom.xml")
    assert llm.feed.title == "LLM · AI 新闻速递 · AI News Digest"
    assert [e.title for e in llm.entries] == [
        "Agents in production: what breaks first",
        "Open-weight models: a November round-up",
    ]
    analysis = json.loads((sample / "categories" / "analysis" / "feed.json").read_text())
    assert len(analysis["items"]) == 2  # the future post in Analysis stays out


def test_limit_and_summary_only(tmp_path: Path) -> None:
    build_feeds(_config(tmp_path, limit=2, full_content=False), NOW, BuildCache())
    out = tmp_path / "out"
    rss = check_rss((out / "rss.xml").read_bytes(), "https://example.org/feeds/rss.xml")
    assert len(rss.findall("channel/item")) == 2
    assert rss.find(f"channel/item/{CONTENT}encoded") is None
    atom = check_atom((out / "atom.xml").read_bytes(), "https://example.org/feeds/atom.xml")
    assert atom.find(f"{ATOM}entry/{ATOM}content") is None
    feed = check_json((out / "feed.json").read_bytes(), "https://example.org/feeds/feed.json")
    assert [sorted(k for k in i if k.startswith("content")) for i in feed["items"]] == [
        ["content_text"]
    ] * 2


def test_builds_are_byte_identical(tmp_path: Path) -> None:
    build_feeds(_config(tmp_path / "a"), NOW, BuildCache())
    build_feeds(_config(tmp_path / "b"), NOW, BuildCache())
    first, second = _tree(tmp_path / "a" / "out"), _tree(tmp_path / "b" / "out")
    assert first and first == second


def test_unchanged_files_are_not_rewritten(tmp_path: Path) -> None:
    config = _config(tmp_path)
    first = build_feeds(config, NOW, BuildCache()).feeds
    stamps = {
        p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in config.feeds.output_dir.rglob("*.*")
    }
    second = build_feeds(config, NOW, BuildCache()).feeds
    assert second.written == () and second.removed == ()
    assert len(second.unchanged) == len(first.written) == len(stamps) - 1  # and the manifest
    assert {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in stamps} == stamps


def test_write_atomic_replaces_the_file_in_one_step(tmp_path: Path) -> None:
    target = tmp_path / "feed.xml"
    assert write_atomic(target, b"one") is True
    inode = target.stat().st_ino
    assert write_atomic(target, b"one") is False
    assert write_atomic(target, b"two") is True
    assert target.read_bytes() == b"two"
    assert target.stat().st_ino != inode  # a new file renamed over the old, not rewritten in place
    assert [p.name for p in tmp_path.iterdir()] == ["feed.xml"]  # no temporary file left


def test_an_unwritable_output_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "out"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(OutputError) as caught:
        build_feeds(_config(tmp_path), NOW, BuildCache())
    assert str(caught.value).startswith("cannot write ")


def _copy_content(tmp_path: Path) -> Path:
    content = tmp_path / "content"
    shutil.copytree(REPO / "content", content)
    return content


def test_feeds_of_terms_without_posts_are_removed(tmp_path: Path) -> None:
    content = _copy_content(tmp_path)
    config = _config(tmp_path, content)
    build_feeds(config, NOW, BuildCache())
    out = config.feeds.output_dir
    (out / "index.html").write_text("the site's own file")
    assert (out / "tags" / "microsoft").is_dir()
    post = content / "posts" / "microsoft-ai-safety-ranking.md"
    post.write_text(post.read_text().replace('"Microsoft", ', ""))
    report = build_feeds(config, NOW, BuildCache()).feeds
    assert not (out / "tags" / "microsoft").exists()
    assert sorted(report.removed) == [f"tags/microsoft/{name}" for name in sorted(FEED_FILES)]
    assert (out / "index.html").read_text() == "the site's own file"
    (post).unlink()
    report = build_feeds(config, NOW, BuildCache()).feeds
    assert not (out / "tags" / "安全").exists()


ODD_TITLE = 'Why <b>bold</b> & "quotes" < 5 \x01— עברית مرحبا 🎉' + " long" * 100
ODD_BODY = "Raw \x0b control \x01 text with ]]> and <script>alert(1)</script> & stray < signs, 😀, שלום.\x0b\n\n<b>bold"


def test_odd_content_never_breaks_a_feed(tmp_path: Path) -> None:
    content = tmp_path / "content"
    content.mkdir()
    (content / "odd.md").write_text(
        f'---\ntitle: {json.dumps(ODD_TITLE, ensure_ascii=False)}\ndate: 2026-11-01\ntags: ["C++", "C#", "a/b", "a b", "Node.js", ".."]\n---\n{ODD_BODY}\n',
        encoding="utf-8",
    )
    config = _config(tmp_path, content)
    build_feeds(config, NOW, BuildCache())
    out = config.feeds.output_dir
    expected_title = ODD_TITLE.replace("\x01", "")
    for path in out.rglob("*"):
        if path.name in FEED_FILES:
            folder = path.parent.relative_to(out).as_posix()
            prefix = "" if folder == "." else folder + "/"
            check_feed(path, f"https://example.org/feeds/{quote(prefix)}{path.name}")
    assert feedparser.parse(out / "atom.xml").entries[0].title == expected_title
    assert feedparser.parse(out / "rss.xml").entries[0].title == expected_title
    item = json.loads((out / "feed.json").read_text())["items"][0]
    assert item["title"] == expected_title
    assert "<script" not in item["content_html"]
    assert "text with ]]&gt; and" in item["content_html"]
    folders = sorted(p.name for p in (out / "tags").iterdir())
    assert len(folders) == 6 and all(f and "/" not in f and not f.startswith(".") for f in folders)


def test_rss_plain_text_uses_hexadecimal_references(sample: Path) -> None:
    data = (sample / "rss.xml").read_bytes()
    assert b"&amp;" not in data and b"&lt;" not in data and b"&#x3C;p&#x3E;" in data


def test_a_site_without_posts_still_has_valid_feeds(tmp_path: Path) -> None:
    content = tmp_path / "content"
    content.mkdir()
    build_feeds(_config(tmp_path, content), NOW, BuildCache())
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        MANIFEST_NAME,
        "atom.xml",
        "feed.json",
        "feed.xsl",
        "rss.xml",
    ]
    for name in FEED_FILES:
        check_feed(out / name, f"https://example.org/feeds/{name}")


def test_the_stylesheet_makes_a_readable_page(sample: Path) -> None:
    transform = etree.XSLT(etree.parse(str(sample / "feed.xsl")))
    for name in ("rss.xml", "atom.xml"):
        document = etree.parse(str(sample / name))
        assert document.getroot().getprevious() is not None  # the xml-stylesheet instruction
        page = str(transform(document))
        assert "copy its address into your feed reader" in page
        assert f"https://example.org/feeds/{name}" in page
        assert "Agents in production: what breaks first" in page


def test_checks_catch_broken_feeds(sample: Path) -> None:
    """The validators above must be able to fail."""
    rss = (sample / "rss.xml").read_bytes()
    with pytest.raises(FeedProblem):
        check_rss(
            rss.replace(b"<guid", b"<notguid").replace(b"</guid>", b"</notguid>"),
            "https://example.org/feeds/rss.xml",
        )
    with pytest.raises(FeedProblem):
        check_rss(rss, "https://elsewhere.example/rss.xml")
    atom = (sample / "atom.xml").read_bytes()
    with pytest.raises(FeedProblem):
        check_atom(
            atom.replace(b"<updated>2026-11-28T14:44:56.924000+00:00", b"<updated>yesterday"),
            "https://example.org/feeds/atom.xml",
        )
    feed = json.loads((sample / "feed.json").read_text())
    feed["items"][0]["date_published"] = "28 Nov 2026"
    with pytest.raises(Exception, match="date-time"):
        check_json(json.dumps(feed).encode(), "https://example.org/feeds/feed.json")
    del feed["items"][0]["content_html"]
    feed["items"][0]["date_published"] = "2026-11-28T13:49:22Z"
    with pytest.raises(Exception, match="is not valid under any of the given schemas"):
        check_json(json.dumps(feed).encode(), "https://example.org/feeds/feed.json")


GOLDEN_FILES = ("rss.xml", "atom.xml", "feed.json", "tags/llm/rss.xml", "categories/分析/atom.xml")


@pytest.mark.parametrize("name", GOLDEN_FILES)
def test_golden_feeds(sample: Path, update_golden: bool, name: str) -> None:
    """The sample site's feeds, reviewed by a person; regenerate with --update-golden."""
    golden = GOLDEN / "feeds" / name
    actual = (sample / name).read_bytes()
    if update_golden:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(actual)
    assert golden.read_bytes() == actual


def test_an_authors_page_is_the_atom_uri_and_json_url(tmp_path: Path) -> None:
    content = tmp_path / "content"
    content.mkdir()
    (content / "a.md").write_text(
        '---\ntitle: A\ndate: 2026-11-01\nauthor: "[Jane Doe](https://github.com/jane)"\n---\nHi\n',
        encoding="utf-8",
    )
    build_feeds(_config(tmp_path, content), NOW, None)
    out = tmp_path / "out"
    atom = feedparser.parse((out / "atom.xml").read_bytes()).entries[0]
    assert (atom.author_detail.name, atom.author_detail.href) == (
        "Jane Doe",
        "https://github.com/jane",
    )
    rss = feedparser.parse((out / "rss.xml").read_bytes()).entries[0]
    assert rss.author == "Jane Doe"
    assert b"github.com/jane" not in (out / "rss.xml").read_bytes()
    item = json.loads((out / "feed.json").read_text())["items"][0]
    assert item["authors"] == [{"name": "Jane Doe", "url": "https://github.com/jane"}]
    check_feed(out / "atom.xml", "https://example.org/feeds/atom.xml")
    check_feed(out / "feed.json", "https://example.org/feeds/feed.json")
