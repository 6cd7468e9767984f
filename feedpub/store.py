"""The state database (SQLite): subscribers, the issues sent, the posts each
issue covered, and every delivery. The only module that imports sqlite3.

Every change is one short transaction, committed before the next step, so a
process killed at any point leaves a state that the next run can finish.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
    """
    CREATE TABLE subscribe_requests (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL,
        name TEXT NOT NULL,
        requested_at TEXT NOT NULL,
        status TEXT NOT NULL
            CHECK (status IN ('queued', 'ready', 'sending', 'sent', 'dropped', 'failed')),
        message BLOB,
        recipient TEXT,
        message_name TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt TEXT NOT NULL,
        claimed_at TEXT,
        last_reply TEXT
    );
    CREATE INDEX subscribe_requests_due ON subscribe_requests (status, next_attempt);
    CREATE TABLE confirmations (
        nonce_hash TEXT PRIMARY KEY,
        subscriber INTEGER NOT NULL REFERENCES subscribers (id),
        created_at TEXT NOT NULL,
        used_at TEXT
    );
    CREATE INDEX confirmations_by_subscriber ON confirmations (subscriber, created_at);
    CREATE TABLE retired_tokens (
        token TEXT PRIMARY KEY,
        subscriber INTEGER NOT NULL REFERENCES subscribers (id),
        retired_at TEXT NOT NULL
    );
    """,
)
# Statuses a subscribe request moves through: 'queued' (as the web form left it),
# then 'ready' (message composed) or 'dropped' (nothing to send), then 'sending'
# (claimed by one sender), then 'sent' or 'failed'.
CLAIM_LEASE = timedelta(minutes=10)
# Statuses off the list: entering or leaving them retires the subscriber's token.
INACTIVE = frozenset({"unsubscribed", "bounced"})


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
class SubscribeRequest:
    """A subscribe form's request, claimed by one sender; ``message`` is the
    confirmation once composed, kept until it is sent."""

    id: int
    email: str
    name: str
    message: bytes | None
    recipient: str | None
    message_name: str | None
    attempts: int


@dataclass(frozen=True, slots=True)
class Confirmation:
    subscriber: int
    created_at: datetime
    used_at: datetime | None


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


def _change_status(db: sqlite3.Connection, subscriber_id: int, status: str, stamp: str) -> None:
    """Set a subscriber's status. Leaving the list, or coming back to it, retires
    the token (old manage and unsubscribe links stop opening anything) and any
    confirmation link not yet used."""
    old = db.execute(
        "SELECT status, token FROM subscribers WHERE id = ?", (subscriber_id,)
    ).fetchone()
    if old is None or old["status"] == status:
        return
    if status in INACTIVE or old["status"] in INACTIVE:
        db.execute(
            "INSERT OR IGNORE INTO retired_tokens (token, subscriber, retired_at) VALUES (?, ?, ?)",
            (_digest(old["token"]), subscriber_id, stamp),
        )
        db.execute(
            "DELETE FROM confirmations WHERE subscriber = ? AND used_at IS NULL", (subscriber_id,)
        )
        db.execute(
            "UPDATE subscribers SET status = ?, token = ?, updated_at = ? WHERE id = ?",
            (status, secrets.token_urlsafe(32), stamp, subscriber_id),
        )
    else:
        db.execute(
            "UPDATE subscribers SET status = ?, updated_at = ? WHERE id = ?",
            (status, stamp, subscriber_id),
        )


def _delivery(row: sqlite3.Row) -> Delivery:
    return Delivery(**{name: row[name] for name in Delivery.__slots__})


def _private_file(path: Path, *, create: bool = True) -> None:
    """Make sure only its owner can read ``path`` (created if missing and ``create``):
    the state holds addresses and tokens."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        handle = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o600)
    except FileNotFoundError:
        return
    try:
        if os.fstat(handle).st_mode & 0o077:  # made by an older release, or by hand
            os.fchmod(handle, 0o600)
    finally:
        os.close(handle)


def _digest(secret: str) -> str:
    """How a single-use secret is stored: a copy of the database opens no link."""
    return hashlib.sha256(secret.encode()).hexdigest()


def email_key(email: str) -> str:
    """Addresses are unique ignoring case."""
    return email.strip().casefold()


