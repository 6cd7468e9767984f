"""The webhook routes: the app over a real SQLite state, driven over HTTP with
requests signed as each provider signs them; the hostile ones (oversized, slow,
lying about their length) over raw sockets against a real server on loopback."""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.testclient import TestClient
from starlette.types import ASGIApp

from feedpub.config import Config, WebhooksConfig
from feedpub.model import StateLocation
from feedpub.store import Store
from feedpub.web import RateLimiter, create_app
from feedpub.web.webhooks import FetchFailed, https_get
from feedpub.webhooks import MAX_WEBHOOK_BYTES
from tests.conftest import NOW, sample_site
from tests.smtpd import free_port
from tests.test_hostile_web import _raw
from tests.test_mailbox import certificate
from tests.test_webhooks import (
    AUTH,
    BOUNCE,
    MAILGUN_KEY,
    STAMP,
    SUBSCRIBE_URL,
    TOPIC,
    CertificateHost,
    basic,
    confirmation,
    failed,
    mailgun_body,
    make_certificate,
    notification,
    postmark_bounce,
    sendgrid_sign,
    sg_event,
    sns_sign,
    verification_key,
)

SECRET = "webhook-test-secret-0123456789abcdef"
ENVIRON = {
    "FEEDPUB_POSTMARK_PASSWORD": "s3cret:with colon",
    "FEEDPUB_MAILGUN_SIGNING_KEY": MAILGUN_KEY,
}
READERS = ("ada@example.net", "bob@example.net", "user1@example.net", "user2@example.net")


@pytest.fixture(scope="module")
def sns_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def sendgrid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def host(sns_key: rsa.RSAPrivateKey) -> CertificateHost:
    return CertificateHost(
        make_certificate(sns_key, NOW - timedelta(days=30), NOW + timedelta(days=300))
    )


@pytest.fixture
def site(tmp_path: Path, state: StateLocation, sendgrid_key: ec.EllipticCurvePrivateKey) -> Config:
    """The sample site taking all four providers' webhooks, with four readers."""
    config = replace(
        sample_site(tmp_path, state),
        webhooks=WebhooksConfig(
            ses_topics=frozenset({TOPIC}),
            postmark=("postmark", "FEEDPUB_POSTMARK_PASSWORD"),
            mailgun_key_env="FEEDPUB_MAILGUN_SIGNING_KEY",
            sendgrid_key=verification_key(sendgrid_key),
        ),
    )
    with Store(config.state) as store:
        store.add_subscribers([(a, "", (), "active") for a in READERS], NOW - timedelta(days=1))
    return config


def _client(
    config: Config,
    host: CertificateHost | None = None,
    environ: dict[str, str] = ENVIRON,
    **options: Any,
) -> TestClient:
    app = create_app(
        config,
        SECRET,
        clock=lambda: NOW,
        fetch=host or CertificateHost(b""),
        environ=environ,
        **options,
    )
    return TestClient(app, base_url="https://example.org")


def _state(config: Config) -> dict[str, Any]:
    """Everything a webhook may change: statuses, events, suppressions, tokens."""
    with Store(config.state) as store:
        return {
            "statuses": {s.email: s.status for s in store.subscribers()},
            "events": [
                (row["key"], row["kind"])
                for row in store._db.all("SELECT key, kind FROM list_events ORDER BY key")
            ],
            "suppressed": store.suppressed_count(),
            "tokens": [row["token"] for row in store._db.all("SELECT token FROM webhook_tokens")],
        }


def _status(config: Config, address: str) -> str:
    with Store(config.state) as store:
        subscriber = store.subscriber(address)
    assert subscriber is not None
    return subscriber.status


