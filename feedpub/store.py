"""The state database (SQLite): subscribers, the issues sent, the posts each
issue covered, and every delivery. The only module that imports sqlite3.

Every change is one short transaction, committed before the next step, so a
process killed at any point leaves a state that the next run can finish.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from feedpub.errors import StateError
from feedpub.model import Subscriber

# Each entry moves the schema one version up; PRAGMA user_version says where a file is.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE subscribers (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL,
        email_key TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'unsubscribed', 'bounced')),
        token TEXT NOT NULL UNIQUE,
        tags TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE issues (
        number INTEGER PRIMARY KEY,
        created_at TEXT NOT NULL,
        subject TEXT NOT NULL
    );
    CREATE TABLE issue_posts (
        post_id TEXT PRIMARY KEY,
        issue INTEGER NOT NULL REFERENCES issues (number)
    );
    CREATE TABLE issue_variants (
        issue INTEGER NOT NULL REFERENCES issues (number),
        variant TEXT NOT NULL,
        subject TEXT NOT NULL,
        html TEXT NOT NULL,
        text TEXT NOT NULL,
        PRIMARY KEY (issue, variant)
    );
    CREATE TABLE deliveries (
        issue INTEGER NOT NULL REFERENCES issues (number),
        subscriber INTEGER NOT NULL REFERENCES subscribers (id),
        email TEXT NOT NULL,
        name TEXT NOT NULL,
        token TEXT NOT NULL,
        variant TEXT,
        status TEXT NOT NULL
            CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'skipped')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_reply TEXT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (issue, subscriber)
    );
    CREATE INDEX deliveries_open ON deliveries (issue, status);
    """,
    """
    CREATE TABLE runs (
        job TEXT PRIMARY KEY,
        last_started TEXT,
        last_success TEXT,
        last_outcome TEXT
    );
    """,
    """
    ALTER TABLE subscribers ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
    """,
)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One issue for one subscriber; address, name and token as they were when
    the issue was recorded, so a resumed send addresses the same message."""

    issue: int
    subscriber: int
    email: str
    name: str
    token: str
    variant: str | None
    status: str
    attempts: int
    last_reply: str | None


@dataclass(frozen=True, slots=True)
class Variant:
    subject: str
    html: str
    text: str


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _subscriber(row: sqlite3.Row) -> Subscriber:
    return Subscriber(
        id=row["id"],
        email=row["email"],
        name=row["name"],
        status=row["status"],
        token=row["token"],
        tags=tuple(json.loads(row["tags"])),
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        paused=bool(row["paused"]),
    )


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _delivery(row: sqlite3.Row) -> Delivery:
    return Delivery(**{name: row[name] for name in Delivery.__slots__})


def email_key(email: str) -> str:
    """Addresses are unique ignoring case."""
    return email.strip().casefold()


class Store:
    """An open state database, migrated to the current schema."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA foreign_keys = ON")
            # In WAL mode, NORMAL makes each commit durable when the process dies
            # (kill -9 included); only a power cut can lose the latest commits.
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise StateError(f"cannot use the state database {path}: {exc}") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            raise StateError(f"state database {self.path}: {exc}") from None

    def _migrate(self) -> None:
        with self._transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise StateError(
                    f"{self.path} was written by a newer feedpub (schema {version}); "
                    "upgrade feedpub"
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    # Subscribers.

    def add_subscriber(
        self, email: str, name: str, tags: Sequence[str], status: str, now: datetime
    ) -> Subscriber:
        """Add a subscriber; raises StateError when the address is already listed."""
        if not self.add_subscribers([(email, name, tags, status)], now):
            existing = self.subscriber(email)
            state = f" ({existing.status})" if existing else ""
            raise StateError(f"{email} is already on the list{state}")
        added = self.subscriber(email)
        assert added is not None
        return added

    def add_subscribers(
        self, entries: Sequence[tuple[str, str, Sequence[str], str]], now: datetime
    ) -> int:
        """Add (email, name, tags, status) entries in one transaction, leaving out
        addresses already listed; return how many were added."""
        stamp = _stamp(now)
        with self._transaction() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO subscribers (email, email_key, name, status, token, tags,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        email.strip(),
                        email_key(email),
                        name,
                        status,
                        secrets.token_urlsafe(32),
                        json.dumps(list(tags), ensure_ascii=False),
                        stamp,
                        stamp,
                    )
                    for email, name, tags, status in entries
                ],
            )
            return db.total_changes - before

    def subscriber(self, email: str) -> Subscriber | None:
        row = self._db.execute(
            "SELECT * FROM subscribers WHERE email_key = ?", (email_key(email),)
        ).fetchone()
        return _subscriber(row) if row else None

    def subscriber_by_token(self, token: str) -> Subscriber | None:
        row = self._db.execute("SELECT * FROM subscribers WHERE token = ?", (token,)).fetchone()
        return _subscriber(row) if row else None

    def set_status(self, email: str, status: str, now: datetime) -> Subscriber | None:
        with self._transaction() as db:
            db.execute(
                "UPDATE subscribers SET status = ?, updated_at = ? WHERE email_key = ?",
                (status, _stamp(now), email_key(email)),
            )
        return self.subscriber(email)

    def recipients(self) -> list[Subscriber]:
        """Who gets the next issue: active subscribers who have not paused."""
        rows = self._db.execute(
            "SELECT * FROM subscribers WHERE status = 'active' AND paused = 0 ORDER BY id"
        )
        return [_subscriber(row) for row in rows]

    def set_preferences(self, token: str, tags: Sequence[str], paused: bool, now: datetime) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE subscribers SET tags = ?, paused = ?, updated_at = ? WHERE token = ?",
                (json.dumps(list(tags), ensure_ascii=False), int(paused), _stamp(now), token),
            )

    def set_status_by_token(self, token: str, status: str, now: datetime) -> Subscriber | None:
        with self._transaction() as db:
            db.execute(
                "UPDATE subscribers SET status = ?, updated_at = ? WHERE token = ?",
                (status, _stamp(now), token),
            )
        return self.subscriber_by_token(token)

    def issues(self) -> list[tuple[int, datetime, str]]:
        rows = self._db.execute(
            "SELECT number, created_at, subject FROM issues ORDER BY number DESC"
        )
        return [(r[0], datetime.fromisoformat(r[1]), r[2]) for r in rows]

    def subscribers(self, status: str | None = None) -> list[Subscriber]:
        if status is None:
            rows = self._db.execute("SELECT * FROM subscribers ORDER BY id")
        else:
            rows = self._db.execute(
                "SELECT * FROM subscribers WHERE status = ? ORDER BY id", (status,)
            )
        return [_subscriber(row) for row in rows]

    # The ledger of issues and deliveries.

    def included_post_ids(self) -> frozenset[str]:
        return frozenset(row[0] for row in self._db.execute("SELECT post_id FROM issue_posts"))

    def next_issue_number(self) -> int:
        return int(
            self._db.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM issues").fetchone()[0]
        )

    def unfinished_issues(self) -> list[int]:
        """Issues with deliveries not yet done, oldest first."""
        rows = self._db.execute(
            "SELECT DISTINCT issue FROM deliveries WHERE status IN ('pending', 'sending')"
            " ORDER BY issue"
        )
        return [row[0] for row in rows]

    def record_issue(
        self,
        number: int,
        created_at: datetime,
        subject: str,
        covered: Sequence[str],
        variants: Mapping[str, Variant],
        recipients: Sequence[tuple[Subscriber, str | None]],
    ) -> None:
        """Record a new issue, the posts it covers, its rendered variants and one
        delivery per recipient (variant None: nothing for them, recorded as skipped),
        all in one transaction: either the whole issue exists or none of it."""
        stamp = _stamp(created_at)
        try:
            with self._transaction() as db:
                db.execute(
                    "INSERT INTO issues (number, created_at, subject) VALUES (?, ?, ?)",
                    (number, stamp, subject),
                )
                db.executemany(
                    "INSERT INTO issue_posts (post_id, issue) VALUES (?, ?)",
                    [(post_id, number) for post_id in covered],
                )
                db.executemany(
                    "INSERT INTO issue_variants (issue, variant, subject, html, text)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [(number, key, v.subject, v.html, v.text) for key, v in variants.items()],
                )
                db.executemany(
                    "INSERT INTO deliveries (issue, subscriber, email, name, token, variant,"
                    " status, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            number,
                            s.id,
                            s.email,
                            s.name,
                            s.token,
                            variant,
                            "skipped" if variant is None else "pending",
                            stamp,
                        )
                        for s, variant in recipients
                    ],
                )
        except sqlite3.IntegrityError as exc:
            raise StateError(f"issue #{number} conflicts with the ledger: {exc}") from None

    def issue_time(self, number: int) -> datetime:
        row = self._db.execute("SELECT created_at FROM issues WHERE number = ?", (number,))
        return datetime.fromisoformat(row.fetchone()[0])

    def variant(self, number: int, key: str) -> Variant:
        row = self._db.execute(
            "SELECT subject, html, text FROM issue_variants WHERE issue = ? AND variant = ?",
            (number, key),
        ).fetchone()
        return Variant(row["subject"], row["html"], row["text"])

    def open_deliveries(self, number: int) -> list[Delivery]:
        rows = self._db.execute(
            "SELECT * FROM deliveries WHERE issue = ? AND status IN ('pending', 'sending')"
            " ORDER BY subscriber",
            (number,),
        )
        return [_delivery(row) for row in rows]

    def mark_sending(self, delivery: Delivery, now: datetime) -> None:
        """Committed before the message leaves: a crash now leaves it 'sending',
        and the next run sends that one message again (with the same Message-ID)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE deliveries SET status = 'sending', attempts = attempts + 1,"
                " updated_at = ? WHERE issue = ? AND subscriber = ?",
                (_stamp(now), delivery.issue, delivery.subscriber),
            )

    def mark_done(self, delivery: Delivery, status: str, reply: str | None, now: datetime) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE deliveries SET status = ?, last_reply = ?, updated_at = ?"
                " WHERE issue = ? AND subscriber = ?",
                (status, reply, _stamp(now), delivery.issue, delivery.subscriber),
            )

    def run_started(self, job: str, now: datetime) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO runs (job, last_started) VALUES (?, ?)"
                " ON CONFLICT (job) DO UPDATE SET last_started = excluded.last_started",
                (job, _stamp(now)),
            )

    def run_finished(self, job: str, now: datetime, outcome: str, success: bool) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE runs SET last_outcome = ?,"
                " last_success = CASE WHEN ? THEN ? ELSE last_success END WHERE job = ?",
                (outcome, success, _stamp(now), job),
            )

    def last_success(self, job: str) -> datetime | None:
        row = self._db.execute("SELECT last_success FROM runs WHERE job = ?", (job,)).fetchone()
        return _moment(row[0]) if row else None

    def deliveries(self, number: int) -> list[Delivery]:
        rows = self._db.execute(
            "SELECT * FROM deliveries WHERE issue = ? ORDER BY subscriber", (number,)
        )
        return [_delivery(row) for row in rows]


@contextmanager
def exclusive_lock(state_path: Path, purpose: str) -> Iterator[None]:
    """Hold a lock beside the state file for as long as the block runs.

    The operating system drops it when the process ends in any way, kill -9
    included, so a crashed run never leaves a stale lock.
    """
    lock_path = state_path.with_name(state_path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(handle, 100, 0).decode(errors="replace").strip()
            raise StateError(
                f"another feedpub process is using {state_path} ({holder or 'unknown'}); "
                "try again when it has finished"
            ) from None
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"{purpose}, pid {os.getpid()}".encode(), 0)
        yield
    finally:
        os.close(handle)