class Store:
    """An open state database, migrated to the current schema."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            _private_file(path)
            # SQLite gives the -wal and -shm files the database's mode; these
            # two may be left from an older release.
            for end in ("-wal", "-shm"):
                _private_file(path.with_name(path.name + end), create=False)
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
        row = self._db.execute(
            "SELECT id FROM subscribers WHERE email_key = ?", (email_key(email),)
        ).fetchone()
        if row is not None:
            with self._transaction() as db:
                _change_status(db, row[0], status, _stamp(now))
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
        """Change the status of the subscriber with ``token``; when that retires the
        token, the subscriber is returned under the new one."""
        row = self._db.execute("SELECT id FROM subscribers WHERE token = ?", (token,)).fetchone()
        if row is None:
            return None
        with self._transaction() as db:
            _change_status(db, row[0], status, _stamp(now))
        return self._subscriber_by_id(row[0])

    def _subscriber_by_id(self, subscriber_id: int) -> Subscriber | None:
        row = self._db.execute(
            "SELECT * FROM subscribers WHERE id = ?", (subscriber_id,)
        ).fetchone()
        return _subscriber(row) if row else None

    def retired_token_owner(self, token: str) -> Subscriber | None:
        """The subscriber a token belonged to before it was retired (an old
        unsubscribe link still says 'unsubscribed'; it opens nothing else)."""
        row = self._db.execute(
            "SELECT subscriber FROM retired_tokens WHERE token = ?", (_digest(token),)
        ).fetchone()
        return self._subscriber_by_id(row[0]) if row else None

    # Double opt-in: subscribe requests queued by the web app, and single-use nonces.

    def queue_subscribe_request(self, email: str, name: str, now: datetime) -> None:
        """The web form's one write, the same whether or not the address is known."""
        stamp = _stamp(now)
        with self._transaction() as db:
            db.execute(
                "INSERT INTO subscribe_requests (email, name, requested_at, status, next_attempt)"
                " VALUES (?, ?, ?, 'queued', ?)",
                (email, name, stamp, stamp),
            )

    def claim_subscribe_request(self, now: datetime) -> SubscribeRequest | None:
        """Take the oldest request that is due, for this process alone: one whose
        claim is older than CLAIM_LEASE was left by a process that died."""
        stamp = _stamp(now)
        with self._transaction() as db:
            row = db.execute(
                "SELECT id, email, name, message, recipient, message_name, attempts"
                " FROM subscribe_requests WHERE (status IN ('queued', 'ready')"
                " AND next_attempt <= ?) OR (status = 'sending' AND claimed_at <= ?)"
                " ORDER BY id LIMIT 1",
                (stamp, _stamp(now - CLAIM_LEASE)),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE subscribe_requests SET status = 'sending', claimed_at = ?,"
                " attempts = attempts + 1 WHERE id = ?",
                (stamp, row["id"]),
            )
        fields = {name: row[name] for name in SubscribeRequest.__slots__}
        return SubscribeRequest(**{**fields, "attempts": row["attempts"] + 1})

    def prepare_confirmation(
        self, email: str, name: str, now: datetime, since: datetime, limit: int
    ) -> tuple[Subscriber, str] | None:
        """Make ``email`` a pending subscriber (added, or back from unsubscribed or
        bounced with a new token) and give it a new single-use nonce; None when no
        mail should go: already active, or ``limit`` nonces were made ``since``."""
        stamp = _stamp(now)
        with self._transaction() as db:
            row = db.execute(
                "SELECT id, status FROM subscribers WHERE email_key = ?", (email_key(email),)
            ).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO subscribers (email, email_key, name, status, token,"
                    " created_at, updated_at) VALUES (?, ?, ?, 'pending', ?, ?, ?)",
                    (
                        email.strip(),
                        email_key(email),
                        name,
                        secrets.token_urlsafe(32),
                        stamp,
                        stamp,
                    ),
                )
                subscriber_id = int(db.execute("SELECT last_insert_rowid()").fetchone()[0])
            elif row["status"] == "active":
                return None
            else:
                subscriber_id = row["id"]
                _change_status(db, subscriber_id, "pending", stamp)
            made = db.execute(
                "SELECT COUNT(*) FROM confirmations WHERE subscriber = ? AND created_at > ?",
                (subscriber_id, _stamp(since)),
            ).fetchone()[0]
            if made >= limit:
                return None
            nonce = secrets.token_urlsafe(32)
            db.execute(
                "INSERT INTO confirmations (nonce_hash, subscriber, created_at) VALUES (?, ?, ?)",
                (_digest(nonce), subscriber_id, stamp),
            )
        subscriber = self._subscriber_by_id(subscriber_id)
        assert subscriber is not None
        return subscriber, nonce

    def compose_subscribe_request(self, request: SubscribeRequest) -> None:
        """Keep the composed confirmation, so a retry sends the very same message."""
        with self._transaction() as db:
            db.execute(
                "UPDATE subscribe_requests SET message = ?, recipient = ?, message_name = ?"
                " WHERE id = ?",
                (request.message, request.recipient, request.message_name, request.id),
            )

    def finish_subscribe_request(
        self, request_id: int, status: str, reply: str, next_attempt: datetime | None = None
    ) -> None:
        """'ready' again (to retry at ``next_attempt``), or done: 'sent', 'dropped' or
        'failed', when the message (it holds a live link) is deleted."""
        with self._transaction() as db:
            if status == "ready":
                assert next_attempt is not None
                db.execute(
                    "UPDATE subscribe_requests SET status = 'ready', last_reply = ?,"
                    " next_attempt = ?, claimed_at = NULL WHERE id = ?",
                    (reply, _stamp(next_attempt), request_id),
                )
            else:
                db.execute(
                    "UPDATE subscribe_requests SET status = ?, last_reply = ?, message = NULL,"
                    " claimed_at = NULL WHERE id = ?",
                    (status, reply, request_id),
                )

    def subscribe_requests(self) -> list[tuple[str, str, int, str | None]]:
        """(address, status, attempts, last reply) of every request, oldest first."""
        rows = self._db.execute(
            "SELECT email, status, attempts, last_reply FROM subscribe_requests ORDER BY id"
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def forget_subscribe_requests(self, before: datetime) -> None:
        """Drop finished requests older than ``before``: they are only a log."""
        with self._transaction() as db:
            db.execute(
                "DELETE FROM subscribe_requests WHERE status IN ('sent', 'dropped', 'failed')"
                " AND requested_at < ?",
                (_stamp(before),),
            )

    def confirmation(self, nonce: str) -> Confirmation | None:
        row = self._db.execute(
            "SELECT subscriber, created_at, used_at FROM confirmations WHERE nonce_hash = ?",
            (_digest(nonce),),
        ).fetchone()
        if row is None:
            return None
        return Confirmation(row[0], datetime.fromisoformat(row[1]), _moment(row[2]))

    def use_confirmation(self, nonce: str, now: datetime, since: datetime) -> Subscriber | None:
        """Spend the nonce, if it is unused and made after ``since``, and make its
        pending subscriber active; None when it cannot be spent."""
        stamp = _stamp(now)
        with self._transaction() as db:
            row = db.execute(
                "SELECT subscriber FROM confirmations WHERE nonce_hash = ? AND used_at IS NULL"
                " AND created_at > ?",
                (_digest(nonce), _stamp(since)),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE confirmations SET used_at = ? WHERE nonce_hash = ?", (stamp, _digest(nonce))
            )
            db.execute(
                "UPDATE subscribers SET status = 'active', updated_at = ?"
                " WHERE id = ? AND status = 'pending'",
                (stamp, row[0]),
            )
        return self._subscriber_by_id(row[0])

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

    def why_not_deliver(self, delivery: Delivery) -> str | None:
        """Why ``delivery`` must not go out now, or None: asked right before each
        send, so a subscriber who left or paused after the issue was recorded
        gets nothing."""
        row = self._db.execute(
            "SELECT status, paused, token FROM subscribers WHERE id = ?", (delivery.subscriber,)
        ).fetchone()
        if row is None:
            return "no longer on the list"
        if row["status"] != "active":
            return f"{row['status']} since the issue was recorded"
        if row["token"] != delivery.token:
            return "left and came back since the issue was recorded"
        if row["paused"]:
            return "paused since the issue was recorded"
        return None

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
    _private_file(lock_path)
    handle = os.open(lock_path, os.O_RDWR)
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
