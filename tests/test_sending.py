"""Several connections at once (smtp.connections): each message still goes once,
is checked and recorded as with one, and a server that is down stops them all."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from feedpub.config import Config
from feedpub.delivery import Outcome, SMTPDeliverer
from feedpub.errors import DeliveryError
from feedpub.pipeline import DigestSender
from feedpub.store import Store
from tests.conftest import NOW
from tests.smtpd import Behaviour, free_port, smtp_server
from tests.test_delivery import PEOPLE, _send, _smtp, _statuses, _subscribe, site  # noqa: F401

READERS = [f"reader{n:02d}@example.net" for n in range(40)]


def test_four_connections_send_each_message_once(site: Config) -> None:  # noqa: F811
    _subscribe(site, READERS)
    refused = READERS[7]
    busy = Behaviour(
        delay=0.05,
        refuse={refused},
        data_reply=lambda n: "451 4.3.0 Try again later" if n == 3 else None,
    )
    with smtp_server(busy) as server:
        config = replace(site, smtp=_smtp(server.port, connections=4))
        report = _send(config, SMTPDeliverer(config.smtp, None))  # type: ignore[arg-type]
    received = server.handler.by_recipient()
    assert sorted(received) == sorted(set(READERS) - {refused})
    assert {len(copies) for copies in received.values()} == {1}  # the 451 one went again, once
    assert len(server.handler.peers) == 4 and server.handler.most_at_once > 1
    assert (report.sent, report.failed, report.deferred) == (39, 1, 0)
    statuses = _statuses(config)
    assert statuses[refused][0] == "failed"
    assert {status for address, (status, _, _) in statuses.items() if address != refused} == {
        "sent"
    }


def test_a_subscriber_who_leaves_during_the_send_gets_nothing(site: Config) -> None:  # noqa: F811
    _subscribe(site, READERS)
    leaver = READERS[-1]

    def leave(n: int) -> None:  # while the first messages are in flight
        if n == 0:
            with Store(site.state_path) as store:
                store.set_status(leaver, "unsubscribed", NOW)

    with smtp_server(Behaviour(delay=0.02, on_data=leave)) as server:
        config = replace(site, smtp=_smtp(server.port, connections=3))
        report = _send(config, SMTPDeliverer(config.smtp, None))  # type: ignore[arg-type]
    assert leaver not in server.handler.by_recipient()
    assert (report.sent, report.skipped) == (39, 1)


def test_a_server_that_is_down_stops_every_connection(site: Config) -> None:  # noqa: F811
    _subscribe(site)
    port = free_port()
    config = replace(site, smtp=_smtp(port, connections=4))
    with pytest.raises(DeliveryError) as caught:
        _send(config, SMTPDeliverer(config.smtp, None))  # type: ignore[arg-type]
    assert str(caught.value).endswith("issue #1 is recorded and 5 message(s) wait for the next run")
    assert {s for s, _, _ in _statuses(config).values()} == {"pending"}
    with smtp_server(port=port) as server:
        report = _send(config, SMTPDeliverer(config.smtp, None))  # type: ignore[arg-type]
    assert report.sent == 5 and sorted(server.handler.by_recipient()) == sorted(PEOPLE)


class _Broken:
    """A deliverer with a bug: it raises what no deliverer should."""

    def send(self, data: bytes, sender: str, recipient: str, name: str) -> Outcome:
        raise RuntimeError("a bug in a deliverer")

    def close(self) -> None:
        pass


def test_a_bug_while_sending_is_raised_as_it_is_and_the_message_waits(
    site: Config,  # noqa: F811
) -> None:
    _subscribe(site)
    config = replace(site, smtp=_smtp(free_port(), connections=2))
    with Store(config.state_path) as store:
        sender = DigestSender(config, store, _Broken(), clock=lambda: NOW, connect=_Broken)
        with pytest.raises(RuntimeError, match="a bug in a deliverer"):
            sender.run()
    assert {s for s, _, _ in _statuses(config).values()} == {"pending"}


def test_a_server_that_stops_answering_times_out_on_every_connection(
    site: Config,  # noqa: F811
) -> None:
    """The connections wait for replies in turns, in one thread; a reply that
    does not come within smtp.timeout fails as a read would, and the message waits."""
    _subscribe(site)
    with smtp_server(Behaviour(delay=2)) as server:
        config = replace(site, smtp=_smtp(server.port, connections=2, timeout=0.3))
        with pytest.raises(DeliveryError, match=r"cannot reach 127\.0\.0\.1:\d+: timed out"):
            _send(config, SMTPDeliverer(config.smtp, None))  # type: ignore[arg-type]
    assert {s for s, _, _ in _statuses(config).values()} == {"pending"}


def test_each_connection_keeps_to_the_rate_limit(site: Config) -> None:  # noqa: F811
    _subscribe(site)  # five: one of two connections sends three of them
    with smtp_server() as server:
        config = replace(site, smtp=_smtp(server.port, connections=2, rate_limit=10))
        started = time.monotonic()
        report = _send(config, SMTPDeliverer(config.smtp, None))  # type: ignore[arg-type]
        elapsed = time.monotonic() - started
    assert report.sent == 5 and len(server.handler.peers) == 2
    assert elapsed >= 0.2  # three sends a tenth of a second apart
