"""The ledger: issues, the posts each covered, their variants, one delivery per
recipient (claimed by one worker at a time, for a lease), and when each
scheduled job last ran."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from feedpub.errors import StateError
from feedpub.model import Issue, Subscriber
from feedpub.store.database import Conflict, Database, Row, _moment, _Sql, _stamp
from feedpub.store.records import Delivery

# A delivery, the status it ends a try with and the server's reply.
Settled = tuple[Delivery, str, str | None]


@dataclass(frozen=True, slots=True)
class JobRun:
    """What the ledger knows of a scheduled job's latest run."""

    started: datetime | None
    finished: datetime | None
    success: datetime | None


@dataclass(frozen=True, slots=True)
class Tally:
    """Where an issue's deliveries stand, whichever worker moved them."""

    sent: int
    failed: int
    skipped: int
    open: int
    failures: tuple[str, ...]  # "address: the server's reply" of each that failed

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.skipped


def _delivery(row: Row) -> Delivery:
    return Delivery(**{name: row[name] for name in Delivery.__slots__})


def _record(db: _Sql, settled: Sequence[Settled], stamp: str) -> None:
    """Record answers. A delivery done is held by no one; one put off stays with
    its worker (not taken again in the same run) until it lets go."""
    db.many(
        "UPDATE deliveries SET status = :status, last_reply = :reply, updated_at = :stamp,"
        " worker = CASE WHEN :status = 'pending' THEN worker END,"
        " lease_until = CASE WHEN :status = 'pending' THEN lease_until END"
        " WHERE issue = :issue AND subscriber = :subscriber",
        [
            {
                "status": status,
                "reply": reply,
                "stamp": stamp,
                "issue": d.issue,
                "subscriber": d.subscriber,
            }
            for d, status, reply in settled
        ],
    )


