"""The digest sender's resume path: an issue recorded while the mail server was
down is finished later, and only to those who still want it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from feedpub.config import Config
from feedpub.delivery import SMTPDeliverer
from feedpub.errors import DeliveryError
from feedpub.store import Store
from tests.conftest import NOW
from tests.smtpd import free_port, smtp_server
from tests.test_delivery import PEOPLE, _send, _smtp, _statuses, _subscribe, site  # noqa: F401


def _record_while_down(site: Config) -> Config:  # noqa: F811
    """Subscribe everyone, then try to send with nothing listening: issue #1 is
    recorded and every delivery waits."""
    _subscribe(site)
    config = replace(site, smtp=_smtp(free_port()))
    with pytest.raises(DeliveryError):
        _send(config, SMTPDeliverer(config.smtp, None))  # type: ignore[arg-type]
    assert {s for s, _, _ in _statuses(config).values()} == {"pending"}
    return config


def test_a_resumed_issue_skips_who_left_or_paused_meanwhile(site: Config) -> None:  # noqa: F811
    config = _record_while_down(site)
    ada, bob, carol, dan, _ = PEOPLE
    with Store(config.state) as store:
        store.set_status_by_token(store.subscriber(ada).token, "unsubscribed", NOW)  # type: ignore[union-attr]
        store.set_status(bob, "bounced", NOW)
        store.set_preferences(store.subscriber(carol).token, (), True, NOW)  # type: ignore[union-attr]
        # Dan leaves and comes back: the issue was recorded for his old subscription.
        store.set_status(dan, "unsubscribed", NOW)
        store.set_status(dan, "active", NOW)
    assert config.smtp is not None
    with smtp_server(port=config.smtp.port) as server:
        report = _send(config, SMTPDeliverer(config.smtp, None))  # type: ignore[arg-type]
    assert list(server.handler.by_recipient()) == ["eve@example.com"]
    assert (report.sent, report.skipped) == (1, 4)
    assert _statuses(config) == {
        ada: ("skipped", 3, "unsubscribed since the issue was recorded"),  # tried while down
        bob: ("skipped", 0, "bounced since the issue was recorded"),
        carol: ("skipped", 0, "paused since the issue was recorded"),
        dan: ("skipped", 0, "left and came back since the issue was recorded"),
        "eve@example.com": ("sent", 1, "250 accepted"),
    }


def test_a_subscriber_who_leaves_during_a_send_gets_nothing(site: Config) -> None:  # noqa: F811
    """The check is made right before each message, not once per run."""
    _subscribe(site)
    with smtp_server() as server:
        config = replace(site, smtp=_smtp(server.port))
        with Store(config.state) as store:
            last = store.subscriber(PEOPLE[-1])
        assert last is not None

        def leave_after_first(n: int) -> None:
            if n == 0:
                with Store(config.state) as other:
                    other.set_status_by_token(last.token, "unsubscribed", NOW)

        server.handler.behaviour.on_data = leave_after_first
        report = _send(config, SMTPDeliverer(config.smtp, None))  # type: ignore[arg-type]
    assert PEOPLE[-1] not in server.handler.by_recipient()
    assert (report.sent, report.skipped) == (len(PEOPLE) - 1, 1)
