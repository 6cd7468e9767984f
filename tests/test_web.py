from __future__ import annotations

import email
import re
import shutil
from dataclasses import replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest
from httpx2 import Response
from starlette.testclient import TestClient

from feedpub.build import build_feeds
from feedpub.buildcache import BuildCache
from feedpub.config import Config
from feedpub.confirmations import ConfirmationReport, ConfirmationSender
from feedpub.delivery import OutboxDeliverer
from feedpub.model import StateLocation
from feedpub.pipeline import DigestSender
from feedpub.store import StateDatabase, Store
from feedpub.web import RateLimiter, create_app
from feedpub.web.forms import SharedRateLimiter
from tests.conftest import NOW, REPO, sample_site, subscribe_requests

SECRET = "test-secret-not-for-production"


@pytest.fixture
def site(tmp_path: Path, state: StateLocation) -> Config:
    config = sample_site(tmp_path, state)
    build_feeds(config, NOW, BuildCache())
    return config


def _client(
    config: Config, per_client: RateLimiter | None = None, clock: datetime = NOW
) -> TestClient:
    app = create_app(config, SECRET, clock=lambda: clock, per_client=per_client)
    return TestClient(app, base_url="https://example.org")


def _work_queue(
    config: Config, clock: datetime = NOW, deliverer: object = None
) -> ConfirmationReport:
    """What the server's worker does after a subscribe: send the queued confirmations."""
    make = (
        (lambda c: deliverer)
        if deliverer is not None
        else (lambda c: OutboxDeliverer(c.outbox_dir))
    )
    return ConfirmationSender(config, make, lambda: clock).run()  # type: ignore[arg-type,return-value]


def _csrf(client: TestClient, path: str) -> str:
    page = client.get(path)
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found, page.text
    return found.group(1)


def _subscribe(client: TestClient, address: str, name: str = "") -> Response:
    csrf = _csrf(client, "/newsletter/subscribe")
    return client.post("/newsletter/subscribe", data={"csrf": csrf, "email": address, "name": name})


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


def _confirm(client: TestClient, link: str) -> Response:
    """Open the link, then press the button on the page, as a person does."""
    return client.post(link, data={"csrf": _csrf(client, link)})


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
    assert form.status_code == 200 and "__Host-feedpub_csrf" in form.cookies
    assert 'type="email"' in form.text and 'name="viewport"' in form.text
    sent = _subscribe(client, "new@example.net", "New Reader")
    assert sent.status_code == 200 and "new@example.net" in sent.text
    assert _mails(site) == []  # the request only queued it
    assert _work_queue(site).sent == 1
    with Store(site.state) as store:
        assert store.subscriber("new@example.net").status == "pending"  # type: ignore[union-attr]
    (mail,) = _mails(site)
    assert mail["To"] == "New Reader <new@example.net>"
    assert mail["Subject"] == "确认订阅《AI 新闻速递 · AI News Digest》"
    link = _confirm_link(mail)
    shown = client.get(link)  # a link scanner's GET confirms nothing
    assert shown.status_code == 200 and "<button" in shown.text
    with Store(site.state) as store:
        assert store.subscriber("new@example.net").status == "pending"  # type: ignore[union-attr]
    confirmed = _confirm(client, link)
    assert confirmed.status_code == 200 and "订阅成功" in confirmed.text
    with Store(site.state) as store:
        subscriber = store.subscriber("new@example.net")
    assert subscriber is not None and subscriber.status == "active"
    assert subscriber.token in confirmed.text  # the manage and unsubscribe links
    again = client.get(link)  # single use: a second click opens nothing
    assert again.status_code == 200 and "已经确认过了" in again.text
    assert subscriber.token not in again.text
    spent = client.post(link, data={"csrf": _csrf(client, "/newsletter/subscribe")})
    assert spent.status_code == 200 and subscriber.token not in spent.text
    page = client.get(f"/newsletter/unsubscribe/{subscriber.token}")
    assert page.status_code == 200 and '<form method="post">' in page.text
    csrf = _csrf(client, f"/newsletter/unsubscribe/{subscriber.token}")
    done = client.post(f"/newsletter/unsubscribe/{subscriber.token}", data={"csrf": csrf})
    assert done.status_code == 200 and "已退订" in done.text
    again = client.post(f"/newsletter/unsubscribe/{subscriber.token}", data={"csrf": csrf})
    assert again.status_code == 200 and "已退订" in again.text
    with Store(site.state) as store:
        assert store.subscriber("new@example.net").status == "unsubscribed"  # type: ignore[union-attr]
    # The old links open nothing now: the token was retired when they left.
    assert client.get(f"/newsletter/manage/{subscriber.token}").status_code == 404
    assert "已经确认过了" in client.get(link).text


