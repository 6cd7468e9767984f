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
            db.run(
                "INSERT INTO subscribe_requests (email, name, requested_at, status, next_attempt)"
                " VALUES (:email, :name, :stamp, 'queued', :stamp)",
                email=email,
                name=name,
                stamp=stamp,
            )

    def claim_subscribe_request(self, now: datetime) -> SubscribeRequest | None:
        """Take the oldest request that is due, for this process alone: one whose
        claim is older than CLAIM_LEASE was left by a process that died."""
        stamp = _stamp(now)
        with self._transaction() as db:
            row = db.one(
                "SELECT id, email, name, message, recipient, message_name, attempts"
                " FROM subscribe_requests WHERE (status IN ('queued', 'ready')"
                " AND next_attempt <= :now) OR (status = 'sending' AND claimed_at <= :expired)"
                f" ORDER BY id LIMIT 1{self.skip_locked}",
                now=stamp,
                expired=_stamp(now - CLAIM_LEASE),
            )
            if row is None:
                return None
            db.run(
                "UPDATE subscribe_requests SET status = 'sending', claimed_at = :now,"
                " attempts = attempts + 1 WHERE id = :id",
                now=stamp,
                id=row["id"],
            )
        fields = {name: row[name] for name in SubscribeRequest.__slots__}
        if fields["message"] is not None:  # PostgreSQL hands a bytea out as a memoryview
            fields["message"] = bytes(fields["message"])
        return SubscribeRequest(**{**fields, "attempts": row["attempts"] + 1})

    def prepare_confirmation(
        self, email: str, name: str, now: datetime, since: datetime, limit: int
    ) -> tuple[Subscriber, str] | None:
        """Make ``email`` a pending subscriber (added, or back from unsubscribed or
        bounced with a new token) and give it a new single-use nonce; None when no
        mail should go: already active, or ``limit`` nonces were made ``since``."""
        stamp = _stamp(now)
        with self._transaction() as db:
            row = db.one(
                "SELECT id, status FROM subscribers WHERE email_key = :key", key=email_key(email)
            )
            if row is None:
                subscriber_id = int(
                    db.scalar(
                        "INSERT INTO subscribers (email, email_key, name, status, token,"
                        " created_at, updated_at) VALUES (:email, :key, :name, 'pending', :token,"
                        " :stamp, :stamp) RETURNING id",
                        email=email.strip(),
                        key=email_key(email),
                        name=name,
                        token=secrets.token_urlsafe(32),
                        stamp=stamp,
                    )
                )
            elif row["status"] == "active":
                return None
            else:
                subscriber_id = row["id"]
                _change_status(db, subscriber_id, "pending", stamp)
            made = db.scalar(
                "SELECT COUNT(*) FROM confirmations WHERE subscriber = :id AND created_at > :since",
                id=subscriber_id,
                since=_stamp(since),
            )
            if made >= limit:
                return None
            nonce = secrets.token_urlsafe(32)
            db.run(
                "INSERT INTO confirmations (nonce_hash, subscriber, created_at)"
                " VALUES (:nonce, :id, :stamp)",
                nonce=_digest(nonce),
                id=subscriber_id,
                stamp=stamp,
            )
        subscriber = self._subscriber_by_id(subscriber_id)
        assert subscriber is not None
        return subscriber, nonce

    def compose_subscribe_request(self, request: SubscribeRequest) -> None:
        """Keep the composed confirmation, so a retry sends the very same message."""
        with self._transaction() as db:
            db.run(
                "UPDATE subscribe_requests SET message = :message, recipient = :recipient,"
                " message_name = :name WHERE id = :id",
                message=request.message,
                recipient=request.recipient,
                name=request.message_name,
                id=request.id,
            )

    def finish_subscribe_request(
        self, request_id: int, status: str, reply: str, next_attempt: datetime | None = None
    ) -> None:
        """'ready' again (to retry at ``next_attempt``), or done: 'sent', 'dropped' or
        'failed', when the message (it holds a live link) is deleted."""
        with self._transaction() as db:
            if status == "ready":
                assert next_attempt is not None
                db.run(
                    "UPDATE subscribe_requests SET status = 'ready', last_reply = :reply,"
                    " next_attempt = :next, claimed_at = NULL WHERE id = :id",
                    reply=reply,
                    next=_stamp(next_attempt),
                    id=request_id,
                )
            else:
                db.run(
                    "UPDATE subscribe_requests SET status = :status, last_reply = :reply,"
                    " message = NULL, claimed_at = NULL WHERE id = :id",
                    status=status,
                    reply=reply,
                    id=request_id,
                )

    def forget_subscribe_requests(self, before: datetime) -> None:
        """Drop finished requests older than ``before``: they are only a log."""
        with self._transaction() as db:
            db.run(
                "DELETE FROM subscribe_requests WHERE status IN ('sent', 'dropped', 'failed')"
                " AND requested_at < :before",
                before=_stamp(before),
            )

    def confirmation(self, nonce: str) -> Confirmation | None:
        row = self._db.one(
            "SELECT subscriber, created_at, used_at FROM confirmations WHERE nonce_hash = :nonce",
            nonce=_digest(nonce),
        )
        if row is None:
            return None
        return Confirmation(
            row["subscriber"], datetime.fromisoformat(row["created_at"]), _moment(row["used_at"])
        )

    def use_confirmation(self, nonce: str, now: datetime, since: datetime) -> Subscriber | None:
        """Spend the nonce, if it is unused and made after ``since``, and make its
        pending subscriber active; None when it cannot be spent."""
        stamp = _stamp(now)
        with self._transaction() as db:
            subscriber = db.scalar(
                "SELECT subscriber FROM confirmations WHERE nonce_hash = :nonce"
                " AND used_at IS NULL AND created_at > :since",
                nonce=_digest(nonce),
                since=_stamp(since),
            )
            if subscriber is None:
                return None
            db.run(
                "UPDATE confirmations SET used_at = :stamp WHERE nonce_hash = :nonce",
                stamp=stamp,
                nonce=_digest(nonce),
            )
            activated = db.run(
                "UPDATE subscribers SET status = 'active', updated_at = :stamp"
                " WHERE id = :id AND status = 'pending'",
                stamp=stamp,
                id=subscriber,
            )
            if activated:  # their own confirmed sign-up: no suppression stands before it
                db.run(
                    "DELETE FROM suppressions WHERE email_key ="
                    " (SELECT email_key FROM subscribers WHERE id = :id)",
                    id=subscriber,
                )
        return self._subscriber_by_id(subscriber)
