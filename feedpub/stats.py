"""How each issue fared and how the list grows: pure, over the rows the store gives.

Per issue: its recipients (the deliveries recorded), how many were sent and
failed, and the recipients it lost or who complained, each counted once per
issue and kind:

- A bounce, complaint or unsubscribe counts for the issue it names. One that
  names none (as the sending services report them) counts for the latest issue
  sent to that address at most ``ATTRIBUTION_WINDOW`` before it, and for none
  if there is no such issue.
- ``unsubscribed`` also counts the addresses on the suppression list as
  unsubscribed, at the time they were suppressed: the unsubscribe page's and
  one-click unsubscribes. Someone who has since signed up again is no longer
  among them.

Rates are per message sent; an issue with none sent has none.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any, NamedTuple

from feedpub.listpolicy import SUPPRESSION_REASONS
from feedpub.model import SUBSCRIBER_STATUSES

ATTRIBUTION_WINDOW = timedelta(days=7)
# Early warnings, below the 0.3% spam rate Gmail and Yahoo hold bulk senders to.
COMPLAINT_WARNING = 0.001
BOUNCE_WARNING = 0.02


class IssueTotals(NamedTuple):
    number: int
    created_at: datetime
    subject: str
    recipients: int
    sent: int
    failed: int


class Feedback(NamedTuple):
    """A bounce (``hard``, ``soft``), ``complaint`` or ``unsubscribe`` about an address."""

    email_key: str
    kind: str
    issue: int | None
    at: datetime


@dataclass(frozen=True, slots=True)
class StatsRows:
    """What the store knows, read at one moment. ``sent`` gives, for each address
    some feedback without an issue is about, the issues sent to it."""

    issues: Sequence[IssueTotals]
    feedback: Sequence[Feedback]
    sent: Mapping[str, Sequence[int]]
    statuses: Mapping[str, int]
    suppressed: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class IssueStats:
    number: int
    created_at: datetime
    subject: str
    recipients: int
    sent: int
    failed: int
    hard: int
    soft: int
    complaints: int
    unsubscribed: int

    def rate(self, count: int) -> float | None:
        """``count`` per message sent; None when nothing was sent."""
        return count / self.sent if self.sent else None

    @property
    def bounce_rate(self) -> float | None:
        return self.rate(self.hard + self.soft)

    @property
    def complaint_rate(self) -> float | None:
        return self.rate(self.complaints)


@dataclass(frozen=True, slots=True)
class ListStats:
    issues: tuple[IssueStats, ...]
    statuses: Mapping[str, int]
    suppressed: Mapping[str, int]
    warnings: tuple[str, ...]


def summarise(rows: StatsRows) -> ListStats:
    """Each issue's numbers, oldest first; the list now; the warnings."""
    counted = _attribute(rows)
    issues = tuple(
        IssueStats(
            *totals,
            hard=len(counted[totals.number, "hard"]),
            soft=len(counted[totals.number, "soft"]),
            complaints=len(counted[totals.number, "complaint"]),
            unsubscribed=len(counted[totals.number, "unsubscribe"]),
        )
        for totals in sorted(rows.issues)
    )
    return ListStats(
        issues,
        {status: rows.statuses.get(status, 0) for status in SUBSCRIBER_STATUSES},
        {reason: rows.suppressed.get(reason, 0) for reason in SUPPRESSION_REASONS},
        tuple(line for issue in issues for line in warnings(issue)),
    )


def _attribute(rows: StatsRows) -> defaultdict[tuple[int, str], set[str]]:
    """The addresses each (issue, kind) counts."""
    created = {issue.number: issue.created_at for issue in rows.issues}
    counted: defaultdict[tuple[int, str], set[str]] = defaultdict(set)
    for feedback in rows.feedback:
        issue = feedback.issue
        if issue is None:
            candidates = [
                (created[number], number)
                for number in rows.sent.get(feedback.email_key, ())
                if number in created
                and feedback.at - ATTRIBUTION_WINDOW <= created[number] <= feedback.at
            ]
            if not candidates:
                continue
            issue = max(candidates)[1]
        counted[issue, feedback.kind].add(feedback.email_key)
    return counted