def _json(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


# SES through SNS.


def test_an_ses_bounce_marks_its_subscribers_bounced_once(
    site: Config, sns_key: rsa.RSAPrivateKey, host: CertificateHost
) -> None:
    client = _client(site, host)
    body = _json(sns_sign(sns_key, notification(BOUNCE)))
    first = client.post("/webhooks/ses", content=body)
    assert first.status_code == 200 and first.json() == {"recorded": 2, "seen_before": 0}
    assert _status(site, "ada@example.net") == _status(site, "bob@example.net") == "bounced"
    again = client.post("/webhooks/ses", content=body)  # SNS retries with the same message
    assert again.status_code == 200 and again.json() == {"recorded": 0, "seen_before": 2}
    with Store(site.state) as store:
        assert store._db.scalar("SELECT COUNT(*) FROM list_events") == 2
    assert host.fetched == [host.fetched[0]]  # the certificate is fetched once, then kept


def test_a_tampered_ses_message_changes_nothing(
    site: Config, sns_key: rsa.RSAPrivateKey, host: CertificateHost
) -> None:
    before = _state(site)
    signed = sns_sign(sns_key, notification(BOUNCE))
    tampered = {**signed, "Message": signed["Message"].replace("bob@", "carol@")}
    client = _client(site, host)
    answer = client.post("/webhooks/ses", content=_json(tampered))
    assert answer.status_code == 401
    assert answer.text == "SES: the Signature does not match the message\n"
    unsigned = {k: v for k, v in signed.items() if k != "Signature"}
    assert client.post("/webhooks/ses", content=_json(unsigned)).status_code == 401
    assert client.post("/webhooks/ses", content=b"{not json").status_code == 400
    assert _state(site) == before


def test_an_ses_certificate_that_cannot_be_fetched_is_a_503_for_sns_to_retry(
    site: Config, sns_key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    def unreachable(url: str) -> bytes:
        raise FetchFailed("sns.us-east-1.amazonaws.com: connection refused")

    before = _state(site)
    app = create_app(site, SECRET, clock=lambda: NOW, fetch=unreachable, environ=ENVIRON)
    with caplog.at_level(logging.ERROR, "feedpub"):
        answer = TestClient(app).post(
            "/webhooks/ses", content=_json(sns_sign(sns_key, notification(BOUNCE)))
        )
    assert answer.status_code == 503
    assert answer.text == "SES: the signing certificate could not be fetched\n"
    assert caplog.messages == [
        "webhooks: SES: the signing certificate could not be fetched:"
        " sns.us-east-1.amazonaws.com: connection refused"
    ]
    assert _state(site) == before


def test_an_sns_subscription_is_confirmed_off_the_request(
    site: Config, sns_key: rsa.RSAPrivateKey, host: CertificateHost
) -> None:
    answer = _client(site, host).post(
        "/webhooks/ses", content=_json(sns_sign(sns_key, confirmation()))
    )
    assert answer.status_code == 200 and answer.json() == {"recorded": 0, "seen_before": 0}
    deadline = time.monotonic() + 10
    while SUBSCRIBE_URL not in host.fetched and time.monotonic() < deadline:
        time.sleep(0.01)
    assert host.fetched[-1] == SUBSCRIBE_URL


# Postmark, Mailgun and SendGrid.


def test_a_postmark_hard_bounce_marks_its_subscriber_bounced(site: Config) -> None:
    client = _client(site)
    body = _json(postmark_bounce("HardBounce"))
    answer = client.post("/webhooks/postmark", content=body, headers={"Authorization": AUTH})
    assert answer.status_code == 200 and answer.json() == {"recorded": 1, "seen_before": 0}
    assert _status(site, "ada@example.net") == "bounced"
    again = client.post("/webhooks/postmark", content=body, headers={"Authorization": AUTH})
    assert again.json() == {"recorded": 0, "seen_before": 1}


@pytest.mark.parametrize("authorization", [None, basic("postmark", "guess"), basic("other", "x")])
def test_postmark_without_its_credentials_changes_nothing(
    site: Config, authorization: str | None
) -> None:
    before = _state(site)
    headers = {} if authorization is None else {"Authorization": authorization}
    answer = _client(site).post(
        "/webhooks/postmark", content=_json(postmark_bounce("HardBounce")), headers=headers
    )
    assert answer.status_code == 401
    assert _state(site) == before


@pytest.mark.parametrize(
    ("provider", "variable", "says"),
    [
        ("postmark", "FEEDPUB_POSTMARK_PASSWORD", "Postmark: this server has no password"),
        ("mailgun", "FEEDPUB_MAILGUN_SIGNING_KEY", "Mailgun: this server has no signing key"),
    ],
)
def test_a_provider_whose_secret_is_unset_gets_503_and_one_log_line(
    site: Config, provider: str, variable: str, says: str, caplog: pytest.LogCaptureFixture
) -> None:
    environ = {k: v for k, v in ENVIRON.items() if k != variable}
    with caplog.at_level(logging.WARNING, "feedpub"):
        answer = _client(site, environ=environ).post(f"/webhooks/{provider}", content=b"{}")
    assert answer.status_code == 503 and answer.text.startswith(says)
    (line,) = caplog.messages
    assert f"the environment variable {variable} that holds its secret is not set" in line
    assert "Traceback" not in caplog.text


def test_a_mailgun_failure_is_recorded_and_its_replay_refused(site: Config) -> None:
    client = _client(site)
    body = _json(mailgun_body(failed("permanent")))
    answer = client.post("/webhooks/mailgun", content=body)
    assert answer.status_code == 200 and answer.json() == {"recorded": 1, "seen_before": 0}
    assert _status(site, "ada@example.net") == "bounced"
    before = _state(site)
    replayed = client.post("/webhooks/mailgun", content=body)
    assert replayed.status_code == 409
    assert replayed.text == "Mailgun: this signature token was used before\n"
    # The signature covers the timestamp and token only: another event under them is a replay.
    other = _json(mailgun_body({**failed("permanent"), "id": "x", "recipient": "bob@example.net"}))
    assert client.post("/webhooks/mailgun", content=other).status_code == 409
    assert _status(site, "bob@example.net") == "active"
    assert _state(site) == before


def test_mailgun_tokens_survive_a_restart_and_are_forgotten_when_stale(site: Config) -> None:
    body = _json(mailgun_body(failed("temporary")))
    assert _client(site).post("/webhooks/mailgun", content=body).status_code == 200
    assert _client(site).post("/webhooks/mailgun", content=body).status_code == 409
    with Store(site.state) as store:
        assert store.remember_webhook_token(
            "new", NOW + timedelta(minutes=11), NOW + timedelta(minutes=1)
        )
        assert [r["token"] for r in store._db.all("SELECT token FROM webhook_tokens")] == ["new"]


def test_a_mailgun_request_signed_with_another_key_changes_nothing(site: Config) -> None:
    before = _state(site)
    body = _json(mailgun_body(failed("permanent"), key="key-not-ours"))
    answer = _client(site).post("/webhooks/mailgun", content=body)
    assert answer.status_code == 401
    assert answer.text == "Mailgun: the signature does not match the signing key\n"
    assert _state(site) == before


def test_a_sendgrid_batch_is_recorded_and_a_tampered_one_refused(
    site: Config, sendgrid_key: ec.EllipticCurvePrivateKey
) -> None:
    batch = _json(
        [
            {**sg_event("bounce", 1), "type": "bounce"},
            sg_event("spamreport", 2),
            sg_event("delivered", 1),
        ]
    )
    headers = {
        "X-Twilio-Email-Event-Webhook-Signature": sendgrid_sign(sendgrid_key, STAMP, batch),
        "X-Twilio-Email-Event-Webhook-Timestamp": STAMP,
    }
    client = _client(site)
    before = _state(site)
    tampered = batch.replace(b"User1", b"User3")
    assert client.post("/webhooks/sendgrid", content=tampered, headers=headers).status_code == 401
    assert client.post("/webhooks/sendgrid", content=batch).status_code == 401  # unsigned
    assert _state(site) == before
    answer = client.post("/webhooks/sendgrid", content=batch, headers=headers)
    assert answer.status_code == 200 and answer.json() == {"recorded": 2, "seen_before": 0}
    assert _status(site, "user1@example.net") == "bounced"
    assert _status(site, "user2@example.net") == "unsubscribed"


def test_only_the_providers_set_up_have_a_route(site: Config) -> None:
    only_sendgrid = replace(site, webhooks=WebhooksConfig(sendgrid_key=site.webhooks.sendgrid_key))
    client = _client(only_sendgrid)
    for provider in ("ses", "postmark", "mailgun"):
        assert client.post(f"/webhooks/{provider}", content=b"{}").status_code == 404
    assert client.post("/webhooks/sendgrid", content=b"[]").status_code == 401
    assert client.get("/webhooks/sendgrid").status_code == 405


def test_webhooks_have_their_own_rate_limit(site: Config) -> None:
    client = _client(site, webhook_clients=RateLimiter(2, 60))
    codes = [client.post("/webhooks/mailgun", content=b"{}").status_code for _ in range(3)]
    assert codes == [401, 401, 429]


def test_an_oversized_body_is_refused(site: Config) -> None:
    before = _state(site)
    answer = _client(site).post("/webhooks/ses", content=b" " * (MAX_WEBHOOK_BYTES + 1))
    assert answer.status_code == 413
    assert answer.text == f"The request body is over {MAX_WEBHOOK_BYTES} bytes.\n"
    # A form's much smaller limit does not hold for webhooks.
    near = _client(site).post("/webhooks/ses", content=b" " * (MAX_WEBHOOK_BYTES - 1))
    assert near.status_code == 400
    assert _state(site) == before


# Hostile senders, against a real server.


@contextmanager
def serving_app(app: ASGIApp) -> Iterator[str]:
    """``app`` served by uvicorn on a free loopback port, from a thread."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def _post(length: bytes) -> bytes:
    return b"POST /webhooks/ses HTTP/1.1\r\nHost: x\r\n" + length + b"\r\n\r\n"


def test_oversized_slow_and_lying_bodies_get_4xx_and_change_nothing(
    site: Config, host: CertificateHost
) -> None:
    before = _state(site)
    app = create_app(
        site, SECRET, clock=lambda: NOW, fetch=host, environ=ENVIRON, webhook_body_seconds=1
    )
    with serving_app(app) as base:
        declared, _ = _raw(base, _post(b"Content-Length: 419000000"))
        assert declared.startswith(b"HTTP/1.1 413 ")
        chunk = b"10000\r\n" + b" " * 0x10000 + b"\r\n"
        streamed, sent = _raw(base, _post(b"Transfer-Encoding: chunked"), chunk * 200)
        assert streamed.startswith(b"HTTP/1.1 413 ") and sent < 200 * 0x10000
        # Over the limit, a little at a time: refused by the clock before the count.
        slow, _ = _raw(base, _post(b"Transfer-Encoding: chunked"), chunk * 40, pause=0.1)
        assert slow.startswith(b"HTTP/1.1 408 ")
        started = time.monotonic()
        stalled, _ = _raw(base, _post(b"Content-Length: 5000") + b'{"Type": "Notif')
        assert stalled.startswith(b"HTTP/1.1 408 ") and time.monotonic() - started < 5
        assert stalled.endswith(b"SES: the body did not arrive within 1 seconds\n")
    assert host.fetched == []
    assert _state(site) == before


# The HTTPS GET the SES route fetches certificates with.


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as files."""
    return certificate(tmp_path_factory.mktemp("tls"))


class _Answers(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/slow.pem":
            self.send_response(200)
            self.end_headers()
            for _ in range(50):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.1)
            return
        body = {"/cert.pem": b"PEM", "/big.pem": b"x" * 70_000}.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        if self.path != "/big.pem":  # sent without its length: the reader counts
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_the_certificate_get_is_bounded_in_size_and_time(tls: tuple[Path, Path]) -> None:
    cert, key = tls
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    serving = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    serving.load_cert_chain(cert, key)
    server.socket = serving.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"https://127.0.0.1:{server.server_address[1]}"
    trusting = ssl.create_default_context(cafile=str(cert))
    try:
        assert https_get(f"{base}/cert.pem", context=trusting) == b"PEM"
        with pytest.raises(FetchFailed, match="sent more than 65536 bytes"):
            https_get(f"{base}/big.pem", context=trusting)
        with pytest.raises(FetchFailed, match="answered 404"):
            https_get(f"{base}/gone.pem", context=trusting)
        started = time.monotonic()
        with pytest.raises(FetchFailed, match="did not answer within 1 seconds"):
            https_get(f"{base}/slow.pem", context=trusting, timeout=1)
        assert time.monotonic() - started < 3
        with pytest.raises(FetchFailed, match="CERTIFICATE_VERIFY_FAILED"):
            https_get(f"{base}/cert.pem")  # a certificate no public authority signed
    finally:
        server.shutdown()
