"""A recipient the server puts off at RCPT time (greylisting's 451): the refusal
comes back at once as "temporary", and the connection goes on with the next
message, whether MAIL, RCPT and DATA went one by one or pipelined (RFC 2920),
and whatever the server answers to the DATA that followed a refused RCPT:
aiosmtpd's 503, Postfix's 554 5.5.1, or a 421 and a closed connection.

Driven through SMTPDeliverer and Connections themselves, on real aiosmtpd
servers, each test bounded in time: a reply waited for that never comes fails
it rather than hangs it. The last tests do the same with a real Postfix
(tests/postfix.py), told to answer an unknown user with a 450, the way it
answers while greylisting, and to hang up after a few errors."""

from __future__ import annotations

import smtplib
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TypeVar

import pytest
from aiosmtpd.smtp import SMTP

from feedpub.config import SmtpConfig
from feedpub.delivery import Outcome, SMTPDeliverer
from feedpub.sending import Connections
from tests.postfix import PostfixServer, running_postfix
from tests.smtpd import Behaviour, Server, smtp_server

T = TypeVar("T")

GREYLISTED = "451 4.3.0 Greylisted, try again later"
SENDER = "digest@example.org"
# Well under the sockets' own timeout (SMTP_TIMEOUT): a send that waits for a
# reply that never comes is caught here, not ended by the socket timing out.
BOUND = 10.0
SMTP_TIMEOUT = 30.0


def _message(recipient: str) -> bytes:
    return (
        f"From: {SENDER}\r\nTo: {recipient}\r\nSubject: Issue for {recipient}\r\n\r\n"
        f"Hello {recipient}\r\n.a line that starts with a dot\r\n"
    ).encode()


def _settings(port: int) -> SmtpConfig:
    return SmtpConfig(
        host="127.0.0.1",
        port=port,
        security="none",
        username=None,
        password_env="FEEDPUB_TEST_PASSWORD",
        timeout=SMTP_TIMEOUT,
        rate_limit=0,
        max_attempts=3,
        retry_delay=0,
        ca_file=None,
        dkim=None,
    )


def _within(seconds: float, work: Callable[[], T]) -> T:
    """``work()``, which must be over within ``seconds``."""
    box: list[tuple[bool, object]] = []

    def run() -> None:
        try:
            box.append((True, work()))
        except BaseException as error:
            box.append((False, error))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still waiting after {seconds} s"
    ok, value = box[0]
    if not ok:
        assert isinstance(value, BaseException)
        raise value
    return value  # type: ignore[return-value]


class _NoValidRecipients(SMTP):
    """Answers a DATA that has no recipient with ``reply`` (aiosmtpd says 503),
    and with ``close`` hangs up after it."""

    reply = "554 5.5.1 Error: no valid recipients"  # Postfix's
    close = False

    async def smtp_DATA(self, arg: str) -> None:
        envelope = self.envelope
        if envelope is None or not envelope.mail_from or envelope.rcpt_tos:
            await super().smtp_DATA(arg)
            return
        await self.push(self.reply)
        if self.close and self.transport is not None:
            self.transport.close()


class _TooManyErrors(_NoValidRecipients):
    reply = "421 4.7.0 Error: too many errors"
    close = True


@contextmanager
def _server(
    behaviour: Behaviour, *, pipelining: bool, server: type[SMTP] | None = None
) -> Iterator[Server]:
    """smtp_server, offering PIPELINING if asked, served by ``server``'s kind of
    SMTP session; ``handler.greetings`` counts the connections."""
    with smtp_server(behaviour) as running:
        handler = running.handler
        greetings: list[str] = []
        handler.greetings = greetings  # type: ignore[attr-defined]

        async def handle_EHLO(server_, session, envelope, hostname, responses):  # type: ignore[no-untyped-def]
            session.host_name = hostname
            greetings.append(hostname)
            if pipelining:
                return [*responses[:-1], "250-PIPELINING", responses[-1]]
            return responses

        handler.handle_EHLO = handle_EHLO  # type: ignore[attr-defined]
        if server is not None:
            controller = running.controller
            kind = server
            controller.factory = lambda: kind(controller.handler, **controller.SMTP_kwargs)  # type: ignore[method-assign]
        yield running