def test_the_confirmation_link_does_not_carry_the_subscriber_token(site: Config) -> None:
    client = _client(site)
    _subscribe(client, "new@example.net")
    _work_queue(site)
    link = _confirm_link(_mails(site)[0])
    with Store(site.state) as store:
        subscriber = store.subscriber("new@example.net")
    assert subscriber is not None
    assert subscriber.token not in link
    nonce = link.rsplit("/", 1)[-1]
    assert len(nonce) >= 43  # 256 random bits
    # Before confirming, nothing opens the manage page.
    assert client.get(f"/newsletter/manage/{nonce}").status_code == 404


def test_resubscribing_retires_the_old_links(site: Config) -> None:
    """After someone leaves, neither the link they used nor one they never used
    confirms the address again when anyone types it into the form."""
    client = _client(site)
    _subscribe(client, "twice@example.net")
    _subscribe(client, "twice@example.net")
    _work_queue(site)
    unused, used = (_confirm_link(m) for m in _mails(site))
    _confirm(client, used)
    with Store(site.state) as store:
        first = store.subscriber("twice@example.net")
        assert first is not None and first.status == "active"
        store.set_status_by_token(first.token, "unsubscribed", NOW)
    _subscribe(client, "twice@example.net")  # anyone may type the address in
    _work_queue(site)
    with Store(site.state) as store:
        second = store.subscriber("twice@example.net")
    assert second is not None and second.status == "pending" and second.token != first.token
    csrf = _csrf(client, "/newsletter/subscribe")
    assert "已经确认过了" in client.post(used, data={"csrf": csrf}).text
    stale = client.post(unused, data={"csrf": csrf})
    assert stale.status_code == 400 and "链接无效" in stale.text
    with Store(site.state) as store:
        assert store.subscriber("twice@example.net").status == "pending"  # type: ignore[union-attr]
    assert client.get(f"/newsletter/manage/{first.token}").status_code == 404
    (new_link,) = {_confirm_link(m) for m in _mails(site)} - {used, unused}
    assert "订阅成功" in _confirm(client, new_link).text


def test_the_answer_is_the_same_for_known_and_unknown_addresses(site: Config) -> None:
    with Store(site.state) as store:
        store.add_subscriber("known@example.net", "Known", (), "active", NOW)
    client = _client(site)
    answers = []
    for address in ("known@example.net", "unknown@example.net"):
        response = _subscribe(client, address)
        answers.append((response.status_code, response.text.replace(address, "ADDRESS")))
    assert answers[0] == answers[1]
    report = _work_queue(site)
    assert (report.sent, report.dropped) == (1, 1)
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
    _work_queue(site)
    assert _mails(site) == []


def test_a_cookie_the_client_picked_is_not_honoured(site: Config) -> None:
    """An attacker who can plant a cookie in a victim's browser (from a sibling
    subdomain, say) must not be able to get a form token that goes with it."""
    attacker = _client(site)
    attacker.cookies.set("__Host-feedpub_csrf", "planted", domain="example.org")
    page = attacker.get("/newsletter/subscribe")
    issued = page.cookies["__Host-feedpub_csrf"]
    assert issued != "planted"
    cookie = page.headers["set-cookie"].lower()
    assert "secure" in cookie and "path=/" in cookie and "domain" not in cookie
    field = _csrf(attacker, "/newsletter/subscribe")
    victim = _client(site)
    victim.cookies.set("__Host-feedpub_csrf", "planted", domain="example.org")
    refused = victim.post("/newsletter/subscribe", data={"email": "a@example.net", "csrf": field})
    assert refused.status_code == 403
    _work_queue(site)
    assert _mails(site) == []


def test_a_plain_http_site_gets_a_plain_cookie(site: Config) -> None:
    config = replace(site, web=replace(site.web, public_url="http://127.0.0.1:8080/"))
    client = TestClient(create_app(config, SECRET, clock=lambda: NOW), base_url="http://127.0.0.1")
    page = client.get("/newsletter/subscribe")
    assert "feedpub_csrf" in page.cookies and "secure" not in page.headers["set-cookie"].lower()


def test_a_bad_address_is_explained(site: Config) -> None:
    client = _client(site)
    response = _subscribe(client, "not an address")
    assert response.status_code == 400 and "这不是有效的邮箱地址。" in response.text


def test_rate_limits_hold_across_web_processes(site: Config) -> None:
    """Two web processes behind one load balancer: with PostgreSQL they count a
    client's attempts together; with SQLite (one machine) each counts its own."""
    first, second = _client(site), _client(site)
    codes = [_subscribe(c, "flood@example.net").status_code for c in (first, second) * 6]
    if site.state.url is None:
        assert codes == [200] * 12
    else:
        assert codes == [200] * 10 + [429, 429]


