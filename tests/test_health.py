"""List health in the state database: each reported event applied once, by the
list's policy, and the suppression list (real SQLite files)."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

from feedpub.listpolicy import SoftBouncePolicy
from feedpub.model import Issue, ListEvent, StateLocation
from feedpub.store import Store
from feedpub.verp import delivery_token
from tests.conftest import NOW
from tests.legacy_schema import legacy_state

POLICY = SoftBouncePolicy(limit=3, days=30)


def _event(kind: str, address: str = "ada@example.net", number: int = 1) -> ListEvent:
    return ListEvent("mailbox", f"{kind}-{number}", address, kind, f"{kind} {number}")  # type: ignore[arg-type]


def _status(store: Store, email: str) -> str:
    subscriber = store.subscriber(email)
    assert subscriber is not None
    return subscriber.status


def test_a_hard_bounce_marks_bounced_and_suppresses_once(state: StateLocation) -> None:
    with Store(state) as store:
        store.add_subscriber("Ada@example.net", "Ada", (), "active", NOW)
        outcome = store.record_event(_event("hard"), 1, NOW, POLICY)
        assert (outcome.applied, outcome.says) == (True, "hard bounce: marked bounced")
        assert _status(store, "ada@example.net") == "bounced"
        assert store.suppressions(["ADA@example.net", "bob@example.net"]) == {
            "ada@example.net": "bounced"
        }
        again = store.record_event(_event("hard"), 1, NOW, POLICY)
        assert (again.applied, again.says) == (False, "seen before; counted once")


def test_soft_bounces_count_within_the_window_then_mark_bounced(state: StateLocation) -> None:
    with Store(state) as store:
        store.add_subscriber("ada@example.net", "Ada", (), "active", NOW)
        old = NOW - timedelta(days=31)
        assert store.record_event(_event("soft", number=1), 1, old, POLICY).applied
        first = store.record_event(_event("soft", number=2), 2, NOW, POLICY)
        assert first.says == "soft bounce 1 of 3 within 30 days"  # the old one is past the window
        store.record_event(_event("soft", number=3), 3, NOW, POLICY)
        assert _status(store, "ada@example.net") == "active"
        assert store.suppressions(["ada@example.net"]) == {}
        third = store.record_event(_event("soft", number=4), 4, NOW, POLICY)
        assert third.says == "soft bounce 3 of 3 within 30 days: marked bounced"
        assert _status(store, "ada@example.net") == "bounced"


def test_a_complaint_unsubscribes_for_good(state: StateLocation) -> None:
    with Store(state) as store:
        store.add_subscriber("ada@example.net", "Ada", (), "active", NOW)
        store.record_event(_event("complaint"), 1, NOW, POLICY)
        assert _status(store, "ada@example.net") == "unsubscribed"
        assert store.suppressions(["ada@example.net"]) == {"ada@example.net": "complained"}
        # A later bounce does not weaken it, and an operator cannot lift it.
        store.record_event(_event("hard"), 2, NOW, POLICY)
        store.lift_suppressions(["ada@example.net"], complaints=False)
        assert store.suppressions(["ada@example.net"]) == {"ada@example.net": "complained"}
        # The person's own confirmed sign-up does.
        pending = store.prepare_confirmation(
            "ada@example.net", "Ada", NOW, NOW - timedelta(hours=1), 5
        )
        assert pending is not None
        assert store.use_confirmation(pending[1], NOW, NOW - timedelta(hours=1)) is not None
        assert _status(store, "ada@example.net") == "active"
        assert store.suppressions(["ada@example.net"]) == {}


def test_an_event_for_an_unknown_address_changes_nothing(state: StateLocation) -> None:
    with Store(state) as store:
        outcome = store.record_event(_event("complaint", "who@example.net"), None, NOW, POLICY)
        assert (outcome.applied, outcome.says) == (
            False,
            "no subscriber has this address; nothing changed",
        )
        assert store.suppressions(["who@example.net"]) == {}
        assert store.subscriber("who@example.net") is None


def test_leaving_the_list_suppresses_the_address(state: StateLocation) -> None:
    with Store(state) as store:
        ada = store.add_subscriber("ada@example.net", "Ada", (), "active", NOW)
        store.set_status_by_token(ada.token, "unsubscribed", NOW)
        assert store.suppressions(["ada@example.net"]) == {"ada@example.net": "unsubscribed"}
        store.lift_suppressions(["ada@example.net"], complaints=False)
        assert store.suppressions(["ada@example.net"]) == {}


def test_a_delivery_token_names_its_delivery_and_cannot_be_made_up(
    tmp_path: Path, issue: Issue
) -> None:
    with Store(tmp_path / "state.db") as store:
        ada = store.add_subscriber("ada@example.net", "Ada", (), "active", NOW)
        store.record_issue(1, NOW, "Subject", [], {"all": issue}, [(ada, "all")])
        token = delivery_token(1, ada.id, ada.token)
        found = store.delivery_for_token(token)
        assert found is not None and (found.issue, found.email) == (1, "ada@example.net")
        forged = token[:-1] + ("0" if token[-1] != "0" else "1")
        for wrong in (forged, delivery_token(2, ada.id, ada.token), "nonsense", ""):
            assert store.delivery_for_token(wrong) is None


def test_those_who_left_before_list_health_are_suppressed_on_migration(tmp_path: Path) -> None:
    older = legacy_state(tmp_path / "older.db", 5)
    db = sqlite3.connect(older)
    for email, status in (
        ("a@x.org", "active"),
        ("b@x.org", "bounced"),
        ("u@x.org", "unsubscribed"),
    ):
        db.execute(
            "INSERT INTO subscribers (email, email_key, status, token, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, '2026-01-01', '2026-01-01')",
            (email, email, status, "t-" + email),
        )
    db.commit()
    db.close()
    with Store(older) as store:
        assert store.suppressions(["a@x.org", "b@x.org", "u@x.org"]) == {
            "b@x.org": "bounced",
            "u@x.org": "unsubscribed",
        }
