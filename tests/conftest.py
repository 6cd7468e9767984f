from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from feedpub.config import Config, SiteConfig, load_config
from feedpub.model import Author, Issue, StateLocation
from tests.postgres import PostgresServer, running_postgres

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO.parent / "shared" / "seeds"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

WritePost = Callable[..., Path]


@pytest.fixture
def site() -> SiteConfig:
    return SiteConfig(
        title="Test Site",
        url="https://example.org/",
        id="example.org",
        description="A site for tests",
        language="en",
        timezone=ZoneInfo("Asia/Shanghai"),
        author=Author("Site Author", "site@example.org"),
    )


@pytest.fixture
def content_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "content"
    directory.mkdir()
    return directory


@pytest.fixture
def write_post(content_dir: Path) -> WritePost:
    """Write a post file under the content folder; ``front`` is YAML text."""

    def write(
        name: str,
        front: str | None = "title: A post\ndate: 2026-11-01T10:00:00Z",
        body: str = "Body text.",
        raw: bytes | None = None,
    ) -> Path:
        path = content_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if raw is not None:
            path.write_bytes(raw)
        elif front is None:
            path.write_text(body, encoding="utf-8")
        else:
            path.write_text(f"---\n{front}\n---\n{body}\n", encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="module")
def config() -> Config:
    """The sample config.yaml as it is, read-only (nothing is built or sent)."""
    return load_config(REPO / "config.yaml")


@pytest.fixture(scope="module")
def issue(config: Config) -> Issue:
    """Issue #1 of the sample site, composed at NOW."""
    from feedpub.pipeline import compose_digest

    draft = compose_digest(config, NOW, frozenset(), 1)
    assert draft.issue is not None
    return draft.issue


def sample_site(folder: Path, state: StateLocation | None = None) -> Config:
    """The bundled sample site with its own copy of the content, and its feeds,
    state (unless ``state`` says where) and outbox in ``folder``."""
    shutil.copytree(REPO / "content", folder / "content")
    config = load_config(REPO / "config.yaml")
    return replace(
        config,
        content=replace(config.content, dir=folder / "content"),
        feeds=replace(config.feeds, output_dir=folder / "feeds"),
        state=state or StateLocation(folder / "state" / "feedpub.db"),
        outbox_dir=folder / "outbox",
    )


@pytest.fixture(params=[0o022, 0o077], ids=["umask-022", "umask-077"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """Each test that takes it runs under the usual umask and under a strict one."""
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="Rewrite the expected files in tests/golden/ from the current output.",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def subscribe_requests(state: StateLocation | Path) -> list[tuple[str, str, int, str | None]]:
    """(address, status, attempts, last reply) of every queued subscribe request,
    oldest first, read straight from the state database."""
    from feedpub.store import Store

    with Store(state) as store:
        rows = store._db.all(
            "SELECT email, status, attempts, last_reply FROM subscribe_requests ORDER BY id"
        )
    return [(r["email"], r["status"], r["attempts"], r["last_reply"]) for r in rows]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole run; each test gets a database of its own."""
    with running_postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def state(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[StateLocation]:
    """The test's state: a SQLite file, then a fresh PostgreSQL database (its
    password in the environment, as state.password_env names it)."""
    path = tmp_path / "state" / "feedpub.db"
    if request.param == "sqlite":
        yield StateLocation(path)
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    name = f"test_{secrets.token_hex(6)}"
    url = server.create_database(name)
    monkeypatch.setenv("FEEDPUB_STATE_PASSWORD", server.password)
    yield StateLocation(path, url)
    server.drop_database(name)
