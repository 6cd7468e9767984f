"""The confirmation queue: composed once, sent once, however many processes
work it, through a real SMTP server on loopback."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import dkim

from feedpub.config import Config
from feedpub.confirmations import KEEP_FINISHED, SWEEP_EVERY, ConfirmationSender
from feedpub.delivery import SMTPDeliverer
from feedpub.store import Store
from tests.conftest import NOW, subscribe_requests
from tests.smtpd import Behaviour, smtp_server
from tests.test_delivery import _smtp, dkim_key, site  # noqa: F401


def _sender(config: Config, clock: datetime = NOW) -> ConfirmationSender:
    return ConfirmationSender(
        config,
        lambda c: SMTPDeliverer(c.smtp, None),  # type: ignore[arg-type]
        lambda: clock,
    )


def test_two_workers_send_each_confirmation_once(site: Config) -> None:  # noqa: F811
    people = [f"reader{n}@example.net" for n in range(40)]
    with Store(site.state) as store:
        for address in people:
            store.queue_subscribe_request(address, "", NOW)
    with smtp_server(Behaviour(delay=0.005)) as server:
        config = replace(site, smtp=_smtp(server.port))
        reports = []
        workers = [
            threading.Thread(target=lambda: reports.append(_sender(config).run())) for _ in range(2)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
    received = server.handler.by_recipient()
    assert sorted(received) == sorted(people)
    assert {len(copies) for copies in received.values()} == {1}
    assert sum(r.sent for r in reports) == 40 and all(r.sent for r in reports)  # both worked
    assert {status for _, status, _, _ in subscribe_requests(config.state)} == {"sent"}


def test_a_refused_address_is_given_up_and_the_rest_go(site: Config) -> None:  # noqa: F811
    with Store(site.state) as store:
        store.queue_subscribe_request("nobody@example.net", "", NOW)
        store.queue_subscribe_request("reader@example.net", "", NOW)
    with smtp_server(Behaviour(refuse={"nobody@example.net"})) as server:
        report = _sender(replace(site, smtp=_smtp(server.port))).run()
    assert (report.sent, report.failed) == (1, 1)
    assert list(server.handler.by_recipient()) == ["reader@example.net"]
    (refused, _) = subscribe_requests(site.state)
    assert refused == (
        "nobody@example.net",
        "failed",
        1,
        "550 5.1.1 <nobody@example.net>: no such user here",
    )


def test_confirmations_are_dkim_signed(tmp_path: Path, site: Config) -> None:  # noqa: F811
    settings_dkim, dns = dkim_key(tmp_path)
    with Store(site.state) as store:
        store.queue_subscribe_request("signed@example.net", "", NOW)
    with smtp_server() as server:
        report = _sender(replace(site, smtp=_smtp(server.port, dkim=settings_dkim))).run()
    assert report.sent == 1
    (received,) = server.handler.received
    assert received.message["Subject"] == "确认订阅《AI 新闻速递 · AI News Digest》"
    assert dkim.verify(received.data, dnsfunc=dns)


def test_finished_requests_are_forgotten_after_a_week_by_an_hourly_sweep(
    site: Config,  # noqa: F811
) -> None:
    clock = [NOW]
    with smtp_server() as server:
        config = replace(site, smtp=_smtp(server.port))
        sender = ConfirmationSender(
            config,
            lambda c: SMTPDeliverer(c.smtp, None),  # type: ignore[arg-type]
            lambda: clock[0],
        )
        with Store(site.state) as store:
            store.queue_subscribe_request("first@example.net", "", NOW)
        sender.run()
        clock[0] = NOW + KEEP_FINISHED + timedelta(minutes=1)
        with Store(site.state) as store:  # finished by the sweep's next run
            store.queue_subscribe_request("second@example.net", "", NOW)
        sender.run()
        assert [r[:2] for r in subscribe_requests(site.state)] == [("second@example.net", "sent")]
        clock[0] += SWEEP_EVERY / 2  # swept half an hour ago: not again
        sender.run()
        assert len(subscribe_requests(site.state)) == 1
        clock[0] += SWEEP_EVERY / 2
        sender.run()
    assert subscribe_requests(site.state) == []
    assert len(server.handler.received) == 2
