from __future__ import annotations

import email
import shutil
import signal
import smtplib
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from email.policy import default as default_policy
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from feedpub.config import Config, DkimConfig, SmtpConfig
from feedpub.delivery import OutboxDeliverer, Outcome, SMTPDeliverer, Throttle
from feedpub.errors import DeliveryError, StateError
from feedpub.model import StateLocation
from feedpub.pipeline import DigestSender
from feedpub.store import Store
from tests.conftest import NOW, REPO, sample_site
from tests.smtpd import (
    Behaviour,
    Server,
    free_port,
    self_signed_certificate,
    server_context,
    smtp_server,
)

PEOPLE = [
    "ada@example.net",
    "bob@example.net",
    "carol@example.org",
    "dan@example.com",
    "eve@example.com",
]


def _smtp(port: int, **changes: object) -> SmtpConfig:
    settings = SmtpConfig(
        host="127.0.0.1",
        port=port,
        security="none",
        username=None,
        password_env="FEEDPUB_TEST_PASSWORD",
        timeout=5,
        rate_limit=0,
        max_attempts=3,
        retry_delay=0,
        ca_file=None,
        dkim=None,
    )
    return replace(settings, **changes)  # type: ignore[arg-type]


@pytest.fixture
def site(tmp_path: Path, state: StateLocation) -> Config:
    """The sample site with its own content copy, state (SQLite, then
    PostgreSQL) and outbox."""
    return sample_site(tmp_path, state)


def _subscribe(
    config: Config, people: list[str] = PEOPLE, tags: dict[str, tuple[str, ...]] | None = None
) -> None:
    with Store(config.state) as store:
        for address in people:
            store.add_subscriber(
                address, address.split("@")[0].title(), (tags or {}).get(address, ()), "active", NOW
            )


def _send(config: Config, deliverer: object, now: datetime = NOW, **options: object):  # type: ignore[no-untyped-def]
    with Store(config.state) as store:
        sender = DigestSender(config, store, deliverer, clock=lambda: now)  # type: ignore[arg-type]
        try:
            return sender.run(**options)  # type: ignore[arg-type]
        finally:
            deliverer.close()  # type: ignore[attr-defined]


@contextmanager
def pipelining_server(behaviour: Behaviour | None = None) -> Iterator[Server]:
    """smtp_server, offering PIPELINING (RFC 2920) as Postfix does."""
    with smtp_server(behaviour) as server:

        async def handle_EHLO(server_, session, envelope, hostname, responses):  # type: ignore[no-untyped-def]
            session.host_name = hostname
            return [*responses[:-1], "250-PIPELINING", responses[-1]]

        server.handler.handle_EHLO = handle_EHLO  # type: ignore[attr-defined]
        yield server


SERVERS = pytest.mark.parametrize("serve", [smtp_server, pipelining_server])


def _statuses(config: Config, issue: int = 1) -> dict[str, tuple[str, int, str | None]]:
    with Store(config.state) as store:
        return {d.email: (d.status, d.attempts, d.last_reply) for d in store.deliveries(issue)}


def test_messages_arrive_whole_through_a_real_server(site: Config) -> None:
    _subscribe(site)
    with smtp_server() as server:
        config = replace(site, smtp=_smtp(server.port))
        report = _send(config, SMTPDeliverer(config.smtp, None))  # type: ignore[arg-type]
    assert (report.sent, report.failed, report.deferred, report.issues) == (5, 0, 0, [1])
    arrived = server.handler.by_recipient()
    assert sorted(arrived) == sorted(PEOPLE)
    ids = set()
    for address, copies in arrived.items():
        assert len(copies) == 1
        message = copies[0].message
        assert copies[0].sender == "digest@example.org"
        assert message["To"].addresses[0].addr_spec == address
        assert message["Subject"].startswith("AI 新闻速递 · AI News Digest #1: ")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        html = message.get_body(("html",)).get_content()
        text = message.get_body(("plain",)).get_content()
        assert (
            "微软将为云客户评定AI模型安全等级" in html
            and "微软将为云客户评定AI模型安全等级" in text
        )
        with Store(config.state) as store:
            token = store.subscriber(address).token  # type: ignore[union-attr]
        assert f"https://example.org/newsletter/unsubscribe/{token}" in html
        ids.add(message["Message-ID"])
    assert len(ids) == 5
    assert {status for status, _, _ in _statuses(config).values()} == {"sent"}
    with Store(config.state) as store:
        assert len(store.included_post_ids()) == 6
    with smtp_server(port=server.port) as again:
        report = _send(config, SMTPDeliverer(config.smtp, None))  # type: ignore[arg-type]
    assert report.issues == [] and again.handler.received == []


