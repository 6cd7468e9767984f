"""The state database: its file modes, its schema, and the subscriber rules
kept in it (tokens retired when someone leaves, single-use nonces)."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from feedpub.errors import StateError
from feedpub.model import Issue
from feedpub.store import MIGRATIONS, Store, exclusive_lock
from tests.conftest import NOW


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_files_are_readable_by_their_owner_only(tmp_path: Path, umask: int) -> None:
    path = tmp_path / "state" / "feedpub.db"
    with Store(path) as store, exclusive_lock(path, "test"):
        store.add_subscriber("ada@example.net", "Ada", (), "active", NOW)
        assert _mode(path.parent) == 0o700
        assert _mode(path) == 0o600
        assert _mode(path.with_name("feedpub.db-wal")) == 0o600
        assert _mode(path.with_name("feedpub.db-shm")) == 0o600
        assert _mode(path.with_name("feedpub.db.lock")) == 0o600


def test_an_older_world_readable_state_is_tightened(tmp_path: Path, umask: int) -> None:
    path = tmp_path / "feedpub.db"
    sqlite3.connect(path).close()
    path.chmod(0o644)
    Store(path).close()
    assert _mode(path) == 0o600


def test_schema_versions(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with Store(path) as store:
        assert store.schema_version == len(MIGRATIONS) == 7
    older = tmp_path / "older.db"  # a file from before the runs table: migrated on open
    db = sqlite3.connect(older)
    for statement in MIGRATIONS[0].split(";"):
        db.execute(statement)
    db.execute("PRAGMA user_version = 1")
    db.execute(
        "INSERT INTO subscribers (email, email_key, status, token, created_at, updated_at)"
        " VALUES ('a@example.org', 'a@example.org', 'active', 't', '2026-01-01', '2026-01-01')"
    )
    db.commit()
    db.close()
    with Store(older) as store:
        assert store.schema_version == 7
        assert store.last_success("digest") is None
        assert [s.email for s in store.subscribers()] == ["a@example.org"]
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(
        StateError, match=r"was written by a newer feedpub \(schema 99\); upgrade feedpub"
    ):
        Store(path)


def test_leaving_and_coming_back_retire_the_token(tmp_path: Path) -> None:
    with Store(tmp_path / "state.db") as store:
        ada = store.add_subscriber("ada@example.net", "Ada", (), "active", NOW)
        left = store.set_status_by_token(ada.token, "unsubscribed", NOW)
        assert left is not None and left.status == "unsubscribed" and left.token != ada.token
        assert store.subscriber_by_token(ada.token) is None
        assert store.retired_token_owner(ada.token) == left
        back = store.set_status("ada@example.net", "active", NOW)
        assert back is not None and back.token not in (ada.token, left.token)
        paused = store.set_status("ada@example.net", "pending", NOW)
        assert paused is not None and paused.token == back.token  # no one left: kept


def test_a_nonce_is_spent_once_and_dies_with_the_token(tmp_path: Path) -> None:
    with Store(tmp_path / "state.db") as store:
        day = NOW - timedelta(days=1)
        prepared = store.prepare_confirmation("bob@example.net", "Bob", NOW, day, 3)
        assert prepared is not None
        bob, nonce = prepared
        assert bob.status == "pending" and nonce != bob.token
        assert store.use_confirmation(nonce, NOW, NOW - timedelta(hours=48)) is not None
        assert store.use_confirmation(nonce, NOW, NOW - timedelta(hours=48)) is None
        assert store.subscriber("bob@example.net").status == "active"  # type: ignore[union-attr]
        assert store.prepare_confirmation("bob@example.net", "Bob", NOW, day, 3) is None
        store.set_status("bob@example.net", "unsubscribed", NOW)
        again = store.prepare_confirmation("bob@example.net", "Bob", NOW, day, 3)
        assert again is not None
        store.set_status("bob@example.net", "bounced", NOW)  # leaves before confirming
        assert store.use_confirmation(again[1], NOW, NOW - timedelta(hours=48)) is None
        # The database keeps no nonce that opens anything.
        stored = store._db.execute("SELECT nonce_hash FROM confirmations").fetchall()
        assert nonce not in {row[0] for row in stored}


def test_a_claimed_request_goes_to_one_sender_until_its_lease_ends(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with Store(path) as first, Store(path) as second:
        first.queue_subscribe_request("carol@example.net", "", NOW)
        claimed = first.claim_subscribe_request(NOW)
        assert claimed is not None and claimed.attempts == 1
        assert second.claim_subscribe_request(NOW) is None
        # The first sender died without a word: after the lease, another takes it.
        later = second.claim_subscribe_request(NOW + timedelta(minutes=11))
        assert later is not None and later.id == claimed.id and later.attempts == 2


def test_an_issue_is_read_back_as_recorded_for_each_variant(tmp_path: Path) -> None:
    whole = Issue(1, NOW, "Digest #1", "<p>all</p>", "all")
    tagged = Issue(1, NOW, "Digest #1: llm", "<p>llm</p>", "llm")
    with Store(tmp_path / "state.db") as store:
        store.record_issue(1, NOW, whole.subject, ["urn:uuid:a"], {"": whole, "llm": tagged}, [])
    with Store(tmp_path / "state.db") as store:
        assert store.issue(1, "") == whole and store.issue(1, "llm") == tagged
        assert store.issue(1, "robots") is None and store.issue(2, "") is None


def test_unfinished_issues_are_found_by_the_index_of_open_deliveries(tmp_path: Path) -> None:
    """The index holds open deliveries only, and the look-up of them reads it."""
    with Store(tmp_path / "state.db") as store:
        query = "SELECT DISTINCT issue FROM deliveries WHERE status IN ('pending', 'sending')"
        plan = " ".join(str(row[3]) for row in store._db.execute(f"EXPLAIN QUERY PLAN {query}"))
    assert "deliveries_open" in plan, plan


def test_opening_the_state_again_keeps_the_locks_of_connections_open(tmp_path: Path) -> None:
    # A daemon opens the state in several threads at once (digest, bounces, the web
    # app). Closing any descriptor of the file would drop this process's POSIX locks,
    # SQLite's included, and let another process write in the middle of a transaction.
    path = tmp_path / "state.db"
    writer = Store(path)
    writer._db.execute("BEGIN IMMEDIATE")
    try:
        Store(path).close()  # another thread's open and close, meanwhile
        other = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sqlite3, sys; db = sqlite3.connect(sys.argv[1], timeout=0,"
                " isolation_level=None); db.execute('BEGIN IMMEDIATE')",
                str(path),
            ],
            capture_output=True,
            text=True,
        )
        assert other.returncode != 0 and "database is locked" in other.stderr
    finally:
        writer._db.execute("ROLLBACK")
        writer.close()