Serve = Callable[[Behaviour], AbstractContextManager[Server]]
# Each kind of server, and whether it hangs up after a refused RCPT.
SERVERS = [
    pytest.param(lambda b: _server(b, pipelining=False), False, id="one by one"),
    pytest.param(lambda b: _server(b, pipelining=True), False, id="pipelined, 503 to DATA"),
    pytest.param(
        lambda b: _server(b, pipelining=True, server=_NoValidRecipients),
        False,
        id="pipelined, Postfix's 554 to DATA",
    ),
    pytest.param(
        lambda b: _server(b, pipelining=True, server=_TooManyErrors),
        True,
        id="pipelined, 421 to DATA and hung up",
    ),
]
EVERY_SERVER = pytest.mark.parametrize(("serve", "hangs_up"), SERVERS)


def _greylisting(addresses: set[str], tries: Counter[str] | None = None) -> Behaviour:
    lock = threading.Lock()

    def reply(address: str) -> str | None:
        with lock:
            if tries is not None:
                tries[address] += 1
        return GREYLISTED if address in addresses else None

    return Behaviour(rcpt_reply=reply)


def _arrived_once(server: Server, addresses: list[str]) -> None:
    """Each of ``addresses``, and no other, got its own message once, whole."""
    received = server.handler.by_recipient()
    assert sorted(received) == sorted(addresses)
    for address, copies in received.items():
        assert len(copies) == 1
        assert copies[0].sender == SENDER
        assert copies[0].data.replace(b"\r\n", b"\n") == _message(address).replace(b"\r\n", b"\n")


@EVERY_SERVER
def test_a_greylisted_recipient_is_put_off_at_once_and_the_next_one_goes(
    serve: Serve, hangs_up: bool
) -> None:
    with serve(_greylisting({"grey@example.net"})) as server:
        deliverer = SMTPDeliverer(_settings(server.port), None)

        def send(recipient: str) -> Outcome:
            return deliverer.send(_message(recipient), SENDER, recipient, "n")

        try:
            first = _within(BOUND, lambda: send("grey@example.net"))
            second = _within(BOUND, lambda: send("ok@example.net"))
            again = _within(BOUND, lambda: send("grey@example.net"))
            third = _within(BOUND, lambda: send("other@example.net"))
        finally:
            deliverer.close()
    assert first == again == Outcome("temporary", GREYLISTED)
    assert second == third == Outcome("sent", "250 accepted")
    _arrived_once(server, ["ok@example.net", "other@example.net"])
    # The same connection all along, but after a server that hung up.
    assert len(server.handler.greetings) == (3 if hangs_up else 1)  # type: ignore[attr-defined]


def _send_all(
    pool: Connections[tuple[str, int]], recipients: list[str], attempts: int, retry_after: float
) -> dict[str, list[Outcome | Exception]]:
    """Every recipient's message through ``pool``, as a digest goes: a temporary
    refusal goes again ``retry_after`` seconds later until ``attempts`` tries;
    each recipient's outcomes, in order."""
    outcomes: dict[str, list[Outcome | Exception]] = {r: [] for r in recipients}

    def settle() -> None:
        (recipient, attempt), result = pool.next_done()
        outcomes[recipient].append(result)
        if isinstance(result, Outcome) and result.result == "temporary" and attempt < attempts:
            pool.submit(
                (recipient, attempt + 1),
                _message(recipient),
                SENDER,
                recipient,
                "n",
                after=retry_after,
            )

    with pool:
        for recipient in recipients:
            while pool.full:
                settle()
            pool.submit((recipient, 1), _message(recipient), SENDER, recipient, "n")
        while pool:
            settle()
    return outcomes


