"""The confirmation queue: composed once, sent once, however many processes
work it, through a real SMTP server on loopback."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import dkim

from feedpub.config import Config
from feedpub.confirmations import ConfirmationSender
from feedpub.delivery import SMTPDeliverer
from feedpub.store import Store
from tests.conftest import NOW
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
    with Store(site.state_path) as store:
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
    with Store(config.state_path) as store:
        assert {status for _, status, _, _ in store.subscribe_requests()} == {"sent"}


def test_a_refused_address_is_given_up_and_the_rest_go(site: Config) -> None:  # noqa: F811
    with Store(site.state_path) as store:
        store.queue_subscribe_request("nobody@example.net", "", NOW)
        store.queue_subscribe_request("reader@example.net", "", NOW)
    with smtp_server(Behaviour(refuse={"nobody@example.net"})) as server:
        report = _sender(replace(site, smtp=_smtp(server.port))).run()
    assert (report.sent, report.failed) == (1, 1)
    assert list(server.handler.by_recipient()) == ["reader@example.net"]
    with Store(site.state_path) as store:
        (refused, _) = store.subscribe_requests()
    assert refused == (
        "nobody@example.net",
        "failed",
        1,
        "550 5.1.1 <nobody@example.net>: no such user here",
    )


def test_confirmations_are_dkim_signed(tmp_path: Path, site: Config) -> None:  # noqa: F811
    settings_dkim, dns = dkim_key(tmp_path)
    with Store(site.state_path) as store:
        store.queue_subscribe_request("signed@example.net", "", NOW)
    with smtp_server() as server:
        report = _sender(replace(site, smtp=_smtp(server.port, dkim=settings_dkim))).run()
    assert report.sent == 1
    (received,) = server.handler.received
    assert received.message["Subject"] == "确认订阅《AI 新闻速递 · AI News Digest》"
    assert dkim.verify(received.data, dnsfunc=dns)
