"""Subscribers: who is on the list, their tokens (retired when they leave or come
back) and their preferences."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import datetime

from feedpub.errors import StateError
from feedpub.listpolicy import stronger
from feedpub.model import Subscriber
from feedpub.store.database import Database, Row, _digest, _Sql, _stamp
from feedpub.store.records import INACTIVE


def _subscriber(row: Row) -> Subscriber:
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


def suppress(db: _Sql, email: str, reason: str, detail: str, stamp: str) -> None:
    """Suppress ``email`` for ``reason``, unless it is suppressed for a stronger one."""
    key = email_key(email)
    held = db.scalar("SELECT reason FROM suppressions WHERE email_key = :key", key=key)
    if held is not None and not stronger(reason, held):
        return
    db.run(
        "INSERT INTO suppressions (email_key, email, reason, detail, created_at)"
        " VALUES (:key, :email, :reason, :detail, :stamp) ON CONFLICT (email_key) DO UPDATE SET"
        " reason = excluded.reason, detail = excluded.detail, created_at = excluded.created_at",
        key=key,
        email=email.strip(),
        reason=reason,
        detail=detail,
        stamp=stamp,
    )


def _change_status(db: _Sql, subscriber_id: int, status: str, stamp: str) -> None:
    """Set a subscriber's status. Leaving the list, or coming back to it, retires
    the token (old manage and unsubscribe links stop opening anything) and any
    confirmation link not yet used; leaving suppresses the address."""
    old = db.one("SELECT status, token, email FROM subscribers WHERE id = :id", id=subscriber_id)
    if old is None or old["status"] == status:
        return
    if status in INACTIVE:
        suppress(db, old["email"], status, "", stamp)
    if status in INACTIVE or old["status"] in INACTIVE:
        db.run(
            "INSERT INTO retired_tokens (token, subscriber, retired_at)"
            " VALUES (:token, :id, :stamp) ON CONFLICT DO NOTHING",
            token=_digest(old["token"]),
            id=subscriber_id,
            stamp=stamp,
        )
        db.run(
            "DELETE FROM confirmations WHERE subscriber = :id AND used_at IS NULL",
            id=subscriber_id,
        )
        db.run(
            "UPDATE subscribers SET status = :status, token = :token, updated_at = :stamp"
            " WHERE id = :id",
            status=status,
            token=secrets.token_urlsafe(32),
            stamp=stamp,
            id=subscriber_id,
        )
    else:
        db.run(
            "UPDATE subscribers SET status = :status, updated_at = :stamp WHERE id = :id",
            status=status,
            stamp=stamp,
            id=subscriber_id,
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
        count = "SELECT COUNT(*) FROM subscribers"
        with self._transaction() as db:
            before = int(db.scalar(count))
            db.many(
                "INSERT INTO subscribers (email, email_key, name, status, token, tags,"
                " created_at, updated_at) VALUES (:email, :key, :name, :status, :token, :tags,"
                " :stamp, :stamp) ON CONFLICT DO NOTHING",
                [
                    {
                        "email": email.strip(),
                        "key": email_key(email),
                        "name": name,
                        "status": status,
                        "token": secrets.token_urlsafe(32),
                        "tags": json.dumps(list(tags), ensure_ascii=False),
                        "stamp": stamp,
                    }
                    for email, name, tags, status in entries
                ],
            )
            return int(db.scalar(count)) - before

    def delete_subscriber(self, email: str, now: datetime) -> bool:
        """Erase ``email``'s subscriber and every record of mail to them, keeping
        only the suppression that stops the address being mailed again; False
        when there is no such subscriber."""
        key = email_key(email)
        stamp = _stamp(now)
        with self._transaction() as db:
            row = db.one("SELECT id, email FROM subscribers WHERE email_key = :key", key=key)
            if row is None:
                return False
            suppress(db, row["email"], "unsubscribed", "erased", stamp)
            for table in ("deliveries", "confirmations", "retired_tokens"):
                db.run(f"DELETE FROM {table} WHERE subscriber = :id", id=row["id"])
            db.run("DELETE FROM list_events WHERE email_key = :key", key=key)
            db.run("DELETE FROM subscribers WHERE id = :id", id=row["id"])
            return True

    def subscriber(self, email: str) -> Subscriber | None:
        row = self._db.one("SELECT * FROM subscribers WHERE email_key = :key", key=email_key(email))
        return _subscriber(row) if row else None

    def subscriber_by_token(self, token: str) -> Subscriber | None:
        row = self._db.one("SELECT * FROM subscribers WHERE token = :token", token=token)
        return _subscriber(row) if row else None

    def set_status(self, email: str, status: str, now: datetime) -> Subscriber | None:
        found = self._db.scalar(
            "SELECT id FROM subscribers WHERE email_key = :key", key=email_key(email)
        )
        if found is not None:
            with self._transaction() as db:
                _change_status(db, found, status, _stamp(now))
        return self.subscriber(email)

    def recipients(self) -> list[Subscriber]:
        """Who gets the next issue: active subscribers who have not paused, and
        whose address is not suppressed."""
        rows = self._db.all(
            "SELECT * FROM subscribers WHERE status = 'active' AND paused = 0"
            " AND email_key NOT IN (SELECT email_key FROM suppressions) ORDER BY id"
        )
        return [_subscriber(row) for row in rows]

    def set_preferences(self, token: str, tags: Sequence[str], paused: bool, now: datetime) -> None:
        with self._transaction() as db:
            db.run(
                "UPDATE subscribers SET tags = :tags, paused = :paused, updated_at = :stamp"
                " WHERE token = :token",
                tags=json.dumps(list(tags), ensure_ascii=False),
                paused=int(paused),
                stamp=_stamp(now),
                token=token,
            )

    def set_status_by_token(self, token: str, status: str, now: datetime) -> Subscriber | None:
        """Change the status of the subscriber with ``token``; when that retires the
        token, the subscriber is returned under the new one."""
        found = self._db.scalar("SELECT id FROM subscribers WHERE token = :token", token=token)
        if found is None:
            return None
        with self._transaction() as db:
            _change_status(db, found, status, _stamp(now))
        return self._subscriber_by_id(found)

    def _subscriber_by_id(self, subscriber_id: int) -> Subscriber | None:
        row = self._db.one("SELECT * FROM subscribers WHERE id = :id", id=subscriber_id)
        return _subscriber(row) if row else None

    def retired_token_owner(self, token: str) -> Subscriber | None:
        """The subscriber a token belonged to before it was retired (an old
        unsubscribe link still says 'unsubscribed'; it opens nothing else)."""
        owner = self._db.scalar(
            "SELECT subscriber FROM retired_tokens WHERE token = :token", token=_digest(token)
        )
        return None if owner is None else self._subscriber_by_id(owner)

    def subscribers(self, status: str | None = None) -> list[Subscriber]:
        if status is None:
            rows = self._db.all("SELECT * FROM subscribers ORDER BY id")
        else:
            rows = self._db.all("SELECT * FROM subscribers WHERE status = :s ORDER BY id", s=status)
        return [_subscriber(row) for row in rows]