@EVERY_SERVER
@pytest.mark.parametrize("connections", [1, 4])
@pytest.mark.parametrize("retry_after", [0.0, 0.01])
def test_greylisted_recipients_are_tried_max_attempts_times_and_the_rest_delivered(
    serve: Serve, hangs_up: bool, connections: int, retry_after: float
) -> None:
    readers = [f"reader{n:02d}@example.net" for n in range(18)]
    greylisted = set(readers[::3])
    tries: Counter[str] = Counter()
    behaviour = _greylisting(greylisted, tries)
    behaviour.delay = 0.01  # so that several messages are on their way at once
    with serve(behaviour) as server:
        settings = _settings(server.port)
        first = SMTPDeliverer(settings, None)
        pool = Connections[tuple[str, int]](
            first, lambda: SMTPDeliverer(settings, None), connections
        )
        try:
            started = time.monotonic()
            outcomes = _within(BOUND, lambda: _send_all(pool, readers, 3, retry_after))
            took = time.monotonic() - started
        finally:
            first.close()
    assert took < BOUND
    for reader in readers:
        if reader in greylisted:
            assert outcomes[reader] == [Outcome("temporary", GREYLISTED)] * 3
            assert tries[reader] == 3  # asked for at RCPT each time, then left for later
        else:
            assert outcomes[reader] == [Outcome("sent", "250 accepted")]
            assert tries[reader] == 1
    _arrived_once(server, [r for r in readers if r not in greylisted])
    if connections > 1:
        assert len(server.handler.peers) > 1 and server.handler.most_at_once > 1


def _refused_then_ok(port: int, refused: str) -> tuple[Outcome, Outcome]:
    """The outcomes of a message to ``refused``, then of one to ok@example.net,
    on one deliverer."""
    deliverer = SMTPDeliverer(_settings(port), None)
    try:
        first = _within(BOUND, lambda: deliverer.send(_message(refused), SENDER, refused, "n"))
        then = _within(
            BOUND,
            lambda: deliverer.send(_message("ok@example.net"), SENDER, "ok@example.net", "n"),
        )
    finally:
        deliverer.close()
    return first, then


@EVERY_SERVER
def test_a_permanent_refusal_at_rcpt_fails_that_one_and_the_next_one_goes(
    serve: Serve, hangs_up: bool
) -> None:
    with serve(Behaviour(refuse={"gone@example.net"})) as server:
        refused, sent = _refused_then_ok(server.port, "gone@example.net")
    assert refused == Outcome("permanent", "550 5.1.1 <gone@example.net>: no such user here")
    assert sent == Outcome("sent", "250 accepted")
    _arrived_once(server, ["ok@example.net"])


@pytest.mark.parametrize("pipelining", [False, True], ids=["one by one", "pipelined"])
def test_a_421_at_rcpt_puts_that_one_off_and_the_next_goes_on_a_new_connection(
    pipelining: bool,
) -> None:
    closing = Behaviour(
        rcpt_reply=lambda a: "421 4.3.2 Service shutting down" if a == "late@example.net" else None
    )
    with _server(closing, pipelining=pipelining) as server:
        put_off, sent = _refused_then_ok(server.port, "late@example.net")
    assert put_off == Outcome("temporary", "421 4.3.2 Service shutting down")
    # Not "connection lost": the refusal was the last message's, not this one's.
    assert sent == Outcome("sent", "250 accepted")
    _arrived_once(server, ["ok@example.net"])
    assert len(server.handler.greetings) == 2  # type: ignore[attr-defined]


