"""What feedpub leaves on disk: who may read each file, and which files in the
feed folder are its own, listed in the manifest, and so may be removed."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from feedpub.build import build_feeds
from feedpub.buildcache import BuildCache
from feedpub.delivery import OutboxDeliverer
from feedpub.output import (
    MANIFEST_NAME,
    Manifest,
    read_manifest,
    write_atomic,
    write_manifest,
    write_once,
)
from tests.conftest import NOW, sample_site

MESSAGE = (
    b"Subject: issue 1\r\n\r\nUnsubscribe: https://example.org/newsletter/unsubscribe/t0k3n\r\n"
)

FEED_FILES = ("rss.xml", "atom.xml", "feed.json")
# Files the site put in the feed folder itself: no build may touch them.
HAND_PLACED = {
    "podcast/rss.xml": b"<rss>the site's own podcast</rss>",
    "tags/podcast/feed.json": b'{"version": "a hand-made feed"}',
    "index.html": b"<p>feeds of this site</p>",
}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


# Modes.


def test_feeds_are_public_and_the_build_cache_is_private(tmp_path: Path, umask: int) -> None:
    config = sample_site(tmp_path)
    build_feeds(config, NOW, BuildCache())
    out = config.feeds.output_dir
    files = [out / rel for rel in _files(out)]
    names = {p.name for p in files}
    assert names == {"rss.xml", "atom.xml", "feed.json", "feed.xsl", MANIFEST_NAME}
    assert {_mode(p) for p in files} == {0o644}
    assert {_mode(p) for p in [out, *out.rglob("*")] if p.is_dir()} == {0o755}
    caches = sorted(config.state.path.parent.iterdir())
    assert [p.name for p in caches] == [
        "build-index.pickle",
        "build-shown.pickle",
        "build-summary.pickle",
    ]
    assert {_mode(p) for p in caches} == {0o600}
    assert _mode(config.state.path.parent) == 0o700


def test_outbox_messages_are_readable_by_their_owner_only(tmp_path: Path, umask: int) -> None:
    outbox = tmp_path / "mail" / "outbox"
    OutboxDeliverer(outbox).send(MESSAGE, "digest@example.org", "ada@example.net", "feedpub.1.a")
    assert _mode(outbox / "feedpub.1.a.eml") == 0o600
    assert _mode(outbox) == _mode(outbox.parent) == 0o700


def test_folders_that_exist_keep_their_mode(tmp_path: Path, umask: int) -> None:
    config = sample_site(tmp_path)
    config.feeds.output_dir.mkdir(mode=0o700)  # the site keeps its feeds to itself
    config.outbox_dir.mkdir()
    os.chmod(config.outbox_dir, 0o750)
    build_feeds(config, NOW, BuildCache())
    OutboxDeliverer(config.outbox_dir).send(MESSAGE, "digest@example.org", "ada@example.net", "m")
    assert _mode(config.feeds.output_dir) == 0o700
    assert _mode(config.outbox_dir) == 0o750
    assert _mode(config.outbox_dir / "m.eml") == 0o600


def test_a_private_file_an_older_release_left_readable_is_made_private(tmp_path: Path) -> None:
    cache = tmp_path / "build-summary.pickle"
    cache.write_bytes(b"the same bytes")
    os.chmod(cache, 0o644)
    assert write_atomic(cache, b"the same bytes") is True
    assert _mode(cache) == 0o600
    assert write_atomic(cache, b"the same bytes") is False


def test_write_once_never_replaces_a_file(tmp_path: Path) -> None:
    target = tmp_path / "feedpub.1.a.eml"
    assert write_once(target, b"one") is True
    inode = target.stat().st_ino
    assert write_once(target, b"one") is False  # written before: left as it is
    with pytest.raises(FileExistsError):
        write_once(target, b"two")
    assert target.read_bytes() == b"one" and target.stat().st_ino == inode
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary file left


# The manifest: what feedpub wrote in the feed folder, and so may remove.


def _place(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def _assert_manifest_lists_the_builds_files(root: Path) -> None:
    listed = read_manifest(root).files
    assert listed == _files(root) - HAND_PLACED.keys() - {MANIFEST_NAME}
    assert json.loads((root / MANIFEST_NAME).read_text())["files"] == sorted(listed)
    for rel, data in HAND_PLACED.items():
        assert (root / rel).read_bytes() == data


def test_files_feedpub_did_not_write_survive_every_build(tmp_path: Path) -> None:
    config = sample_site(tmp_path)
    out = config.feeds.output_dir
    _place(out, HAND_PLACED)
    cold = build_feeds(config, NOW, BuildCache())
    assert cold.feeds.removed == () and len(cold.feeds.written) == 52
    _assert_manifest_lists_the_builds_files(out)

    post = config.content.dir / "posts" / "microsoft-ai-safety-ranking.md"
    post.write_text(post.read_text() + "\nOne more line.\n")
    warm = build_feeds(config, NOW, BuildCache())  # the cache's short road
    assert warm.feeds.removed == () and "rss.xml" in warm.feeds.written
    _assert_manifest_lists_the_builds_files(out)

    post.write_text(post.read_text().replace('"Microsoft", ', ""))
    retagged = build_feeds(config, NOW, BuildCache())  # a tag disappears: feedpub's own feeds go
    assert retagged.feeds.removed == tuple(f"tags/microsoft/{n}" for n in sorted(FEED_FILES))
    assert not (out / "tags" / "microsoft").exists()
    _assert_manifest_lists_the_builds_files(out)

    plain = replace(config, feeds=replace(config.feeds, stylesheet=False))
    assert build_feeds(plain, NOW, BuildCache()).feeds.removed == ("feed.xsl",)
    _assert_manifest_lists_the_builds_files(out)


def test_a_folder_without_a_manifest_loses_nothing_this_build_did_not_write(
    tmp_path: Path,
) -> None:
    config = sample_site(tmp_path)
    out = config.feeds.output_dir
    build_feeds(config, NOW, None)
    (out / MANIFEST_NAME).unlink()  # as a folder an older release wrote
    post = config.content.dir / "posts" / "microsoft-ai-safety-ranking.md"
    post.write_text(post.read_text().replace('"Microsoft", ', ""))
    report = build_feeds(config, NOW, None)
    assert report.feeds.removed == ()
    assert (out / "tags" / "microsoft" / "rss.xml").exists()  # not known to be feedpub's
    assert "tags/microsoft/rss.xml" not in read_manifest(out).files
    assert read_manifest(out).files == set(report.feeds.written) | set(report.feeds.unchanged)


def test_a_build_with_nothing_to_do_restores_the_manifest(tmp_path: Path) -> None:
    config = sample_site(tmp_path)
    out = config.feeds.output_dir
    build_feeds(config, NOW, BuildCache())
    listed = read_manifest(out).files
    (out / MANIFEST_NAME).unlink()
    assert build_feeds(config, NOW, BuildCache()).feeds.written == ()
    assert read_manifest(out).files == listed
    (out / MANIFEST_NAME).write_text("[damaged")
    assert build_feeds(config, NOW, BuildCache()).feeds.written == ()
    assert read_manifest(out).files == listed


def test_a_build_removes_nothing_outside_its_folder(tmp_path: Path) -> None:
    config = sample_site(tmp_path)
    precious = tmp_path / "precious.txt"
    precious.write_text("not feedpub's")
    _place(config.feeds.output_dir, {MANIFEST_NAME: b'["rss.xml", "../precious.txt"]'})
    assert build_feeds(config, NOW, BuildCache()).feeds.removed == ()
    assert precious.read_text() == "not feedpub's"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[damaged",
        '{"rss.xml": true}',
        '["rss.xml", 3]',
        '["rss.xml", "../precious.txt"]',
        '["/etc/passwd"]',
        '["tags//rss.xml"]',
        '["./rss.xml"]',
        f'["{MANIFEST_NAME}"]',
        '{"files": "rss.xml"}',
        '{"files": ["../precious.txt"], "terms": {}}',
        '{"terms": {"tags/a/": "A"}}',
    ],
)
def test_a_damaged_manifest_lists_nothing(tmp_path: Path, text: str) -> None:
    (tmp_path / MANIFEST_NAME).write_text(text)
    assert read_manifest(tmp_path).files == frozenset()


def test_a_manifest_lists_relative_paths(tmp_path: Path) -> None:
    assert read_manifest(tmp_path).files == frozenset()  # none yet
    (tmp_path / MANIFEST_NAME).write_text('["rss.xml", "tags/安全/atom.xml"]')
    assert read_manifest(tmp_path).files == {"rss.xml", "tags/安全/atom.xml"}
    (tmp_path / MANIFEST_NAME).write_bytes(b'["\xff"]')
    assert read_manifest(tmp_path).files == frozenset()


def test_a_manifest_keeps_the_term_names_it_is_given(tmp_path: Path) -> None:
    write_manifest(tmp_path, {"rss.xml", "tags/ai/rss.xml"}, {"tags/ai/": "AI"})
    assert read_manifest(tmp_path) == Manifest(
        frozenset({"rss.xml", "tags/ai/rss.xml"}), {"tags/ai/": "AI"}
    )
    (tmp_path / MANIFEST_NAME).write_text('{"files": ["rss.xml"], "terms": {"tags/ai/": 3}}')
    assert read_manifest(tmp_path) == Manifest(frozenset({"rss.xml"}), {})