@SERVERS
def test_temporary_replies_are_retried(site: Config, serve: Callable[..., Server]) -> None:
    _subscribe(site)
    replies = {
        0: "451 4.3.0 Try again later",
        1: "451 4.3.0 Try again later",
        4: "421 4.3.2 Closing",
    }
    with serve(Behaviour(data_reply=replies.get)) as server:
        config = replace(site, smtp=_smtp(server.port))
        report = _send(config, SMTPDeliverer(config.smtp, None))  # type: ignore[arg-type]
    assert (report.sent, report.failed, report.deferred) == (5, 0, 0)
    assert {a: len(c) for a, c in server.handler.by_recipient().items()} == {a: 1 for a in PEOPLE}
    statuses = _statuses(config)
    assert statuses["ada@example.net"][:2] == ("sent", 3)
    assert statuses["bob@example.net"][:2] == ("sent", 1)
    assert statuses["carol@example.org"][:2] == ("sent", 2)  # after the 421 and a new connection


@SERVERS
def test_a_refused_recipient_is_recorded_and_the_rest_go_on(
    site: Config, serve: Callable[..., Server]
) -> None:
    _subscribe(site)
    with serve(Behaviour(refuse={"carol@example.org"})) as server:
        config = replace(site, smtp=_smtp(server.port))
        report = _send(config, SMTPDeliverer(config.smtp, None))  # type: ignore[arg-type]
    assert (report.sent, report.failed) == (4, 1)
    assert report.failures == [
        "carol@example.org: 550 5.1.1 <carol@example.org>: no such user here"
    ]
    assert _statuses(config)["carol@example.org"] == (
        "failed",
        1,
        "550 5.1.1 <carol@example.org>: no such user here",
    )
    assert "carol@example.org" not in server.handler.by_recipient()


def test_temporary_failures_that_persist_wait_for_the_next_run(site: Config) -> None:
    _subscribe(site, PEOPLE[:2])
    always = Behaviour(data_reply=lambda n: "452 4.2.2 Mailbox full")
    with smtp_server(always) as server:
        config = replace(site, smtp=_smtp(server.port))
        report = _send(config, SMTPDeliverer(config.smtp, None))  # type: ignore[arg-type]
    assert (report.sent, report.deferred) == (0, 2)
    assert _statuses(config)["ada@example.net"] == ("pending", 3, "452 4.2.2 Mailbox full")
    with smtp_server(port=server.port) as recovered:
        report = _send(config, SMTPDeliverer(config.smtp, None))  # type: ignore[arg-type]
    assert (report.issues, report.sent) == ([1], 2)
    assert sorted(recovered.handler.by_recipient()) == PEOPLE[:2]


