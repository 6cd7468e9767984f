"""List health: bounces, complaints and unsubscribes as they are reported, each
applied once, and the suppression list of addresses that must not be mailed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from feedpub.listpolicy import SoftBouncePolicy, consequence
from feedpub.model import ListEvent
from feedpub.store.database import Database, _stamp
from feedpub.store.ledger import _delivery
from feedpub.store.records import INACTIVE, Delivery
from feedpub.store.subscribers import _change_status, email_key, suppress
from feedpub.verp import delivery_of, delivery_token


@dataclass(frozen=True, slots=True)
class EventOutcome:
    """What recording one event did: ``applied`` False when it was seen before
    (``seen_before``) or names no subscriber (then nothing changed); ``says`` is
    one line for a person."""

    applied: bool
    says: str
    seen_before: bool = False


class ListHealth(Database):
    def record_event(
        self,
        event: ListEvent,
        issue: int | None,
        now: datetime,
        policy: SoftBouncePolicy,
    ) -> EventOutcome:
        """Apply ``event`` (about issue ``issue``, when known) by the list's policy,
        once however often it is reported (its provider and id say which it is)."""
        key = email_key(event.address)
        stamp = _stamp(now)
        with self._transaction() as db:
            inserted = db.run(
                "INSERT INTO list_events (key, provider, email_key, kind, issue, detail, at)"
                " VALUES (:key, :provider, :address, :kind, :issue, :detail, :stamp)"
                " ON CONFLICT DO NOTHING",
                key=f"{event.provider}:{event.event_id}",
                provider=event.provider,
                address=key,
                kind=event.kind,
                issue=issue,
                detail=event.detail,
                stamp=stamp,
            )
            if not inserted:
                return EventOutcome(False, "seen before; counted once", seen_before=True)
            row = db.one("SELECT id, status FROM subscribers WHERE email_key = :key", key=key)
            if row is None:
                return EventOutcome(False, "no subscriber has this address; nothing changed")
            recent_soft = db.scalar(
                "SELECT COUNT(*) FROM list_events WHERE email_key = :key AND kind = 'soft'"
                " AND at >= :since",
                key=key,
                since=_stamp(now - timedelta(days=policy.days)),
            )
            result = consequence(event.kind, recent_soft, policy)
            if result.status is not None and row["status"] not in INACTIVE:
                _change_status(db, row["id"], result.status, stamp)
            if result.suppress is not None:
                suppress(db, event.address, result.suppress, event.detail, stamp)
            return EventOutcome(True, result.says)

    def delivery_for_token(self, token: str) -> Delivery | None:
        """The delivery a VERP token names (see ``verp.delivery_token``), or None
        when it names none, or was made up."""
        named = delivery_of(token)
        if named is None:
            return None
        row = self._db.one(
            "SELECT * FROM deliveries WHERE issue = :issue AND subscriber = :subscriber",
            issue=named[0],
            subscriber=named[1],
        )
        if row is None or delivery_token(row["issue"], row["subscriber"], row["token"]) != token:
            return None
        return _delivery(row)

    def suppressions(self, emails: Iterable[str]) -> dict[str, str]:
        """The suppressed ones of ``emails`` (by ``email_key``), with their reasons."""
        keys = list({email_key(email) for email in emails})
        found: dict[str, str] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ", ".join(f":k{n}" for n in range(len(chunk)))
            rows = self._db.all(
                f"SELECT email_key, reason FROM suppressions WHERE email_key IN ({marks})",
                **{f"k{n}": key for n, key in enumerate(chunk)},
            )
            found.update((r["email_key"], r["reason"]) for r in rows)
        return found

    def lift_suppressions(self, emails: Iterable[str], *, complaints: bool) -> None:
        """Lift the suppression of ``emails``, a complaint's only with ``complaints``
        (the person's own confirmed sign-up, never an operator's ``--force``)."""
        keys = [{"key": email_key(email)} for email in emails]
        clause = "" if complaints else " AND reason != 'complained'"
        with self._transaction() as db:
            db.many(f"DELETE FROM suppressions WHERE email_key = :key{clause}", keys)

    def suppressed_subscribers(self) -> int:
        """How many subscribers' addresses are suppressed (whatever their status)."""
        return int(
            self._db.scalar(
                "SELECT COUNT(*) FROM subscribers AS s"
                " JOIN suppressions AS p ON p.email_key = s.email_key"
            )
        )

    def suppressed_count(self) -> dict[str, int]:
        """How many addresses are suppressed, by reason."""
        rows = self._db.all("SELECT reason, COUNT(*) AS n FROM suppressions GROUP BY reason")
        return {row["reason"]: row["n"] for row in rows}