def _percent(rate: float) -> str:
    return f"{rate:.2%}"


def _limit(rate: float) -> str:
    return f"{rate * 100:g}%"


def warnings(issue: IssueStats) -> list[str]:
    """One sentence for each rate of ``issue`` over its warning level."""
    found = []
    complaint_rate, bounce_rate = issue.complaint_rate, issue.bounce_rate
    if complaint_rate is not None and complaint_rate > COMPLAINT_WARNING:
        found.append(
            f"issue #{issue.number}: complaint rate {_percent(complaint_rate)} "
            f"({issue.complaints} of {issue.sent} sent) is over {_limit(COMPLAINT_WARNING)}; "
            "Gmail and Yahoo refuse bulk mail above 0.3%"
        )
    if bounce_rate is not None and bounce_rate > BOUNCE_WARNING:
        found.append(
            f"issue #{issue.number}: bounce rate {_percent(bounce_rate)} "
            f"({issue.hard + issue.soft} of {issue.sent} sent) is over {_limit(BOUNCE_WARNING)}"
        )
    return found


COLUMNS = (
    "issue",
    "date",
    "recipients",
    "sent",
    "failed",
    "hard",
    "soft",
    "complaints",
    "unsubscribed",
    "subject",
)


def cells(issue: IssueStats, zone: tzinfo) -> list[str]:
    """The issue's row of the table, a count with its rate per sent."""

    def counted(count: int) -> str:
        rate = issue.rate(count)
        return str(count) if rate is None else f"{count} ({_percent(rate)})"

    return [
        f"#{issue.number}",
        issue.created_at.astimezone(zone).date().isoformat(),
        str(issue.recipients),
        str(issue.sent),
        counted(issue.failed),
        counted(issue.hard),
        counted(issue.soft),
        counted(issue.complaints),
        counted(issue.unsubscribed),
        issue.subject,
    ]


def table(stats: ListStats, zone: tzinfo) -> list[str]:
    """The report as lines of text: the issues, the list now, the warnings."""
    rows = [list(COLUMNS), *(cells(issue, zone) for issue in stats.issues)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(COLUMNS) - 1)]
    lines = [
        "  ".join(
            [
                *(
                    cell.ljust(width) if column < 2 else cell.rjust(width)
                    for column, (cell, width) in enumerate(zip(row[:-1], widths, strict=True))
                ),
                row[-1],
            ]
        )
        for row in rows
    ]
    if not stats.issues:
        lines.append("no issue has gone out yet")
    lines.append(_named_counts("subscribers now", stats.statuses))
    lines.append(_named_counts("suppressed", stats.suppressed))
    lines.extend(f"warning: {line}" for line in stats.warnings)
    return lines


def _named_counts(title: str, counts: Mapping[str, int]) -> str:
    return f"{title}: " + ", ".join(f"{count} {name}" for name, count in counts.items())


def as_json(stats: ListStats, zone: tzinfo) -> dict[str, Any]:
    """The report for scripts: the same numbers, rates as fractions (null when
    nothing was sent)."""
    return {
        "issues": [
            {
                "number": issue.number,
                "date": issue.created_at.astimezone(zone).date().isoformat(),
                "created_at": issue.created_at.isoformat(),
                "subject": issue.subject,
                "recipients": issue.recipients,
                "sent": issue.sent,
                "failed": issue.failed,
                "hard_bounces": issue.hard,
                "soft_bounces": issue.soft,
                "complaints": issue.complaints,
                "unsubscribed": issue.unsubscribed,
                "rates": {
                    "failed": issue.rate(issue.failed),
                    "hard_bounces": issue.rate(issue.hard),
                    "soft_bounces": issue.rate(issue.soft),
                    "bounces": issue.bounce_rate,
                    "complaints": issue.complaint_rate,
                    "unsubscribed": issue.rate(issue.unsubscribed),
                },
            }
            for issue in stats.issues
        ],
        "subscribers": dict(stats.statuses),
        "suppressed": dict(stats.suppressed),
        "warnings": list(stats.warnings),
    }