def test_a_server_that_is_down_stops_the_run_and_the_next_run_finishes(site: Config) -> None:
    _subscribe(site)
    port = free_port()
    config = replace(site, smtp=_smtp(port))
    with pytest.raises(DeliveryError) as caught:
        _send(config, SMTPDeliverer(config.smtp, None))  # type: ignore[arg-type]
    assert str(caught.value) == (
        f"cannot reach 127.0.0.1:{port}: Connection refused; "
        "issue #1 is recorded and 5 message(s) wait for the next run"
    )
    assert {s for s, _, _ in _statuses(config).values()} == {"pending"}
    with smtp_server(port=port) as server:
        report = _send(config, SMTPDeliverer(config.smtp, None))  # type: ignore[arg-type]
    assert (report.issues, report.sent) == ([1], 5)
    assert {a: len(c) for a, c in server.handler.by_recipient().items()} == {a: 1 for a in PEOPLE}


def test_a_late_post_with_an_old_date_goes_in_the_next_issue(site: Config) -> None:
    _subscribe(site, PEOPLE[:1])
    outbox = OutboxDeliverer(site.outbox_dir)
    assert _send(site, outbox).issues == [1]
    late = site.content.dir / "posts" / "late.md"
    late.write_text("---\ntitle: Arrived late\ndate: 2020-01-01\n---\nOld news, new file.\n")
    report = _send(site, outbox)
    assert report.issues == [2]
    second = next(p for p in site.outbox_dir.iterdir() if p.name.startswith("feedpub.2."))
    assert (
        "Arrived late"
        in email.message_from_bytes(second.read_bytes(), policy=default_policy)
        .get_body(("plain",))
        .get_content()
    )  # type: ignore[union-attr]
    assert _send(site, outbox).issues == []


def test_a_post_is_never_in_two_issues(site: Config) -> None:
    with Store(site.state) as store:
        store.record_issue(1, NOW, "one", ["urn:uuid:a"], {}, [])
        with pytest.raises(StateError, match="issue #2 conflicts with the ledger"):
            store.record_issue(2, NOW, "two", ["urn:uuid:b", "urn:uuid:a"], {}, [])
        assert store.next_issue_number() == 2  # nothing of issue 2 was kept
        assert store.included_post_ids() == frozenset({"urn:uuid:a"})


def test_tag_preferences(site: Config) -> None:
    tags = {"bob@example.net": ("llm",), "carol@example.org": ("Robotics",)}
    _subscribe(site, PEOPLE[:3], tags)
    report = _send(site, OutboxDeliverer(site.outbox_dir))
    assert (report.sent, report.skipped) == (2, 1)
    assert _statuses(site)["carol@example.org"][0] == "skipped"
    messages = {
        m["To"].addresses[0].addr_spec: m
        for m in (
            email.message_from_bytes(p.read_bytes(), policy=default_policy)
            for p in site.outbox_dir.iterdir()
        )
    }
    bob = messages["bob@example.net"].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Agents in production" in bob and "Open-weight models" in bob and "微软" not in bob
    assert messages["bob@example.net"]["Subject"].endswith(
        "Agents in production: what breaks first"
    )


def test_dry_run_sends_and_records_nothing(site: Config) -> None:
    _subscribe(site, PEOPLE[:2], {"bob@example.net": ("Robotics",)})
    report = _send(site, OutboxDeliverer(site.outbox_dir), dry_run=True)
    assert [(c.email, c.what) for c in report.planned] == [
        ("ada@example.net", "6 post(s)"),
        ("bob@example.net", "nothing: no post has their tags"),
    ]
    assert not site.outbox_dir.exists()
    with Store(site.state) as store:
        assert store.next_issue_number() == 1 and store.included_post_ids() == frozenset()


def _outbox(config: Config) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_ino) for p in config.outbox_dir.iterdir()}


def test_a_resumed_run_finds_the_outbox_files_it_wrote(site: Config) -> None:
    _subscribe(site, PEOPLE[:2])
    with Store(site.state) as store:
        sender = DigestSender(site, store, OutboxDeliverer(site.outbox_dir), clock=lambda: NOW)
        sender.run()
        written = _outbox(site)
        # As if the run had died.
        store.record_settled([(d, "pending", None) for d in store.deliveries(1)], NOW)
        assert sender.run().sent == 2
    assert len(written) == 2 and _outbox(site) == written  # the same bytes, left in place


