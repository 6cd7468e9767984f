from __future__ import annotations

import email
import re
import shutil
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from starlette.testclient import TestClient

from feedpub.build import build_feeds
from feedpub.config import Config, load_config
from feedpub.delivery import OutboxDeliverer
from feedpub.pipeline import DigestSender
from feedpub.store import Store
from feedpub.web import RateLimiter, create_app
from tests.conftest import NOW, REPO

SECRET = "test-secret-not-for-production"


@pytest.fixture
def site(tmp_path: Path) -> Config:
    shutil.copytree(REPO / "content", tmp_path / "content")
    config = load_config(REPO / "config.yaml")
    config = replace(
        config,
        content=replace(config.content, dir=tmp_path / "content"),
        feeds=replace(config.feeds, output_dir=tmp_path / "feeds"),
        state_path=tmp_path / "state.db",
        outbox_dir=tmp_path / "outbox",
    )
    build_feeds(config, NOW)
    return config


def _client(config: Config, limits: tuple[RateLimiter, RateLimiter] | None = None) -> TestClient:
    app = create_app(
        config, SECRET, lambda c: OutboxDeliverer(c.outbox_dir), clock=lambda: NOW, limits=limits
    )
    return TestClient(app, base_url="https://example.org")


def _csrf(client: TestClient, path: str) -> str:
    page = client.get(path)
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found, page.text
    return found.group(1)


def _mails(config: Config) -> list[EmailMessage]:
    if not config.outbox_dir.exists():
        return []
    return [
        email.message_from_bytes(p.read_bytes(), policy=default_policy)  # type: ignore[misc]
        for p in sorted(config.outbox_dir.iterdir())
    ]


def _confirm_link(message: EmailMessage) -> str:
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    found = re.search(r"https://example\.org(/newsletter/confirm/\S+)", text)
    assert found, text
    return found.group(1)


# Feeds.


@pytest.mark.parametrize(
    ("path", "media"),
    [
        ("/feeds/rss.xml", "application/rss+xml; charset=utf-8"),
        ("/feeds/atom.xml", "application/atom+xml; charset=utf-8"),
        ("/feeds/feed.json", "application/feed+json; charset=utf-8"),
        ("/feeds/tags/llm/rss.xml", "application/rss+xml; charset=utf-8"),
        ("/feeds/feed.xsl", "text/xsl; charset=utf-8"),
    ],
)
def test_feeds_are_served_with_their_media_types(site: Config, path: str, media: str) -> None:
    response = _client(site).get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == media
    assert response.content == (site.feeds.output_dir / path.removeprefix("/feeds/")).read_bytes()


def test_conditional_requests_get_304(site: Config) -> None:
    client = _client(site)
    first = client.get("/feeds/rss.xml")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert etag.startswith('W/"')
    assert client.get("/feeds/rss.xml", headers={"If-None-Match": etag}).status_code == 304
    assert (
        client.get("/feeds/rss.xml", headers={"If-None-Match": '"other", ' + etag}).status_code
        == 304
    )
    assert client.get("/feeds/rss.xml", headers={"If-Modified-Since": modified}).status_code == 304
    assert client.get("/feeds/rss.xml", headers={"If-None-Match": '"stale"'}).status_code == 200
    not_modified = client.get("/feeds/rss.xml", headers={"If-None-Match": etag})
    assert not_modified.content == b"" and not_modified.headers["etag"] == etag


