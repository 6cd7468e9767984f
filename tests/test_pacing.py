"""Per-domain pacing (smtp.domains): the pure pacer and queue, the config key,
and a digest sent through a real SMTP server on loopback where one domain is
paced, and one asks to slow down, while the others go on."""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import replace
from pathlib import Path

import pytest

from feedpub.config import Config, load_config
from feedpub.delivery import SMTPDeliverer
from feedpub.errors import ConfigError
from feedpub.pacing import DomainPace, DomainPacer, PacedQueue, asks_to_slow_down
from tests.smtpd import Behaviour, smtp_server
from tests.test_delivery import _send, _smtp, _statuses, _subscribe, site  # noqa: F401


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_paced_domain_waits_its_rate_and_its_connections() -> None:
    clock = Clock()
    pacer = DomainPacer({"gmail.com": DomainPace(rate=2, connections=1)}, clock)
    assert pacer.key("a@GMAIL.com") == "gmail.com"
    assert pacer.key("a@mail.gmail.com") == "gmail.com"  # a subdomain counts as its domain
    assert pacer.key("a@example.org") is None
    assert pacer.wait("a@gmail.com") == 0
    pacer.leaving("a@gmail.com")
    assert pacer.wait("b@gmail.com") == math.inf  # its one connection is taken
    assert pacer.wait("x@example.org") == 0  # others are not held up
    pacer.answered("a@gmail.com")
    assert pacer.wait("b@gmail.com") == pytest.approx(0.5)  # two a second
    clock.now += 0.5
    assert pacer.wait("b@gmail.com") == 0


def test_a_domain_that_asks_to_slow_down_alone_goes_slower() -> None:
    clock = Clock()
    pacer = DomainPacer({"gmail.com": DomainPace(rate=4)}, clock)
    pacer.slow_down("a@gmail.com")
    assert pacer.limits["gmail.com"].rate == 2
    assert pacer.wait("b@gmail.com") == pytest.approx(0.5)
    pacer.slow_down("a@yahoo.com")  # no limit before: one a second now
    assert pacer.limits["yahoo.com"].rate == 1
    assert pacer.wait("b@outlook.com") == 0
    assert asks_to_slow_down("421 4.7.28 Our system has detected an unusual rate")
    assert asks_to_slow_down("421 4.7.0 [TSS04] Messages temporarily deferred")
    assert asks_to_slow_down("450 Too many connections from your IP")
    assert not asks_to_slow_down("452 4.2.2 Mailbox full")
    assert not asks_to_slow_down("550 5.7.1 rate limited")  # permanent: no pacing
    assert not asks_to_slow_down("451 4.3.0 Greylisted, please try again later")


def test_slowing_down_counts_once_a_while_and_has_a_floor() -> None:
    """The answers to the messages already on their way, and each retry, say
    "slow down" again: that halves the rate once, not once each."""
    clock = Clock()
    pacer = DomainPacer({"gmail.com": DomainPace(rate=0.04)}, clock)
    for _ in range(5):
        pacer.slow_down("a@gmail.com")
    assert pacer.limits["gmail.com"].rate == 0.02
    clock.now += 31
    pacer.slow_down("a@gmail.com")
    assert pacer.limits["gmail.com"].rate == pytest.approx(1 / 60)  # the floor


def test_the_queue_holds_back_only_the_domain_that_must_wait() -> None:
    clock = Clock()
    pacer = DomainPacer({"slow.test": DomainPace(rate=1)}, clock)
    queue = PacedQueue(["1@slow.test", "2@slow.test", "3@fast.test", "4@slow.test"], str, pacer)
    assert queue.take() == "1@slow.test"
    pacer.leaving("1@slow.test")
    assert queue.take() == "3@fast.test"  # 2@slow.test is held, 3 goes past it
    assert queue.take() == pytest.approx(1.0)  # only slow.test is left: a second to wait
    clock.now += 1.0
    assert queue.take() == "2@slow.test"  # held ones keep their order
    pacer.leaving("2@slow.test")
    clock.now += 1.0
    assert queue.take() == "4@slow.test"
    assert not queue


def test_smtp_domains_in_the_config(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    site_text = "site: {title: T, url: 'https://e.org/'}\nsmtp:\n  host: mail.e.org\n"
    path.write_text(
        site_text + "  domains: {Gmail.com: {rate: 20, connections: 2}, yahoo.com: {rate: 5}}\n"
    )
    smtp = load_config(path).smtp
    assert smtp is not None
    assert dict(smtp.domains) == {
        "gmail.com": DomainPace(20.0, 2),
        "yahoo.com": DomainPace(5.0, 0),
    }
    path.write_text(
        site_text + "  domains: {'not a domain': {}, b.org: {rate: -1}, c.org: {speed: 3}}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert [str(p) for p in caught.value.problems] == [
        f"{path}: smtp.domains: 'not a domain' is not a domain name",
        f"{path}: smtp.domains: b.org: expected a number of at least 0, got the number -1",
        f"{path}: smtp.domains: c.org: expected a mapping with rate and connections",
    ]


def test_one_paced_domain_holds_up_no_other(site: Config) -> None:  # noqa: F811
    slow = [f"s{n}@slow.test" for n in range(4)]
    fast = [f"f{n}@fast.test" for n in range(8)]
    _subscribe(site, slow + fast)
    with smtp_server() as server:
        smtp = _smtp(server.port, connections=2, domains={"slow.test": DomainPace(rate=5)})
        config = replace(site, smtp=smtp)
        report = _send(config, SMTPDeliverer(smtp, None))
    assert report.sent == 12
    arrived = {r.recipients[0]: r.at for r in server.handler.received}
    times = sorted(arrived[a] for a in slow)
    assert all(b - a >= 0.15 for a, b in itertools.pairwise(times)), times  # five a second
    assert max(arrived[a] for a in fast) < times[-1]  # the fast ones did not wait behind them


def test_a_domain_that_says_too_many_is_slowed_and_its_message_goes_again(
    site: Config,  # noqa: F811
) -> None:
    busy = [f"b{n}@busy.test" for n in range(3)]
    others = [f"o{n}@other.test" for n in range(6)]
    _subscribe(site, busy + others)
    told: list[str] = []

    def reply(address: str) -> str | None:
        if address.endswith("@busy.test") and not told:
            told.append(address)
            return "421 4.7.28 Too many messages, slow down"
        return None

    with smtp_server(Behaviour(rcpt_reply=reply)) as server:
        smtp = _smtp(server.port, max_attempts=3)
        config = replace(site, smtp=smtp)
        started = time.monotonic()
        report = _send(config, SMTPDeliverer(smtp, None))
    assert report.sent == 9 and report.deferred == 0
    assert {s for s, _, _ in _statuses(config).values()} == {"sent"}
    arrived = {r.recipients[0]: r.at - started for r in server.handler.received}
    busy_times = sorted(arrived[a] for a in busy)
    assert busy_times[-1] - busy_times[0] >= 1.9  # one a second once it asked
    assert max(arrived[a] for a in others) < busy_times[-1]
