"""Subscribers: who is on the list, their tokens (retired when they leave or come
back) and their preferences."""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Sequence
from datetime import datetime

from feedpub.errors import StateError
from feedpub.listpolicy import stronger
from feedpub.model import Subscriber
from feedpub.store.database import Database, _digest, _stamp
from feedpub.store.records import INACTIVE


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


def suppress(db: sqlite3.Connection, email: str, reason: str, detail: str, stamp: str) -> None:
    """Suppress ``email`` for ``reason``, unless it is suppressed for a stronger one."""
    key = email_key(email)
    row = db.execute("SELECT reason FROM suppressions WHERE email_key = ?", (key,)).fetchone()
    if row is not None and not stronger(reason, row[0]):
        return
    db.execute(
        "INSERT INTO suppressions (email_key, email, reason, detail, created_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (email_key) DO UPDATE SET"
        " reason = excluded.reason, detail = excluded.detail, created_at = excluded.created_at",
        (key, email.strip(), reason, detail, stamp),
    )


def _change_status(db: sqlite3.Connection, subscriber_id: int, status: str, stamp: str) -> None:
    """Set a subscriber's status. Leaving the list, or coming back to it, retires
    the token (old manage and unsubscribe links stop opening anything) and any
    confirmation link not yet used; leaving suppresses the address."""
    old = db.execute(
        "SELECT status, token, email FROM subscribers WHERE id = ?", (subscriber_id,)
    ).fetchone()
    if old is None or old["status"] == status:
        return
    if status in INACTIVE:
        suppress(db, old["email"], status, "", stamp)
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


def email_key(email: str) -> str:
    """Addresses are unique ignoring case."""
    return email.strip().casefold()


class SubscriberTable(Database):
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

    def delete_subscriber(self, email: str, now: datetime) -> bool:
        """Erase ``email``'s subscriber and every record of mail to them, keeping
        only the suppression that stops the address being mailed again; False
        when there is no such subscriber."""
        key = email_key(email)
        stamp = _stamp(now)
        with self._transaction() as db:
            row = db.execute(
                "SELECT id, email FROM subscribers WHERE email_key = ?", (key,)
            ).fetchone()
            if row is None:
                return False
            suppress(db, row["email"], "unsubscribed", "erased", stamp)
            for table in ("deliveries", "confirmations", "retired_tokens"):
                db.execute(f"DELETE FROM {table} WHERE subscriber = ?", (row["id"],))
            db.execute("DELETE FROM list_events WHERE email_key = ?", (key,))
            db.execute("DELETE FROM subscribers WHERE id = ?", (row["id"],))
            return True

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
        """Who gets the next issue: active subscribers who have not paused, and
        whose address is not suppressed."""
        rows = self._db.execute(
            "SELECT * FROM subscribers WHERE status = 'active' AND paused = 0"
            " AND email_key NOT IN (SELECT email_key FROM suppressions) ORDER BY id"
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

    def subscribers(self, status: str | None = None) -> list[Subscriber]:
        if status is None:
            rows = self._db.execute("SELECT * FROM subscribers ORDER BY id")
        else:
            rows = self._db.execute(
                "SELECT * FROM subscribers WHERE status = ? ORDER BY id", (status,)
            )
        return [_subscriber(row) for row in rows]
