"""Several connections at once (smtp.connections): each message still goes once,
is checked and recorded as with one, and a server that is down stops them all."""

from __future__ import annotations

import socket
import time
from dataclasses import replace
from typing import Any

import pytest

from feedpub import delivery
from feedpub.config import Config
from feedpub.delivery import Outcome, Room, SMTPDeliverer
from feedpub.errors import DeliveryError
from feedpub.pipeline import DigestSender
from feedpub.sending import Connections
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
            with Store(site.state) as store:
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
    with Store(config.state) as store:
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


def test_a_message_larger_than_the_socket_buffer_waits_its_turn_to_be_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A big message is written as far as each connection takes it, the rest
    when there is room, while the others go on; each arrives whole."""
    connect = socket.create_connection
    waits: list[Room] = []

    def small_buffer(*args: Any, **kwargs: Any) -> socket.socket:
        made = connect(*args, **kwargs)
        made.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        return made

    def counted(sock: socket.socket) -> Room:
        waits.append(Room(sock))
        return waits[-1]

    monkeypatch.setattr(socket, "create_connection", small_buffer)
    monkeypatch.setattr(delivery, "Room", counted)
    body = b"".join(b"line %07d of a long message\r\n" % n for n in range(20_000))  # 600 kB
    with smtp_server() as server:
        settings = _smtp(server.port)
        first = SMTPDeliverer(settings, None)
        with Connections[int](first, lambda: SMTPDeliverer(settings, None), 3) as pool:
            for n in range(3):
                data = b"Subject: big %d\r\n\r\n" % n + body
                pool.submit(n, data, "digest@example.org", f"reader{n}@example.net", f"big{n}")
            results = sorted((pool.next_done() for _ in range(3)), key=lambda done: done[0])
        first.close()
    assert [(n, outcome) for n, outcome in results] == [
        (n, Outcome("sent", "250 accepted")) for n in range(3)
    ]
    assert waits  # the buffer was full, and the message waited for room
    received = {r.recipients[0]: r.data for r in server.handler.received}
    assert received == {
        f"reader{n}@example.net": b"Subject: big %d\r\n\r\n" % n + body for n in range(3)
    }


def test_a_message_waiting_to_be_tried_again_holds_up_no_other(site: Config) -> None:  # noqa: F811
    _subscribe(site)
    again = Behaviour(data_reply=lambda n: "451 4.3.0 Try again later" if n == 0 else None)
    with smtp_server(again) as server:
        config = replace(site, smtp=_smtp(server.port, connections=2, retry_delay=1))
        report = _send(config, SMTPDeliverer(config.smtp, None))  # type: ignore[arg-type]
    assert report.sent == 5
    arrived = [r.recipients[0] for r in server.handler.received]
    assert arrived[-1] == PEOPLE[0] and sorted(arrived) == sorted(PEOPLE)  # the others went on


def test_a_run_that_raises_drops_the_retry_still_waiting(site: Config) -> None:  # noqa: F811
    """Messages on their way get their answers; one waiting to be tried again
    has not left, and stays for the next run."""
    _subscribe(site)
    again = Behaviour(data_reply=lambda n: "451 4.3.0 Try again later" if n == 0 else None)

    def fail(done: int, total: int) -> None:
        if done == 4:
            raise RuntimeError("stopped by a bug")

    with smtp_server(again) as server:
        config = replace(site, smtp=_smtp(server.port, connections=2, retry_delay=30))
        assert config.smtp is not None
        deliverer = SMTPDeliverer(config.smtp, None)
        started = time.monotonic()
        with Store(config.state) as store, pytest.raises(RuntimeError, match="a bug"):
            DigestSender(config, store, deliverer, clock=lambda: NOW, progress=fail).run()
        deliverer.close()
    assert time.monotonic() - started < 20  # the retry's 30 s were not waited for
    assert PEOPLE[0] not in server.handler.by_recipient()
    assert _statuses(config)[PEOPLE[0]][0] == "sending"  # open: the next run sends it
