"""Double opt-in: subscribe requests queued by the web app, claimed by one sender
at a time, and the single-use nonces of confirmation links."""

from __future__ import annotations

import secrets
from datetime import datetime

from feedpub.model import Subscriber
from feedpub.store.database import _digest, _moment, _stamp
from feedpub.store.records import CLAIM_LEASE, Confirmation, SubscribeRequest
from feedpub.store.subscribers import SubscriberTable, _change_status, email_key


class SubscribeQueue(SubscriberTable):
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
            activated = db.execute(
                "UPDATE subscribers SET status = 'active', updated_at = ?"
                " WHERE id = ? AND status = 'pending'",
                (stamp, row[0]),
            ).rowcount
            if activated:  # their own confirmed sign-up: no suppression stands before it
                db.execute(
                    "DELETE FROM suppressions WHERE email_key ="
                    " (SELECT email_key FROM subscribers WHERE id = ?)",
                    (row[0],),
                )
        return self._subscriber_by_id(row[0])
