"""feedpub stats, over a state built with the store's own calls: exact counts
and rates, and the warnings' wording."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedpub.cli import cli
from feedpub.config import load_config
from feedpub.listpolicy import SoftBouncePolicy
from feedpub.model import Issue, ListEvent
from feedpub.stats import IssueStats, warnings
from feedpub.store import Store
from tests.conftest import NOW, REPO

ISSUE_1 = NOW - timedelta(days=20)
ISSUE_2 = NOW - timedelta(days=10)


def _address(n: int) -> str:
    return f"reader{n}@example.net"


def _event(provider: str, n: int, kind: str, event_id: str) -> ListEvent:
    return ListEvent(provider, event_id, _address(n), kind, f"{provider} {kind}")  # type: ignore[arg-type]


def build_state(path: Path) -> None:
    """Issue #1 to readers 1-10 (10 failed), #2 to readers 2-9, then what they did:

    - reader 1: hard bounce of #1 (from the bounce mailbox, so naming #1), reported twice
    - reader 2: soft bounce a day after #1, reported by SES without an issue
    - reader 3: complaint two days after #2; reader 4: complaint eight days after #2
      (too late to count for any issue)
    - reader 5: unsubscribed on the web a day after #2; reader 6: at Mailgun three days after
    """
    policy = SoftBouncePolicy()
    with Store(path) as store:
        store.add_subscribers(
            [(_address(n), "", (), "active") for n in range(1, 11)], ISSUE_1 - timedelta(days=1)
        )
        readers = {s.email: s for s in store.subscribers()}
        for number, when, wanted in ((1, ISSUE_1, range(1, 11)), (2, ISSUE_2, range(2, 10))):
            issue = Issue(number, when, f"Digest #{number}", "<p>x</p>", "x")
            store.record_issue(
                number,
                when,
                issue.subject,
                [f"urn:post:{number}"],
                {"": issue},
                [(readers[_address(n)], "") for n in wanted],
            )
            store.record_settled(
                [
                    (d, "failed" if d.email == _address(10) else "sent", "250 ok")
                    for d in store.deliveries(number)
                ],
                when + timedelta(minutes=5),
            )
        store.record_event(
            _event("mailbox", 1, "hard", "m1"), 1, ISSUE_1 + timedelta(hours=1), policy
        )
        store.record_event(
            _event("mailbox", 1, "hard", "m1"), 1, ISSUE_1 + timedelta(hours=2), policy
        )
        store.record_event(
            _event("ses", 1, "hard", "s1"), None, ISSUE_1 + timedelta(hours=3), policy
        )
        store.record_event(
            _event("ses", 2, "soft", "s2"), None, ISSUE_1 + timedelta(days=1), policy
        )
        store.record_event(
            _event("ses", 3, "complaint", "s3"), None, ISSUE_2 + timedelta(days=2), policy
        )
        store.record_event(
            _event("ses", 4, "complaint", "s4"), None, ISSUE_2 + timedelta(days=8), policy
        )
        store.set_status(_address(5), "unsubscribed", ISSUE_2 + timedelta(days=1))
        store.record_event(
            _event("mailgun", 6, "unsubscribe", "g6"), None, ISSUE_2 + timedelta(days=3), policy
        )


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """The sample config.yaml in a folder of its own, with the state above."""
    shutil.copytree(REPO / "content", tmp_path / "content")
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    build_state(load_config(tmp_path / "config.yaml").state_path)
    return tmp_path / "config.yaml"


def test_the_table_counts_each_issue_exactly(site: Path) -> None:
    result = CliRunner().invoke(cli, ["stats", "--config", str(site)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "issue  date        recipients  sent      failed        hard        soft"
        "  complaints  unsubscribed  subject",
        "#1     2026-11-10          10     9  1 (11.11%)  1 (11.11%)  1 (11.11%)"
        "   0 (0.00%)     0 (0.00%)  Digest #1",
        "#2     2026-11-20           8     8   0 (0.00%)   0 (0.00%)   0 (0.00%)"
        "  1 (12.50%)    2 (25.00%)  Digest #2",
        "subscribers now: 0 pending, 5 active, 4 unsubscribed, 1 bounced",
        "suppressed: 2 complained, 1 bounced, 2 unsubscribed",
        "warning: issue #1: bounce rate 22.22% (2 of 9 sent) is over 2%",
        "warning: issue #2: complaint rate 12.50% (1 of 8 sent) is over 0.1%;"
        " Gmail and Yahoo refuse bulk mail above 0.3%",
    ]


def test_the_json_has_the_same_numbers(site: Path) -> None:
    result = CliRunner().invoke(cli, ["stats", "--json", "--config", str(site)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    first, second = report["issues"]
    assert first == {
        "number": 1,
        "date": "2026-11-10",
        "created_at": ISSUE_1.isoformat(),
        "subject": "Digest #1",
        "recipients": 10,
        "sent": 9,
        "failed": 1,
        "hard_bounces": 1,
        "soft_bounces": 1,
        "complaints": 0,
        "unsubscribed": 0,
        "rates": {
            "failed": 1 / 9,
            "hard_bounces": 1 / 9,
            "soft_bounces": 1 / 9,
            "bounces": 2 / 9,
            "complaints": 0.0,
            "unsubscribed": 0.0,
        },
    }
    assert (second["complaints"], second["unsubscribed"]) == (1, 2)
    assert second["rates"]["complaints"] == 1 / 8 and second["rates"]["unsubscribed"] == 2 / 8
    assert report["subscribers"] == {"pending": 0, "active": 5, "unsubscribed": 4, "bounced": 1}
    assert report["suppressed"] == {"complained": 2, "bounced": 1, "unsubscribed": 2}
    assert report["warnings"] == [
        "issue #1: bounce rate 22.22% (2 of 9 sent) is over 2%",
        "issue #2: complaint rate 12.50% (1 of 8 sent) is over 0.1%;"
        " Gmail and Yahoo refuse bulk mail above 0.3%",
    ]


def test_an_empty_list_has_a_report_too(tmp_path: Path) -> None:
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    result = CliRunner().invoke(cli, ["stats", "--config", str(tmp_path / "config.yaml")])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1:] == [
        "no issue has gone out yet",
        "subscribers now: 0 pending, 0 active, 0 unsubscribed, 0 bounced",
        "suppressed: 0 complained, 0 bounced, 0 unsubscribed",
    ]


def _issue(sent: int, hard: int = 0, soft: int = 0, complaints: int = 0) -> IssueStats:
    return IssueStats(7, NOW, "s", sent, sent, 0, hard, soft, complaints, 0)


def test_warnings_start_over_their_levels() -> None:
    assert warnings(_issue(1000, hard=15, soft=5, complaints=1)) == []  # 2% and 0.1% exactly
    assert warnings(_issue(0)) == []
    assert warnings(_issue(1000, hard=21, complaints=2)) == [
        "issue #7: complaint rate 0.20% (2 of 1000 sent) is over 0.1%;"
        " Gmail and Yahoo refuse bulk mail above 0.3%",
        "issue #7: bounce rate 2.10% (21 of 1000 sent) is over 2%",
    ]
