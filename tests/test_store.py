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
from feedpub.model import Issue, StateLocation
from feedpub.store import (
    HEAD,
    TAKEN_OVER,
    WORKERS,
    JobLock,
    StateDatabase,
    Store,
    job_lock,
    workers_running,
)
from tests.conftest import NOW
from tests.legacy_schema import legacy_state


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_files_are_readable_by_their_owner_only(tmp_path: Path, umask: int) -> None:
    path = tmp_path / "state" / "feedpub.db"
    with StateDatabase(StateLocation(path)) as state, Store(state) as store:
        held = job_lock(state, "digest", "test")
        held.__enter__()
        store.add_subscriber("ada@example.net", "Ada", (), "active", NOW)
        assert _mode(path.parent) == 0o700
        assert _mode(path) == 0o600
        assert _mode(path.with_name("feedpub.db-wal")) == 0o600
        assert _mode(path.with_name("feedpub.db-shm")) == 0o600
        assert _mode(path.with_name("feedpub.db.digest.lock")) == 0o600
        held.__exit__(None, None, None)


def test_an_older_world_readable_state_is_tightened(tmp_path: Path, umask: int) -> None:
    path = tmp_path / "feedpub.db"
    sqlite3.connect(path).close()
    path.chmod(0o644)
    Store(path).close()
    assert _mode(path) == 0o600


