"""The rows ``feedpub stats`` and the status page count, read in one snapshot."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from datetime import datetime

from feedpub.errors import StateError
from feedpub.stats import Feedback, IssueTotals, StatsRows
from feedpub.store.database import Database


class ListStatistics(Database):
    def stats_rows(self) -> StatsRows:
        """Each issue's delivery counts, every bounce, complaint and unsubscribe,
        the issues sent to the addresses those that name no issue are about, and
        the list's counts by status and suppression reason."""
        db = self._db
        try:
            db.execute("BEGIN")
            try:
                issues = [
                    IssueTotals(r[0], datetime.fromisoformat(r[1]), r[2], r[3], r[4], r[5])
                    for r in db.execute(
                        "SELECT i.number, i.created_at, i.subject, COUNT(d.subscriber),"
                        " COALESCE(SUM(d.status = 'sent'), 0),"
                        " COALESCE(SUM(d.status = 'failed'), 0)"
                        " FROM issues i LEFT JOIN deliveries d ON d.issue = i.number"
                        " GROUP BY i.number ORDER BY i.number"
                    )
                ]
                feedback = [
                    Feedback(r[0], r[1], r[2], datetime.fromisoformat(r[3]))
                    for r in db.execute(
                        "SELECT email_key, kind, issue, at FROM list_events"
                        " UNION ALL SELECT email_key, 'unsubscribe', NULL, created_at"
                        " FROM suppressions WHERE reason = 'unsubscribed'"
                    )
                ]
                sent: defaultdict[str, list[int]] = defaultdict(list)
                for key, issue in db.execute(
                    "SELECT s.email_key, d.issue FROM deliveries d"
                    " JOIN subscribers s ON s.id = d.subscriber"
                    " WHERE d.status = 'sent' AND s.email_key IN"
                    " (SELECT email_key FROM list_events WHERE issue IS NULL"
                    " UNION SELECT email_key FROM suppressions WHERE reason = 'unsubscribed')"
                ):
                    sent[key].append(issue)
                statuses = dict(
                    db.execute("SELECT status, COUNT(*) FROM subscribers GROUP BY status")
                )
                suppressed = dict(
                    db.execute("SELECT reason, COUNT(*) FROM suppressions GROUP BY reason")
                )
            finally:
                db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StateError(f"state database {self.path}: {exc}") from None
        return StatsRows(issues, feedback, sent, statuses, suppressed)