def test_a_shared_limit_opens_again_when_its_window_is_over(site: Config) -> None:
    now = [1000.0]
    with StateDatabase(site.state) as state:
        limiter = SharedRateLimiter(state, "test", 2, 60, clock=lambda: now[0])
        assert [limiter.allow("a"), limiter.allow("a"), limiter.allow("a")] == [True] * 2 + [False]
        assert limiter.allow("b")  # another client counts alone
        now[0] += 61
        assert limiter.allow("a")


def test_rate_limits(site: Config) -> None:
    client = _client(site, RateLimiter(5, 600))
    codes = [_subscribe(client, "flood@example.net").status_code for _ in range(6)]
    assert codes == [200, 200, 200, 200, 200, 429]
    report = _work_queue(site)
    assert (report.sent, report.dropped) == (3, 2)  # three confirmations a day to one mailbox
    assert len(_mails(site)) == 3
    tomorrow = NOW + timedelta(days=1, minutes=1)
    _subscribe(_client(site, clock=tomorrow), "flood@example.net")
    assert _work_queue(site, tomorrow).sent == 1
    with Store(site.state) as store:
        assert store.subscriber("flood@example.net").status == "pending"  # type: ignore[union-attr]


def test_confirmation_links_expire_and_cannot_be_forged(site: Config) -> None:
    client = _client(site)
    _subscribe(client, "late@example.net")
    _work_queue(site)
    link = _confirm_link(_mails(site)[0])
    late = _client(site, clock=NOW + timedelta(hours=49))
    expired = late.get(link)
    assert expired.status_code == 400 and "链接已过期" in expired.text
    refused = late.post(link, data={"csrf": _csrf(late, "/newsletter/subscribe")})
    assert refused.status_code == 400 and "链接已过期" in refused.text
    forged = client.get("/newsletter/confirm/" + "A" * 43)
    assert forged.status_code == 400 and "链接无效" in forged.text
    assert client.get("/newsletter/confirm/garbage").status_code == 400
    with Store(site.state) as store:
        assert store.subscriber("late@example.net").status == "pending"  # type: ignore[union-attr]