def test_feeds_are_gzipped_when_asked(site: Config) -> None:
    client = _client(site)
    zipped = client.get("/feeds/atom.xml", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.content == (site.feeds.output_dir / "atom.xml").read_bytes()  # httpx decodes it
    plain = client.get("/feeds/atom.xml", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers


def test_a_browser_gets_the_styled_feed(site: Config) -> None:
    response = _client(site).get(
        "/feeds/rss.xml", headers={"Accept": "text/html,application/xml;q=0.9"}
    )
    assert response.headers["content-type"] == "application/xml; charset=utf-8"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "Accept" in response.headers["vary"]


@pytest.mark.parametrize(
    "path",
    ["/feeds/../config.yaml", "/feeds/%2e%2e/%2e%2e/etc/passwd", "/feeds/nope.xml", "/feeds/tags/"],
)
def test_nothing_outside_the_feeds_is_served(site: Config, path: str) -> None:
    assert _client(site).get(path).status_code == 404


# Subscribing with double opt-in.


def test_subscribe_confirm_and_unsubscribe(site: Config) -> None:
    client = _client(site)
    form = client.get("/newsletter/subscribe")
    assert form.status_code == 200 and "feedpub_csrf" in form.cookies
    assert 'type="email"' in form.text and 'name="viewport"' in form.text
    csrf = _csrf(client, "/newsletter/subscribe")
    sent = client.post(
        "/newsletter/subscribe",
        data={"csrf": csrf, "email": "new@example.net", "name": "New Reader"},
    )
    assert sent.status_code == 200 and "new@example.net" in sent.text
    with Store(site.state_path) as store:
        assert store.subscriber("new@example.net").status == "pending"  # type: ignore[union-attr]
    (mail,) = _mails(site)
    assert mail["To"] == "New Reader <new@example.net>"
    assert mail["Subject"] == "Confirm your subscription: AI 新闻速递 · AI News Digest"
    link = _confirm_link(mail)
    confirmed = client.get(link)
    assert confirmed.status_code == 200 and "订阅成功" in confirmed.text
    with Store(site.state_path) as store:
        subscriber = store.subscriber("new@example.net")
    assert subscriber is not None and subscriber.status == "active"
    assert client.get(link).status_code == 200  # a second click changes nothing
    page = client.get(f"/newsletter/unsubscribe/{subscriber.token}")
    assert page.status_code == 200 and '<form method="post">' in page.text
    csrf = _csrf(client, f"/newsletter/unsubscribe/{subscriber.token}")
    done = client.post(f"/newsletter/unsubscribe/{subscriber.token}", data={"csrf": csrf})
    assert done.status_code == 200 and "已退订" in done.text
    again = client.post(f"/newsletter/unsubscribe/{subscriber.token}", data={"csrf": csrf})
    assert again.status_code == 200
    with Store(site.state_path) as store:
        assert store.subscriber("new@example.net").status == "unsubscribed"  # type: ignore[union-attr]
    assert client.get(link).status_code == 400  # an old confirmation link does not resubscribe


def test_the_answer_is_the_same_for_known_and_unknown_addresses(site: Config) -> None:
    with Store(site.state_path) as store:
        store.add_subscriber("known@example.net", "Known", (), "active", NOW)
    client = _client(site)
    answers = []
    for address in ("known@example.net", "unknown@example.net"):
        csrf = _csrf(client, "/newsletter/subscribe")
        response = client.post("/newsletter/subscribe", data={"csrf": csrf, "email": address})
        answers.append((response.status_code, response.text.replace(address, "ADDRESS")))
    assert answers[0] == answers[1]
    assert [m["To"] for m in _mails(site)] == ["unknown@example.net"]  # the active one gets no mail


def test_forms_need_their_csrf_token(site: Config) -> None:
    client = _client(site)
    client.get("/newsletter/subscribe")
    assert client.post("/newsletter/subscribe", data={"email": "a@example.net"}).status_code == 403
    assert (
        client.post(
            "/newsletter/subscribe", data={"email": "a@example.net", "csrf": "0" * 64}
        ).status_code
        == 403
    )
    other = _client(site)
    token = _csrf(other, "/newsletter/subscribe")  # a token from another visitor's cookie
    assert (
        client.post(
            "/newsletter/subscribe", data={"email": "a@example.net", "csrf": token}
        ).status_code
        == 403
    )
    assert _mails(site) == []


def test_a_bad_address_is_explained(site: Config) -> None:
    client = _client(site)
    csrf = _csrf(client, "/newsletter/subscribe")
    response = client.post("/newsletter/subscribe", data={"csrf": csrf, "email": "not an address"})
    assert response.status_code == 400 and "That is not an email address." in response.text


def test_rate_limits(site: Config) -> None:
    limits = (RateLimiter(3, 600), RateLimiter(2, 86400))
    client = _client(site, limits)
    codes = []
    for _ in range(4):
        csrf = _csrf(client, "/newsletter/subscribe")
        codes.append(
            client.post(
                "/newsletter/subscribe", data={"csrf": csrf, "email": "flood@example.net"}
            ).status_code
        )
    assert codes == [200, 200, 200, 429]
    assert len(_mails(site)) == 1  # the same message, rewritten: never more than the limit allows
    with Store(site.state_path) as store:
        assert store.subscriber("flood@example.net").status == "pending"  # type: ignore[union-attr]


def test_confirmation_links_expire_and_cannot_be_forged(site: Config) -> None:
    client = _client(site)
    csrf = _csrf(client, "/newsletter/subscribe")
    client.post("/newsletter/subscribe", data={"csrf": csrf, "email": "late@example.net"})
    with Store(site.state_path) as store:
        token = store.subscriber("late@example.net").token  # type: ignore[union-attr]

    class Yesterday(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(datetime.now(UTC).timestamp()) - 49 * 3600

    old = URLSafeTimedSerializer(SECRET, salt="feedpub-confirm", signer=Yesterday).dumps(
        {"t": token}
    )
    expired = client.get(f"/newsletter/confirm/{old}")
    assert expired.status_code == 400 and "This link has expired" in expired.text
    forged = URLSafeTimedSerializer("wrong-secret", salt="feedpub-confirm").dumps({"t": token})
    assert "This link is not valid" in client.get(f"/newsletter/confirm/{forged}").text
    assert client.get("/newsletter/confirm/garbage").status_code == 400
    with Store(site.state_path) as store:
        assert store.subscriber("late@example.net").status == "pending"  # type: ignore[union-attr]


def test_one_click_unsubscribe_needs_no_page(site: Config) -> None:
    with Store(site.state_path) as store:
        subscriber = store.add_subscriber("ada@example.net", "Ada", (), "active", NOW)
    client = _client(site)
    for _ in range(2):  # idempotent
        response = client.post(
            f"/newsletter/unsubscribe/{subscriber.token}",
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert (response.status_code, response.text) == (200, "unsubscribed\n")
    with Store(site.state_path) as store:
        assert store.subscriber("ada@example.net").status == "unsubscribed"  # type: ignore[union-attr]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_unknown_tokens_get_a_clear_page(site: Config, method: str) -> None:
    client = _client(site)
    for path in ("/newsletter/unsubscribe/nope", "/newsletter/manage/nope"):
        response = client.request(method, path, data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 404 and "This link is not valid" in response.text


def test_preferences(site: Config) -> None:
    with Store(site.state_path) as store:
        subscriber = store.add_subscriber("ada@example.net", "Ada", (), "active", NOW)
    client = _client(site)
    page = client.get(f"/newsletter/manage/{subscriber.token}")
    assert (
        page.status_code == 200 and 'value="LLM"' in page.text and 'value="边缘计算"' in page.text
    )
    csrf = _csrf(client, f"/newsletter/manage/{subscriber.token}")
    saved = client.post(
        f"/newsletter/manage/{subscriber.token}",
        data={"csrf": csrf, "tags": ["LLM", "not-a-term", "安全"], "paused": "on"},
    )
    assert saved.status_code == 200 and "已保存" in saved.text
    assert re.search(r'value="LLM" checked', saved.text)
    with Store(site.state_path) as store:
        stored = store.subscriber("ada@example.net")
        assert stored is not None and stored.tags == ("LLM", "安全") and stored.paused
        assert store.recipients() == []  # paused: no digest
        report = DigestSender(
            site, store, OutboxDeliverer(site.outbox_dir), clock=lambda: NOW
        ).run()
    assert report.sent == 0


def test_archive(site: Config) -> None:
    with Store(site.state_path) as store:
        ada = store.add_subscriber("ada@example.net", "Ada", (), "active", NOW)
        DigestSender(site, store, OutboxDeliverer(site.outbox_dir), clock=lambda: NOW).run()
    client = _client(site)
    listing = client.get("/issues/")
    assert listing.status_code == 200 and 'href="/issues/1/"' in listing.text
    issue = client.get("/issues/1/")
    assert issue.status_code == 200
    assert "微软将为云客户评定AI模型安全等级" in issue.text
    assert ada.token not in issue.text and "ada@example.net" not in issue.text
    assert "feedpubRecipient" not in issue.text and "<script" not in issue.text
    missing = client.get("/issues/99/")
    assert missing.status_code == 404 and "No such issue" in missing.text


def test_pages_carry_security_headers(site: Config) -> None:
    response = _client(site).get("/newsletter/subscribe")
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "httponly" in response.headers["set-cookie"].lower()
    unknown = _client(site).get("/no/such/page")
    assert unknown.status_code == 404 and "Page not found" in unknown.text


def test_serve_needs_a_secret(tmp_path: Path) -> None:
    from tests.test_cli import _run

    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    result = _run("serve", "--config", str(tmp_path / "config.yaml"))
    assert result.returncode == 1
    assert result.stderr.startswith(
        "error: the web app signs its links with a secret read from the environment variable "
        "FEEDPUB_SECRET_KEY (web.secret_env), which is not set"
    )


def test_a_mail_server_that_is_down_is_admitted(site: Config) -> None:
    from feedpub.delivery import SMTPDeliverer
    from tests.smtpd import free_port
    from tests.test_delivery import _smtp

    nowhere = _smtp(free_port(), max_attempts=1)  # nothing listens there
    app = create_app(site, SECRET, lambda c: SMTPDeliverer(nowhere, None), clock=lambda: NOW)
    client = TestClient(app, base_url="https://example.org")
    csrf = _csrf(client, "/newsletter/subscribe")
    response = client.post(
        "/newsletter/subscribe", data={"csrf": csrf, "email": "down@example.net"}
    )
    assert response.status_code == 503 and "We could not send the email" in response.text