def test_schema_versions(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with Store(path) as store:
        assert store.schema_version == HEAD == "0008"
    older = tmp_path / "older.db"  # a file from before the runs table: migrated on open
    db = sqlite3.connect(legacy_state(older, 1))
    db.execute(
        "INSERT INTO subscribers (email, email_key, status, token, created_at, updated_at)"
        " VALUES ('a@example.org', 'a@example.org', 'active', 't', '2026-01-01', '2026-01-01')"
    )
    db.commit()
    db.close()
    with Store(older) as store:
        assert store.schema_version == HEAD
        assert store.last_success("digest") is None
        assert [s.email for s in store.subscribers()] == ["a@example.org"]
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.execute("UPDATE alembic_version SET version_num = '0099'")
    db.commit()
    db.close()
    with pytest.raises(
        StateError, match=r"was written by a newer feedpub \(schema 0099\); upgrade feedpub"
    ):
        Store(path)


def test_leaving_and_coming_back_retire_the_token(state: StateLocation) -> None:
    with Store(state) as store:
        ada = store.add_subscriber("ada@example.net", "Ada", (), "active", NOW)
        left = store.set_status_by_token(ada.token, "unsubscribed", NOW)
        assert left is not None and left.status == "unsubscribed" and left.token != ada.token
        assert store.subscriber_by_token(ada.token) is None
        assert store.retired_token_owner(ada.token) == left
        back = store.set_status("ada@example.net", "active", NOW)
        assert back is not None and back.token not in (ada.token, left.token)
        paused = store.set_status("ada@example.net", "pending", NOW)
        assert paused is not None and paused.token == back.token  # no one left: kept


def test_a_nonce_is_spent_once_and_dies_with_the_token(state: StateLocation) -> None:
    with Store(state) as store:
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
        stored = store._db.all("SELECT nonce_hash FROM confirmations")
        assert nonce not in {row["nonce_hash"] for row in stored}


def test_a_claimed_request_goes_to_one_sender_until_its_lease_ends(state: StateLocation) -> None:
    with Store(state) as first, Store(state) as second:
        first.queue_subscribe_request("carol@example.net", "", NOW)
        claimed = first.claim_subscribe_request(NOW)
        assert claimed is not None and claimed.attempts == 1
        assert second.claim_subscribe_request(NOW) is None
        # The first sender died without a word: after the lease, another takes it.
        later = second.claim_subscribe_request(NOW + timedelta(minutes=11))
        assert later is not None and later.id == claimed.id and later.attempts == 2


def test_an_issue_is_read_back_as_recorded_for_each_variant(state: StateLocation) -> None:
    whole = Issue(1, NOW, "Digest #1", "<p>all</p>", "all")
    tagged = Issue(1, NOW, "Digest #1: llm", "<p>llm</p>", "llm")
    with Store(state) as store:
        store.record_issue(1, NOW, whole.subject, ["urn:uuid:a"], {"": whole, "llm": tagged}, [])
    with Store(state) as store:
        assert store.issue(1, "") == whole and store.issue(1, "llm") == tagged
        assert store.issue(1, "robots") is None and store.issue(2, "") is None


def test_unfinished_issues_are_found_by_the_index_of_open_deliveries(tmp_path: Path) -> None:
    """The index holds open deliveries only, and the look-up of them reads it."""
    with Store(tmp_path / "state.db") as store:
        query = "SELECT DISTINCT issue FROM deliveries WHERE status IN ('pending', 'sending')"
        plan = " ".join(str(row["detail"]) for row in store._db.all(f"EXPLAIN QUERY PLAN {query}"))
    assert "deliveries_open" in plan, plan


def test_opening_the_state_again_keeps_the_locks_of_connections_open(tmp_path: Path) -> None:
    # A daemon opens the state in several threads at once (digest, bounces, the web
    # app). Closing any descriptor of the file would drop this process's POSIX locks,
    # SQLite's included, and let another process write in the middle of a transaction.
    path = tmp_path / "state.db"
    writer = Store(path)
    writer._connection.exec_driver_sql("BEGIN IMMEDIATE")
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
        writer._connection.exec_driver_sql("ROLLBACK")
        writer.close()


def _issue_for(store: Store, count: int) -> None:
    people = [(f"r{i:03}@example.net", "", (), "active") for i in range(count)]
    store.add_subscribers(people, NOW)
    issue = Issue(1, NOW, "Digest #1", "<p>all</p>", "all")
    recipients = [(s, "") for s in store.recipients()]
    store.record_issue(1, NOW, issue.subject, ["urn:uuid:a"], {"": issue}, recipients)


def test_workers_claim_disjoint_batches_and_take_over_an_expired_lease(
    state: StateLocation,
) -> None:
    lease = timedelta(seconds=30)
    with Store(state) as first, Store(state) as second:
        _issue_for(first, 5)
        mine = first.claim_deliveries(1, "a", NOW, lease, 3)
        theirs = second.claim_deliveries(1, "b", NOW, lease, 3)
        assert len(mine) == 3 and len(theirs) == 2
        assert not {d.subscriber for d in mine} & {d.subscriber for d in theirs}
        assert second.claim_deliveries(1, "b", NOW, lease, 3) == []
        assert first.holders(1, "b", NOW) == ["a"]
        # b may not send what a holds; a marks one as leaving, then dies.
        assert second.start_sending(mine[0], NOW, worker="b") == TAKEN_OVER
        assert first.start_sending(mine[0], NOW, worker="a") is None
        later = NOW + lease + timedelta(seconds=1)
        taken = second.claim_deliveries(1, "b", later, lease, 10)
        assert {d.subscriber for d in mine} <= {d.subscriber for d in taken}
        assert {d.status for d in taken} == {"pending", "sending"}  # the one in flight again
        assert first.start_sending(mine[1], later, worker="a") == TAKEN_OVER
        second.record_settled([(d, "sent", "250 ok") for d in taken], later)
        assert first.tally(1).sent == 5 and first.tally(1).open == 0


def test_a_dead_workers_leases_end_at_once(state: StateLocation) -> None:
    lease = timedelta(minutes=10)
    with Store(state) as store:
        _issue_for(store, 2)
        held = store.claim_deliveries(1, "gone", NOW, lease, 10)
        assert len(held) == 2 and store.claim_deliveries(1, "me", NOW, lease, 10) == []
        store.end_leases(1, "gone")
        assert len(store.claim_deliveries(1, "me", NOW, lease, 10)) == 2


def test_a_put_off_delivery_stays_with_its_worker_until_released(state: StateLocation) -> None:
    lease = timedelta(minutes=10)
    with Store(state) as store:
        _issue_for(store, 1)
        (delivery,) = store.claim_deliveries(1, "me", NOW, lease, 10)
        store.start_sending(delivery, NOW, worker="me")
        store.record_settled([(delivery, "pending", "451 later")], NOW)
        assert store.claim_deliveries(1, "me", NOW, lease, 10) == []  # not again this run
        store.release_deliveries("me")
        assert len(store.claim_deliveries(1, "other", NOW, lease, 10)) == 1


def test_a_job_lock_keeps_out_a_second_holder(state: StateLocation) -> None:
    with StateDatabase(state) as one, StateDatabase(state) as two:
        with job_lock(one, "digest", "digest send"):
            refused = pytest.raises(
                StateError, match=r"another feedpub process is running the digest"
            )
            with refused, job_lock(two, "digest", "digest send"):
                pass
            with job_lock(two, "build", "build"):  # another job: no conflict
                pass
        with job_lock(two, "digest", "digest send"):  # let go: free again
            pass


def test_workers_are_seen_while_they_hold_their_shared_lock(state: StateLocation) -> None:
    with StateDatabase(state) as one, StateDatabase(state) as two:
        assert not workers_running(two)
        first, second = (JobLock(one, WORKERS, "worker", shared=True) for _ in range(2))
        assert first.take() and second.take()  # any number of workers at once
        assert workers_running(two)
        first.release()
        assert workers_running(two)
        second.release()
        assert not workers_running(two)