def test_one_click_unsubscribe_needs_no_page(site: Config) -> None:
    with Store(site.state) as store:
        subscriber = store.add_subscriber("ada@example.net", "Ada", (), "active", NOW)
    client = _client(site)
    for _ in range(2):  # idempotent
        response = client.post(
            f"/newsletter/unsubscribe/{subscriber.token}",
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert (response.status_code, response.text) == (200, "unsubscribed\n")
    with Store(site.state) as store:
        assert store.subscriber("ada@example.net").status == "unsubscribed"  # type: ignore[union-attr]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_unknown_tokens_get_a_clear_page(site: Config, method: str) -> None:
    client = _client(site)
    for path in ("/newsletter/unsubscribe/nope", "/newsletter/manage/nope"):
        response = client.request(method, path, data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 404 and "链接无效" in response.text


def test_preferences(site: Config) -> None:
    with Store(site.state) as store:
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
    with Store(site.state) as store:
        stored = store.subscriber("ada@example.net")
        assert stored is not None and stored.tags == ("LLM", "安全") and stored.paused
        assert store.recipients() == []  # paused: no digest
        report = DigestSender(
            site, store, OutboxDeliverer(site.outbox_dir), clock=lambda: NOW
        ).run()
    assert report.sent == 0


def test_archive(site: Config) -> None:
    with Store(site.state) as store:
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
    assert missing.status_code == 404 and "没有这一期" in missing.text


def test_pages_carry_security_headers(site: Config) -> None:
    response = _client(site).get("/newsletter/subscribe")
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "httponly" in response.headers["set-cookie"].lower()
    unknown = _client(site).get("/no/such/page")
    assert unknown.status_code == 404 and "页面不存在" in unknown.text


def test_serve_needs_a_secret(tmp_path: Path) -> None:
    from tests.test_cli import _run

    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    result = _run("serve", "--config", str(tmp_path / "config.yaml"))
    assert result.returncode == 1
    assert result.stderr == (
        "error: the web app signs its links with a secret read from the environment variable "
        "FEEDPUB_SECRET_KEY (web.secret_env), which is not set; make one with "
        "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'\n"
    )


def test_a_short_secret_is_refused(tmp_path: Path) -> None:
    from tests.test_cli import _run

    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    result = _run(
        "serve", "--config", str(tmp_path / "config.yaml"), env={"FEEDPUB_SECRET_KEY": "a"}
    )
    assert result.returncode == 1
    assert result.stderr == (
        "error: the secret in FEEDPUB_SECRET_KEY (web.secret_env) is 1 bytes long; it needs at "
        "least 32, so that it cannot be guessed: make one with "
        "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'\n"
    )


def test_subscribing_while_the_mail_server_is_down(site: Config) -> None:
    """The form answers at once as always; the worker keeps the confirmation
    and sends it when the server is back."""
    from feedpub.delivery import SMTPDeliverer
    from tests.smtpd import free_port, smtp_server
    from tests.test_delivery import _smtp

    port = free_port()  # nothing listens there yet
    config = replace(site, smtp=_smtp(port, max_attempts=1))
    client = _client(config)
    response = _subscribe(client, "down@example.net")
    assert response.status_code == 200 and "down@example.net" in response.text
    report = _work_queue(config, deliverer=SMTPDeliverer(config.smtp, None))  # type: ignore[arg-type]
    assert (report.sent, report.retrying) == (0, 1)
    ((address, status, attempts, reply),) = subscribe_requests(config.state)
    assert (address, status, attempts) == ("down@example.net", "ready", 1)
    assert reply == f"cannot reach 127.0.0.1:{port}: Connection refused"
    # Not due yet: the retry waits 30 seconds.
    assert _work_queue(config, deliverer=SMTPDeliverer(config.smtp, None)).retrying == 0  # type: ignore[arg-type]
    with smtp_server(port=port) as server:
        later = NOW + timedelta(seconds=31)
        report = _work_queue(config, later, SMTPDeliverer(config.smtp, None))  # type: ignore[arg-type]
    assert report.sent == 1
    (received,) = server.handler.received
    assert received.recipients == ["down@example.net"]
    assert [r[1] for r in subscribe_requests(config.state)] == ["sent"]


# The form guards on their own.


def test_rate_limit_buckets_expire_and_stay_bounded() -> None:
    now = [0.0]
    limiter = RateLimiter(2, 60, clock=lambda: now[0], max_keys=100)
    assert [limiter.allow("a") for _ in range(3)] == [True, True, False]
    for n in range(500):  # a flood of one-off clients
        limiter.allow(f"client-{n}")
    assert len(limiter.events) <= 100
    now[0] = 61.0
    assert limiter.allow("a")  # the window passed
    limiter.allow("late")
    assert set(limiter.events) == {"a", "late"}  # every expired bucket is gone


def test_client_key_trusts_only_named_proxies() -> None:
    from ipaddress import ip_network

    from feedpub.web.forms import client_key

    proxies = (ip_network("10.0.0.0/8"), ip_network("::1/128"))
    assert client_key("198.51.100.9", "203.0.113.1", proxies) == "198.51.100.9"
    assert client_key("10.0.0.2", "203.0.113.1, 10.0.0.3", proxies) == "203.0.113.1"
    assert client_key("10.0.0.2", "nonsense, 203.0.113.1", proxies) == "203.0.113.1"
    assert client_key("10.0.0.2", "203.0.113.1, nonsense", proxies) == "10.0.0.2"
    assert client_key("::1", "2001:db8:1:2:3:4:5:6", proxies) == "2001:db8:1:2::/64"
    assert client_key(None, "203.0.113.1", proxies) == "unknown"


def test_preferences_offer_the_terms_of_the_last_build(site: Config) -> None:
    """Terms as the feeds name them (the most used spelling), none that only a
    draft or a scheduled post has, and new ones once a build has written their
    feeds, without restarting the server."""
    folder = site.content.dir
    with Store(site.state) as store:
        subscriber = store.add_subscriber("ada@example.net", "Ada", (), "active", NOW)
    client = _client(site)
    manage = f"/newsletter/manage/{subscriber.token}"
    assert "robot arms" not in client.get(manage).text.casefold()
    for n, spelling in enumerate(("Robot Arms", "robot arms", "robot arms")):
        (folder / f"robots-{n}.md").write_text(
            f"---\ntitle: Robots {n}\ndate: 2026-11-2{n}T08:00:00Z\ntags: [{spelling}]\n---\nText.\n"
        )
    (folder / "draft.md").write_text(
        "---\ntitle: Draft\ndate: 2026-11-20T08:00:00Z\ndraft: true\ntags: [Unannounced]\n---\nText.\n"
    )
    (folder / "later.md").write_text(
        "---\ntitle: Later\ndate: 2027-01-01T08:00:00Z\ntags: [Next Year]\n---\nText.\n"
    )
    assert (
        "robot arms" not in client.get(manage).text.casefold()
    )  # no build has written their feeds yet
    build_feeds(site, NOW, BuildCache())
    page = client.get(manage).text
    assert 'value="robot arms"' in page and 'value="Robot Arms"' not in page
    assert "Unannounced" not in page and "Next Year" not in page
