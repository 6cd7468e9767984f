"""The ledger: issues, the posts each covered, their variants, one delivery per
recipient, and when each scheduled job last ran."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime

from feedpub.errors import StateError
from feedpub.model import Issue, Subscriber
from feedpub.store.database import Database, _moment, _stamp
from feedpub.store.records import Delivery

# A delivery, the status it ends a try with and the server's reply.
Settled = tuple[Delivery, str, str | None]


def _delivery(row: sqlite3.Row) -> Delivery:
    return Delivery(**{name: row[name] for name in Delivery.__slots__})


def _record(db: sqlite3.Connection, settled: Sequence[Settled], stamp: str) -> None:
    if not settled:
        return
    db.executemany(
        "UPDATE deliveries SET status = ?, last_reply = ?, updated_at = ?"
        " WHERE issue = ? AND subscriber = ?",
        [(status, reply, stamp, d.issue, d.subscriber) for d, status, reply in settled],
    )


class Ledger(Database):
    def issues(self) -> list[tuple[int, datetime, str]]:
        rows = self._db.execute(
            "SELECT number, created_at, subject FROM issues ORDER BY number DESC"
        )
        return [(r[0], datetime.fromisoformat(r[1]), r[2]) for r in rows]

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
        variants: Mapping[str, Issue],
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
                    [(number, key, i.subject, i.html, i.text) for key, i in variants.items()],
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

    def issue(self, number: int, key: str) -> Issue | None:
        """Issue ``number`` as recorded for variant ``key``; None when there is none."""
        row = self._db.execute(
            "SELECT i.created_at, v.subject, v.html, v.text FROM issues i"
            " JOIN issue_variants v ON v.issue = i.number WHERE i.number = ? AND v.variant = ?",
            (number, key),
        ).fetchone()
        if row is None:
            return None
        created = datetime.fromisoformat(row["created_at"])
        return Issue(number, created, row["subject"], row["html"], row["text"])

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
            "SELECT s.status, s.paused, s.token, p.reason FROM subscribers AS s"
            " LEFT JOIN suppressions AS p ON p.email_key = s.email_key WHERE s.id = ?",
            (delivery.subscriber,),
        ).fetchone()
        if row is None:
            return "no longer on the list"
        if row["status"] != "active":
            return f"{row['status']} since the issue was recorded"
        if row["token"] != delivery.token:
            return "left and came back since the issue was recorded"
        if row["paused"]:
            return "paused since the issue was recorded"
        if row["reason"] is not None:
            return f"suppressed ({row['reason']}) since the issue was recorded"
        return None

    def start_sending(
        self,
        delivery: Delivery,
        now: datetime,
        settled: Sequence[Settled] = (),
        *,
        check: bool = True,
    ) -> str | None:
        """Committed before the message leaves, in one transaction: the answers in
        ``settled`` recorded, then ``delivery`` marked 'sending' (a crash now leaves
        it so, and the next run sends that one message again, with the same
        Message-ID). With ``check``, a delivery that must not go out now (see
        why_not_deliver) is recorded as skipped instead, and why is returned."""
        stamp = _stamp(now)
        with self._transaction() as db:
            _record(db, settled, stamp)
            reason = self.why_not_deliver(delivery) if check else None
            if reason is None:
                db.execute(
                    "UPDATE deliveries SET status = 'sending', attempts = attempts + 1,"
                    " updated_at = ? WHERE issue = ? AND subscriber = ?",
                    (stamp, delivery.issue, delivery.subscriber),
                )
            else:
                _record(db, [(delivery, "skipped", reason)], stamp)
        return reason

    def record_settled(self, settled: Sequence[Settled], now: datetime) -> None:
        """Record what became of deliveries ('sent', 'failed', 'pending' again)."""
        with self._transaction() as db:
            _record(db, settled, _stamp(now))

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