# Among 31,000 subscribers these two once got one outbox file between them.
COLLIDING = ["user2607@example.com", "user31079@example.com"]


def test_every_recipient_gets_an_outbox_file_of_their_own(site: Config) -> None:
    _subscribe(site, [*COLLIDING, PEOPLE[0]])
    assert _send(site, OutboxDeliverer(site.outbox_dir)).sent == 3
    files = sorted(site.outbox_dir.iterdir())
    recipients = [
        email.message_from_bytes(p.read_bytes(), policy=default_policy)["To"].addresses[0].addr_spec
        for p in files
    ]
    assert sorted(recipients) == sorted([*COLLIDING, PEOPLE[0]])
    assert len({p.read_bytes() for p in files}) == 3


def test_the_outbox_never_replaces_another_message(tmp_path: Path) -> None:
    outbox = OutboxDeliverer(tmp_path / "outbox")
    path = tmp_path / "outbox" / "feedpub.1.a.eml"
    first = outbox.send(b"one message", "digest@example.org", "ada@example.net", "feedpub.1.a")
    assert first == Outcome("sent", f"written to {path}")
    with pytest.raises(DeliveryError) as caught:
        outbox.send(b"another message", "digest@example.org", "bob@example.net", "feedpub.1.a")
    assert str(caught.value) == (
        f"{path} already holds a different message; nothing was overwritten"
    )
    assert path.read_bytes() == b"one message"
    resent = outbox.send(b"one message", "digest@example.org", "ada@example.net", "feedpub.1.a")
    assert resent == first  # the same message again: a resend, not a conflict


def dkim_key(
    folder: Path, algorithm: str = "rsa-sha256"
) -> tuple[DkimConfig, Callable[..., bytes]]:
    """A real key (RSA 2048, or Ed25519 as dknewkey writes it) for selector mail
    of example.org, and a DNS look-up that answers with its public half."""
    import base64

    if algorithm == "ed25519-sha256":
        import nacl.signing

        seed = nacl.signing.SigningKey.generate()
        (folder / "dkim.key").write_bytes(base64.b64encode(bytes(seed)))
        record = b"v=DKIM1; k=ed25519; p=" + base64.b64encode(bytes(seed.verify_key))
        key_file = folder / "dkim.key"
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        key_file = folder / "dkim.pem"
        key_file.write_bytes(pem)
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"mail._domainkey.example.org."
        return record

    return DkimConfig("mail", "example.org", key_file, algorithm), dns


