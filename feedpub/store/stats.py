"""The rows ``feedpub stats`` and the status page count, read in one snapshot."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from feedpub.stats import Feedback, IssueTotals, StatsRows
from feedpub.store.database import Database


class ListStatistics(Database):
    def stats_rows(self) -> StatsRows:
        """Each issue's delivery counts, every bounce, complaint and unsubscribe,
        the issues sent to the addresses those that name no issue are about, and
        the list's counts by status and suppression reason."""
        with self._transaction(snapshot=True) as db:
            issues = [
                IssueTotals(
                    r["number"],
                    datetime.fromisoformat(r["created_at"]),
                    r["subject"],
                    r["recipients"],
                    r["sent"],
                    r["failed"],
                )
                for r in db.all(
                    "SELECT i.number, i.created_at, i.subject,"
                    " COUNT(d.subscriber) AS recipients,"
                    " COALESCE(SUM(CASE WHEN d.status = 'sent' THEN 1 ELSE 0 END), 0) AS sent,"
                    " COALESCE(SUM(CASE WHEN d.status = 'failed' THEN 1 ELSE 0 END), 0) AS failed"
                    " FROM issues i LEFT JOIN deliveries d ON d.issue = i.number"
                    " GROUP BY i.number, i.created_at, i.subject ORDER BY i.number"
                )
            ]
            feedback = [
                Feedback(r["email_key"], r["kind"], r["issue"], datetime.fromisoformat(r["at"]))
                for r in db.all(
                    "SELECT email_key, kind, issue, at FROM list_events"
                    " UNION ALL SELECT email_key, 'unsubscribe', NULL, created_at"
                    " FROM suppressions WHERE reason = 'unsubscribed'"
                )
            ]
            sent: defaultdict[str, list[int]] = defaultdict(list)
            for row in db.all(
                "SELECT s.email_key, d.issue FROM deliveries d"
                " JOIN subscribers s ON s.id = d.subscriber"
                " WHERE d.status = 'sent' AND s.email_key IN"
                " (SELECT email_key FROM list_events WHERE issue IS NULL"
                " UNION SELECT email_key FROM suppressions WHERE reason = 'unsubscribed')"
            ):
                sent[row["email_key"]].append(row["issue"])
            statuses = {
                r["status"]: r["n"]
                for r in db.all("SELECT status, COUNT(*) AS n FROM subscribers GROUP BY status")
            }
            suppressed = {
                r["reason"]: r["n"]
                for r in db.all("SELECT reason, COUNT(*) AS n FROM suppressions GROUP BY reason")
            }
        return StatsRows(issues, feedback, sent, statuses, suppressed)
