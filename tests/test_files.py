"""What feedpub leaves on disk: who may read each file."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from feedpub.build import build_feeds
from feedpub.config import Config, load_config
from feedpub.delivery import OutboxDeliverer
from feedpub.output import write_atomic
from tests.conftest import NOW, REPO

MESSAGE = (
    b"Subject: issue 1\r\n\r\nUnsubscribe: https://example.org/newsletter/unsubscribe/t0k3n\r\n"
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o077], ids=["umask-022", "umask-077"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def _site(tmp_path: Path) -> Config:
    """The sample site with its own copy of the content and every output in ``tmp_path``."""
    shutil.copytree(REPO / "content", tmp_path / "content")
    config = load_config(REPO / "config.yaml")
    return replace(
        config,
        content=replace(config.content, dir=tmp_path / "content"),
        feeds=replace(config.feeds, output_dir=tmp_path / "feeds"),
        state_path=tmp_path / "state" / "feedpub.db",
        outbox_dir=tmp_path / "outbox",
    )


def test_feeds_are_public_and_the_build_cache_is_private(tmp_path: Path, umask: int) -> None:
    config = _site(tmp_path)
    build_feeds(config, NOW)
    out = config.feeds.output_dir
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {p.name for p in files} == {"rss.xml", "atom.xml", "feed.json", "feed.xsl"}
    assert {_mode(p) for p in files} == {0o644}
    assert {_mode(p) for p in [out, *out.rglob("*")] if p.is_dir()} == {0o755}
    caches = sorted(config.state_path.parent.iterdir())
    assert [p.name for p in caches] == [
        "build-index.pickle",
        "build-shown.pickle",
        "build-summary.pickle",
    ]
    assert {_mode(p) for p in caches} == {0o600}
    assert _mode(config.state_path.parent) == 0o700


def test_outbox_messages_are_readable_by_their_owner_only(tmp_path: Path, umask: int) -> None:
    outbox = tmp_path / "mail" / "outbox"
    OutboxDeliverer(outbox).send(MESSAGE, "digest@example.org", "ada@example.net", "feedpub.1.a")
    assert _mode(outbox / "feedpub.1.a.eml") == 0o600
    assert _mode(outbox) == _mode(outbox.parent) == 0o700


def test_folders_that_exist_keep_their_mode(tmp_path: Path, umask: int) -> None:
    config = _site(tmp_path)
    config.feeds.output_dir.mkdir(mode=0o700)  # the site keeps its feeds to itself
    config.outbox_dir.mkdir()
    os.chmod(config.outbox_dir, 0o750)
    build_feeds(config, NOW)
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