@pytest.mark.parametrize("algorithm", ["rsa-sha256", "ed25519-sha256"])
def test_dkim_signature_covers_the_unsubscribe_headers(
    tmp_path: Path, site: Config, algorithm: str
) -> None:
    settings_dkim, dns = dkim_key(tmp_path, algorithm)
    _subscribe(site, PEOPLE[:1])
    with smtp_server() as server:
        settings = _smtp(server.port, dkim=settings_dkim)
        config = replace(site, smtp=settings)
        _send(config, SMTPDeliverer(settings, None))
    data = server.handler.received[0].data
    signature = email.message_from_bytes(data)["DKIM-Signature"]
    signed = {
        h.strip().lower()
        for h in signature.split("h=")[1].split(";")[0].replace("\r\n", "").split(":")
    }
    assert {"list-unsubscribe", "list-unsubscribe-post", "from", "subject"} <= signed
    assert f"a={algorithm};" in signature.replace(" ", "")
    assert dkim.verify(data, dnsfunc=dns)
    tampered = data.replace(
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: nothing"
    )
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_starttls_and_login(tmp_path: Path, site: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = self_signed_certificate(tmp_path)
    _subscribe(site, PEOPLE[:2])
    with smtp_server(starttls=server_context(cert, key), login=("digest", "s3cret")) as server:
        settings = _smtp(server.port, security="starttls", username="digest", ca_file=cert)
        config = replace(site, smtp=settings)
        with pytest.raises(DeliveryError, match=r"refused the login for digest: 535"):
            _send(config, SMTPDeliverer(settings, "wrong"))
        report = _send(config, SMTPDeliverer(settings, "s3cret"))
    assert report.sent == 2 and len(server.handler.received) == 2


def test_implicit_tls(tmp_path: Path, site: Config) -> None:
    cert, key = self_signed_certificate(tmp_path)
    _subscribe(site, PEOPLE[:1])
    with smtp_server(tls=server_context(cert, key)) as server:
        settings = _smtp(server.port, security="tls", ca_file=cert)
        report = _send(replace(site, smtp=settings), SMTPDeliverer(settings, None))
    assert report.sent == 1 and len(server.handler.received) == 1


def test_an_untrusted_certificate_is_refused(tmp_path: Path, site: Config) -> None:
    cert, key = self_signed_certificate(tmp_path)
    _subscribe(site, PEOPLE[:1])
    with smtp_server(tls=server_context(cert, key)) as server:
        settings = _smtp(server.port, security="tls")
        with pytest.raises(
            DeliveryError, match=r"TLS with 127\.0\.0\.1:.* failed: .*CERTIFICATE_VERIFY_FAILED"
        ):
            _send(replace(site, smtp=settings), SMTPDeliverer(settings, None))


def test_throttle_spaces_sends() -> None:
    now = [0.0]
    throttle = Throttle(4, clock=lambda: now[0])  # at most 4 a second
    waits: list[float] = []
    for work in (0.05, 0.06, 0.3, 0.0):
        waits.append(throttle.delay())
        now[0] += waits[-1] + work
    assert waits == pytest.approx([0.0, 0.2, 0.19, 0.0])  # the last send came late enough
    unlimited = Throttle(0, clock=lambda: 0.0)
    assert unlimited.delay() == unlimited.delay() == 0.0


# The never-lose, never-repeat guarantees, with real processes.


def _site_files(tmp_path: Path, port: int) -> Path:
    shutil.copytree(REPO / "content", tmp_path / "content")
    config = (REPO / "config.yaml").read_text()
    config += f"\nsmtp:\n  host: 127.0.0.1\n  port: {port}\n  security: none\n  retry_delay: 0\n"
    (tmp_path / "config.yaml").write_text(config)
    return tmp_path / "config.yaml"


def _feedpub(*args: str) -> subprocess.Popen[str]:
    exe = str(Path(sys.executable).with_name("feedpub"))
    return subprocess.Popen([exe, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _cli_subscribe(config: Path, people: list[str]) -> None:
    for address in people:
        assert _feedpub("subscribers", "add", address, "--config", str(config)).wait(30) == 0


def test_kill_9_in_the_middle_then_resume(tmp_path: Path) -> None:
    port = free_port()
    config = _site_files(tmp_path, port)
    people = [f"reader{i:02}@example.net" for i in range(12)]
    _cli_subscribe(config, people)
    victim: list[subprocess.Popen[str]] = []
    killed = threading.Event()

    def kill_on_fifth(n: int) -> None:
        if n == 4 and victim:  # the fifth message is in flight: received, not yet acknowledged
            victim[0].send_signal(signal.SIGKILL)
            victim[0].wait(10)
            killed.set()

    with smtp_server(Behaviour(on_data=kill_on_fifth), port=port) as server:
        first = _feedpub("digest", "send", "--config", str(config))
        victim.append(first)
        first.wait(60)
        # The server thread sets the event after the kill, perhaps after this wakes.
        assert killed.wait(10) and first.returncode == -signal.SIGKILL
        second = _feedpub("digest", "send", "--config", str(config))
        _out, err = second.communicate(timeout=60)
        assert second.returncode == 0, err
    copies = server.handler.by_recipient()
    assert sorted(copies) == people  # nobody lost
    repeated = {a: c for a, c in copies.items() if len(c) > 1}
    assert len(repeated) <= 1  # only the message in flight may come twice ...
    for twice in repeated.values():
        assert len(twice) == 2 and twice[0].message["Message-ID"] == twice[1].message["Message-ID"]
    assert sum(len(c) for c in copies.values()) <= len(people) + 1


def test_two_senders_at_once_never_both_send(tmp_path: Path) -> None:
    port = free_port()
    config = _site_files(tmp_path, port)
    people = [f"reader{i:02}@example.net" for i in range(8)]
    _cli_subscribe(config, people)
    with smtp_server(Behaviour(delay=0.1), port=port) as server:
        runs = [_feedpub("digest", "send", "--config", str(config)) for _ in range(2)]
        results = [(r.wait(60), *r.communicate()) for r in runs]
    assert {a: len(c) for a, c in server.handler.by_recipient().items()} == {a: 1 for a in people}
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1]
    refused = next(err for code, _, err in results if code == 1)
    assert "another feedpub process is running the digest job" in refused
    assert "(digest send, pid" in refused  # named by pid, once the holder wrote it


@SERVERS
@pytest.mark.parametrize(
    "body",
    [
        b"Plain lines, as feedpub writes them.\r\nNo dot starts one.\r\n",
        b".A line that starts with a dot\r\n..and one with two\r\n.\r\nend\r\n",
        b"No line end at the end",
    ],
)
def test_data_reaches_the_server_as_it_was_sent(body: bytes, serve: Callable[..., Server]) -> None:
    """RFC 5321 transparency: the server gets every line back as written, whether
    the message had a dot to double or not."""
    data = b"From: a@example.org\r\nTo: b@example.net\r\nSubject: dots\r\n\r\n" + body
    with serve() as server:
        deliverer = SMTPDeliverer(_smtp(server.port), None)
        outcome = deliverer.send(data, "a@example.org", "b@example.net", "dots")
        deliverer.close()
    assert outcome.result == "sent"
    (received,) = server.handler.received
    expected = data if data.endswith(b"\r\n") else data + b"\r\n"
    assert received.data == expected


# Command writes for a message, a refused one (its RSET included) and another.
@pytest.mark.parametrize(("serve", "writes"), [(smtp_server, 3 + 3 + 3), (pipelining_server, 4)])
def test_mail_rcpt_and_data_go_in_one_write_when_the_server_pipelines(
    monkeypatch: pytest.MonkeyPatch, serve: Callable[..., Server], writes: int
) -> None:
    """Each message costs one wait for replies to its envelope, not three, when
    the server offers PIPELINING; a refusal among them leaves the connection
    ready for the next message."""
    sent: list[bytes | str] = []
    send = smtplib.SMTP.send

    def counted(smtp: smtplib.SMTP, data: bytes | str) -> None:
        sent.append(data)
        send(smtp, data)

    data = b"From: a@example.org\r\nSubject: once\r\n\r\nBody\r\n"
    with serve(Behaviour(refuse={"nobody@example.net"})) as server:
        deliverer = SMTPDeliverer(_smtp(server.port), None)
        deliverer.send(data, "a@example.org", "b@example.net", "first")  # connects
        monkeypatch.setattr(smtplib.SMTP, "send", counted)
        outcomes = [
            deliverer.send(data, "a@example.org", address, "next")
            for address in ("c@example.net", "nobody@example.net", "d@example.net")
        ]
        monkeypatch.undo()
        deliverer.close()
    assert [o.result for o in outcomes] == ["sent", "permanent", "sent"]
    assert outcomes[1].reply == "550 5.1.1 <nobody@example.net>: no such user here"
    assert len(sent) == writes
    assert sorted(server.handler.by_recipient()) == [
        "b@example.net",
        "c@example.net",
        "d@example.net",
    ]