@contextmanager
def _greylisting_postfix(users: list[str], hang_up_after: int) -> Iterator[PostfixServer]:
    """A real Postfix that puts off every user of list.test but ``users`` at RCPT
    time with a 450, and hangs up on a client after ``hang_up_after`` errors since
    the last message it took (its "421 4.7.0 Error: too many errors"): a refused
    RCPT is one, the "554 5.5.1 Error: no valid recipients" to the DATA after it
    another."""
    with running_postfix(users, "bounces+{token}@bounce.test", reject_unknown_at_rcpt=True) as mta:
        settings = {
            "unknown_virtual_mailbox_reject_code": "450",
            "smtpd_hard_error_limit": str(hang_up_after),
            "smtpd_soft_error_limit": str(hang_up_after + 1),  # no pause before it
        }
        conf = str(mta.config_dir)
        subprocess.run(
            ["postconf", "-c", conf, "-e", *(f"{k} = {v}" for k, v in settings.items())],
            check=True,
            capture_output=True,
        )
        subprocess.run(["postfix", "-c", conf, "reload"], check=True, capture_output=True)
        # The smtpd processes started before the reload end at their leisure.
        deadline = time.monotonic() + 20
        while True:
            with smtplib.SMTP(mta.host, mta.port, timeout=10) as probe:
                probe.ehlo()
                probe.mail(SENDER)
                if probe.rcpt("probe@list.test")[0] == 450:
                    break
            assert time.monotonic() < deadline, "Postfix kept its old settings"
            time.sleep(0.1)
        yield mta


def test_a_real_postfix_greylisting_at_rcpt_and_hanging_up() -> None:
    users = ["alice", "bob", "carol"]
    order = [
        "grey1@list.test",
        "alice@list.test",
        "grey1@list.test",
        "grey2@list.test",
        "grey3@list.test",  # the fifth error, at RCPT: the DATA after it gets the 421
        "bob@list.test",
        "grey2@list.test",
        "carol@list.test",
    ]
    with _greylisting_postfix(users, hang_up_after=5) as mta:
        deliverer = SMTPDeliverer(_settings(mta.port), None)
        try:
            outcomes = [
                _within(BOUND, lambda r=r: deliverer.send(_message(r), SENDER, r, "n"))  # type: ignore[misc]
                for r in order
            ]
        finally:
            deliverer.close()
        for user in users:
            (arrived,) = mta.wait_for_messages(mta.maildir(user), 1)
            assert f"Hello {user}@list.test".encode() in arrived
        log = mta.log()
    for recipient, outcome in zip(order, outcomes, strict=True):
        if recipient.startswith("grey"):
            assert outcome.result == "temporary" and not outcome.connection
            assert outcome.reply == (
                f"450 4.1.1 <{recipient}>: Recipient address rejected: "
                "User unknown in virtual mailbox table"
            )
        else:
            assert outcome == Outcome("sent", "250 accepted"), recipient
    assert "too many errors after RCPT" in log


def test_a_real_postfix_greylisting_with_several_connections() -> None:
    users = [f"reader{n}" for n in range(6)]
    readers = [f"{user}@list.test" for user in users]
    greylisted = [f"grey{n}@list.test" for n in range(6)]
    everyone = [r for pair in zip(readers, greylisted, strict=True) for r in pair]
    # Two messages put off in a row on a connection make it hang up, which 18 put
    # off and 6 taken over 3 connections cannot but do.
    with _greylisting_postfix(users, hang_up_after=3) as mta:
        settings = _settings(mta.port)
        first = SMTPDeliverer(settings, None)
        pool = Connections[tuple[str, int]](first, lambda: SMTPDeliverer(settings, None), 3)
        try:
            outcomes = _within(BOUND, lambda: _send_all(pool, everyone, 3, 0.01))
        finally:
            first.close()
        for user in users:
            (arrived,) = mta.wait_for_messages(mta.maildir(user), 1)
            assert f"Hello {user}@list.test".encode() in arrived
        log = mta.log()
    assert "too many errors after RCPT" in log
    for recipient in greylisted:
        assert len(outcomes[recipient]) == 3
        for outcome in outcomes[recipient]:
            assert isinstance(outcome, Outcome) and outcome.reply.startswith("450 4.1.1 ")
            assert outcome.result == "temporary" and not outcome.connection
    for recipient in readers:
        assert outcomes[recipient] == [Outcome("sent", "250 accepted")]