class Ledger(Database):
    def issues(self) -> list[tuple[int, datetime, str]]:
        rows = self._db.all("SELECT number, created_at, subject FROM issues ORDER BY number DESC")
        return [(r["number"], datetime.fromisoformat(r["created_at"]), r["subject"]) for r in rows]

    def included_post_ids(self) -> frozenset[str]:
        return frozenset(row["post_id"] for row in self._db.all("SELECT post_id FROM issue_posts"))

    def next_issue_number(self) -> int:
        return int(self._db.scalar("SELECT COALESCE(MAX(number), 0) + 1 FROM issues"))

    def unfinished_issues(self) -> list[int]:
        """Issues with deliveries not yet done, oldest first."""
        rows = self._db.all(
            "SELECT DISTINCT issue FROM deliveries WHERE status IN ('pending', 'sending')"
            " ORDER BY issue"
        )
        return [row["issue"] for row in rows]

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
                db.run(
                    "INSERT INTO issues (number, created_at, subject)"
                    " VALUES (:number, :stamp, :subject)",
                    number=number,
                    stamp=stamp,
                    subject=subject,
                )
                db.many(
                    "INSERT INTO issue_posts (post_id, issue) VALUES (:post, :number)",
                    [{"post": post_id, "number": number} for post_id in covered],
                )
                db.many(
                    "INSERT INTO issue_variants (issue, variant, subject, html, text)"
                    " VALUES (:number, :key, :subject, :html, :text)",
                    [
                        {
                            "number": number,
                            "key": key,
                            "subject": i.subject,
                            "html": i.html,
                            "text": i.text,
                        }
                        for key, i in variants.items()
                    ],
                )
                db.many(
                    "INSERT INTO deliveries (issue, subscriber, email, name, token, variant,"
                    " status, updated_at) VALUES (:number, :id, :email, :name, :token, :variant,"
                    " :status, :stamp)",
                    [
                        {
                            "number": number,
                            "id": s.id,
                            "email": s.email,
                            "name": s.name,
                            "token": s.token,
                            "variant": variant,
                            "status": "skipped" if variant is None else "pending",
                            "stamp": stamp,
                        }
                        for s, variant in recipients
                    ],
                )
        except Conflict as error:
            raise StateError(f"issue #{number} conflicts with the ledger: {error}") from None

    def issue(self, number: int, key: str) -> Issue | None:
        """Issue ``number`` as recorded for variant ``key``; None when there is none."""
        row = self._db.one(
            "SELECT i.created_at, v.subject, v.html, v.text FROM issues i"
            " JOIN issue_variants v ON v.issue = i.number"
            " WHERE i.number = :number AND v.variant = :key",
            number=number,
            key=key,
        )
        if row is None:
            return None
        created = datetime.fromisoformat(row["created_at"])
        return Issue(number, created, row["subject"], row["html"], row["text"])

    def open_deliveries(self, number: int) -> list[Delivery]:
        rows = self._db.all(
            "SELECT * FROM deliveries WHERE issue = :number AND status IN ('pending', 'sending')"
            " ORDER BY subscriber",
            number=number,
        )
        return [_delivery(row) for row in rows]

    def claim_deliveries(
        self, number: int, worker: str, now: datetime, lease: timedelta, limit: int
    ) -> list[Delivery]:
        """Take up to ``limit`` of issue ``number``'s open deliveries for ``worker``
        alone, until ``now + lease``: those no one holds, or whose holder's lease
        ran out (it died, even by kill -9, or lost the database). A claim under
        way elsewhere does not wait for this one, nor this for it."""
        with self._transaction() as db:
            rows = db.all(
                "SELECT * FROM deliveries WHERE issue = :number"
                " AND status IN ('pending', 'sending')"
                " AND (lease_until IS NULL OR lease_until <= :now)"
                f" ORDER BY subscriber LIMIT :limit{self.skip_locked}",
                number=number,
                now=_stamp(now),
                limit=limit,
            )
            db.many(
                "UPDATE deliveries SET worker = :worker, lease_until = :until"
                " WHERE issue = :issue AND subscriber = :subscriber",
                [
                    {
                        "worker": worker,
                        "until": _stamp(now + lease),
                        "issue": row["issue"],
                        "subscriber": row["subscriber"],
                    }
                    for row in rows
                ],
            )
        return [_delivery(row) for row in rows]

    def renew_leases(self, number: int, worker: str, now: datetime, lease: timedelta) -> None:
        """Keep what ``worker`` holds of issue ``number`` for another ``lease``."""
        with self._transaction() as db:
            db.run(
                "UPDATE deliveries SET lease_until = :until WHERE issue = :number"
                " AND status IN ('pending', 'sending') AND worker = :worker",
                until=_stamp(now + lease),
                number=number,
                worker=worker,
            )

    def release_deliveries(self, worker: str) -> None:
        """Give back what ``worker`` holds and has not sent (a try put off, a
        run stopped), for the next claim to take at once."""
        with self._transaction() as db:
            db.run(
                "UPDATE deliveries SET worker = NULL, lease_until = NULL"
                " WHERE worker = :worker AND status = 'pending'",
                worker=worker,
            )

    def holders(self, number: int, worker: str, now: datetime) -> list[str]:
        """The other workers that hold some of issue ``number``'s open deliveries."""
        rows = self._db.all(
            "SELECT DISTINCT worker FROM deliveries WHERE issue = :number"
            " AND status IN ('pending', 'sending') AND lease_until > :now"
            " AND worker != :worker",
            number=number,
            now=_stamp(now),
            worker=worker,
        )
        return [row["worker"] for row in rows]

    def end_leases(self, number: int, worker: str) -> None:
        """End the leases of ``worker`` on issue ``number`` (it is known dead):
        the next claim takes what it held."""
        with self._transaction() as db:
            db.run(
                "UPDATE deliveries SET lease_until = NULL WHERE issue = :number"
                " AND status IN ('pending', 'sending') AND worker = :worker",
                number=number,
                worker=worker,
            )

    def tally(self, number: int) -> Tally:
        """Where issue ``number``'s deliveries stand, by every worker's work."""
        counts = {
            row["status"]: row["n"]
            for row in self._db.all(
                "SELECT status, COUNT(*) AS n FROM deliveries WHERE issue = :number"
                " GROUP BY status",
                number=number,
            )
        }
        failures = self._db.all(
            "SELECT email, last_reply FROM deliveries WHERE issue = :number"
            " AND status = 'failed' ORDER BY subscriber",
            number=number,
        )
        return Tally(
            counts.get("sent", 0),
            counts.get("failed", 0),
            counts.get("skipped", 0),
            counts.get("pending", 0) + counts.get("sending", 0),
            tuple(f"{row['email']}: {row['last_reply']}" for row in failures),
        )

    def start_sending(
        self,
        delivery: Delivery,
        now: datetime,
        settled: Sequence[Settled] = (),
        *,
        check: bool = True,
        worker: str | None = None,
    ) -> str | None:
        """Committed before the message leaves, in one transaction: the answers in
        ``settled`` recorded, then ``delivery`` marked 'sending' (a crash now leaves
        it so, and the next run sends that one message again, with the same
        Message-ID). With ``check``, a delivery that must not go out now (its
        subscriber left, paused, came back with a new token or is suppressed
        since the issue was recorded) is recorded as skipped instead, and why
        is returned.
        With ``worker``, it goes only while that worker still holds it (else
        "taken over": its lease ran out and another worker has it, or it is done)."""
        stamp = _stamp(now)
        held = "" if worker is None else " AND worker = :worker"
        # The subscriber still wants it: checked in the same statement that
        # marks it, so nothing can change in between (and it costs no query).
        wanted = _STILL_WANTED if check else ""
        with self._transaction() as db:
            _record(db, settled, stamp)
            marked = db.run(
                "UPDATE deliveries SET status = 'sending', attempts = attempts + 1,"
                " updated_at = :stamp WHERE issue = :issue AND subscriber = :subscriber"
                f" AND status IN ('pending', 'sending'){held}{wanted}",
                stamp=stamp,
                issue=delivery.issue,
                subscriber=delivery.subscriber,
                token=delivery.token,
                worker=worker,
            )
            if marked:
                return None
            reason = _why_not(db, delivery) if check else None
            skipped = reason is not None and db.run(
                "UPDATE deliveries SET status = 'skipped', last_reply = :reason,"
                " updated_at = :stamp, worker = NULL, lease_until = NULL"
                f" WHERE issue = :issue AND subscriber = :subscriber"
                f" AND status IN ('pending', 'sending'){held}",
                reason=reason,
                stamp=stamp,
                issue=delivery.issue,
                subscriber=delivery.subscriber,
                worker=worker,
            )
            if not skipped:
                return TAKEN_OVER
        return reason

    def record_settled(self, settled: Sequence[Settled], now: datetime) -> None:
        """Record what became of deliveries ('sent', 'failed', 'pending' again)."""
        if settled:
            with self._transaction() as db:
                _record(db, settled, _stamp(now))

    def run_started(self, job: str, now: datetime, holder: str = "") -> None:
        with self._transaction() as db:
            db.run(
                "INSERT INTO runs (job, last_started, holder) VALUES (:job, :now, :holder)"
                " ON CONFLICT (job) DO UPDATE SET last_started = excluded.last_started,"
                " holder = excluded.holder",
                job=job,
                now=_stamp(now),
                holder=holder,
            )

    def run_finished(self, job: str, now: datetime, outcome: str, success: bool) -> None:
        with self._transaction() as db:
            db.run(
                "UPDATE runs SET last_outcome = :outcome, last_finished = :now,"
                " last_success = CASE WHEN :success THEN :now ELSE last_success END"
                " WHERE job = :job",
                outcome=outcome,
                success=success,
                now=_stamp(now),
                job=job,
            )

    def last_success(self, job: str) -> datetime | None:
        return self.job_run(job).success

    def job_run(self, job: str) -> JobRun:
        row = self._db.one(
            "SELECT last_started, last_finished, last_success FROM runs WHERE job = :job", job=job
        )
        if row is None:
            return JobRun(None, None, None)
        return JobRun(
            _moment(row["last_started"]),
            _moment(row["last_finished"]),
            _moment(row["last_success"]),
        )

    def deliveries(self, number: int) -> list[Delivery]:
        rows = self._db.all(
            "SELECT * FROM deliveries WHERE issue = :number ORDER BY subscriber", number=number
        )
        return [_delivery(row) for row in rows]


# Why a worker's delivery did not go: another worker has it now, or it is done.
TAKEN_OVER = "taken over by another worker"


# What _why_not finds nothing against, as a condition on the delivery's row.
_STILL_WANTED = (
    " AND EXISTS (SELECT 1 FROM subscribers AS s"
    " LEFT JOIN suppressions AS p ON p.email_key = s.email_key"
    " WHERE s.id = :subscriber AND s.status = 'active' AND s.token = :token"
    " AND s.paused = 0 AND p.reason IS NULL)"
)


def _why_not(db: _Sql, delivery: Delivery) -> str | None:
    """Why ``delivery`` must not go out now, or None: a subscriber who left or
    paused after the issue was recorded gets nothing."""
    row = db.one(
        "SELECT s.status, s.paused, s.token, p.reason FROM subscribers AS s"
        " LEFT JOIN suppressions AS p ON p.email_key = s.email_key WHERE s.id = :id",
        id=delivery.subscriber,
    )
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
