"""feedpub stats and the status page, over a state built with the store's own
calls: exact counts and rates, the warnings' wording, the charts read back as
XML, and the page in a real browser."""

from __future__ import annotations

import base64
import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree
from playwright.sync_api import sync_playwright
from starlette.testclient import TestClient

from feedpub.cli import cli
from feedpub.config import Config, load_config
from feedpub.listpolicy import SoftBouncePolicy
from feedpub.model import Issue, ListEvent
from feedpub.stats import IssueStats, warnings
from feedpub.store import Store
from feedpub.web import create_app
from tests.conftest import NOW, REPO
from tests.test_browser import CHROMIUM, CHROMIUM_FLAGS
from tests.test_webhook_routes import serving_app

SECRET = "stats-test-secret-0123456789abcdef"
TOKEN = "status-token-0123456789"
ISSUE_1 = NOW - timedelta(days=20)
ISSUE_2 = NOW - timedelta(days=10)
SVG = "{http://www.w3.org/2000/svg}"


def _address(n: int) -> str:
    return f"reader{n}@example.net"


def _event(provider: str, n: int, kind: str, event_id: str) -> ListEvent:
    return ListEvent(provider, event_id, _address(n), kind, f"{provider} {kind}")  # type: ignore[arg-type]


def build_state(path: Path) -> None:
    """Issue #1 to readers 1-10 (10 failed), #2 to readers 2-9, then what they did:

    - reader 1: hard bounce of #1 (from the bounce mailbox, so naming #1), reported twice
    - reader 2: soft bounce a day after #1, reported by SES without an issue
    - reader 3: complaint two days after #2; reader 4: complaint eight days after #2
      (too late to count for any issue)
    - reader 5: unsubscribed on the web a day after #2; reader 6: at Mailgun three days after
    """
    policy = SoftBouncePolicy()
    with Store(path) as store:
        store.add_subscribers(
            [(_address(n), "", (), "active") for n in range(1, 11)], ISSUE_1 - timedelta(days=1)
        )
        readers = {s.email: s for s in store.subscribers()}
        for number, when, wanted in ((1, ISSUE_1, range(1, 11)), (2, ISSUE_2, range(2, 10))):
            issue = Issue(number, when, f"Digest #{number}", "<p>x</p>", "x")
            store.record_issue(
                number,
                when,
                issue.subject,
                [f"urn:post:{number}"],
                {"": issue},
                [(readers[_address(n)], "") for n in wanted],
            )
            store.record_settled(
                [
                    (d, "failed" if d.email == _address(10) else "sent", "250 ok")
                    for d in store.deliveries(number)
                ],
                when + timedelta(minutes=5),
            )
        store.record_event(
            _event("mailbox", 1, "hard", "m1"), 1, ISSUE_1 + timedelta(hours=1), policy
        )
        store.record_event(
            _event("mailbox", 1, "hard", "m1"), 1, ISSUE_1 + timedelta(hours=2), policy
        )
        store.record_event(
            _event("ses", 1, "hard", "s1"), None, ISSUE_1 + timedelta(hours=3), policy
        )
        store.record_event(
            _event("ses", 2, "soft", "s2"), None, ISSUE_1 + timedelta(days=1), policy
        )
        store.record_event(
            _event("ses", 3, "complaint", "s3"), None, ISSUE_2 + timedelta(days=2), policy
        )
        store.record_event(
            _event("ses", 4, "complaint", "s4"), None, ISSUE_2 + timedelta(days=8), policy
        )
        store.set_status(_address(5), "unsubscribed", ISSUE_2 + timedelta(days=1))
        store.record_event(
            _event("mailgun", 6, "unsubscribe", "g6"), None, ISSUE_2 + timedelta(days=3), policy
        )


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """The sample config.yaml in a folder of its own, with the state above."""
    shutil.copytree(REPO / "content", tmp_path / "content")
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    build_state(load_config(tmp_path / "config.yaml").state.path)
    return tmp_path / "config.yaml"


def test_the_table_counts_each_issue_exactly(site: Path) -> None:
    result = CliRunner().invoke(cli, ["stats", "--config", str(site)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "issue  date        recipients  sent      failed        hard        soft"
        "  complaints  unsubscribed  subject",
        "#1     2026-11-10          10     9  1 (11.11%)  1 (11.11%)  1 (11.11%)"
        "   0 (0.00%)     0 (0.00%)  Digest #1",
        "#2     2026-11-20           8     8   0 (0.00%)   0 (0.00%)   0 (0.00%)"
        "  1 (12.50%)    2 (25.00%)  Digest #2",
        "subscribers now: 0 pending, 5 active, 4 unsubscribed, 1 bounced",
        "suppressed: 2 complained, 1 bounced, 2 unsubscribed",
        "warning: issue #1: bounce rate 22.22% (2 of 9 sent) is over 2%",
        "warning: issue #2: complaint rate 12.50% (1 of 8 sent) is over 0.1%;"
        " Gmail and Yahoo refuse bulk mail above 0.3%",
    ]


def test_the_json_has_the_same_numbers(site: Path) -> None:
    result = CliRunner().invoke(cli, ["stats", "--json", "--config", str(site)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    first, second = report["issues"]
    assert first == {
        "number": 1,
        "date": "2026-11-10",
        "created_at": ISSUE_1.isoformat(),
        "subject": "Digest #1",
        "recipients": 10,
        "sent": 9,
        "failed": 1,
        "hard_bounces": 1,
        "soft_bounces": 1,
        "complaints": 0,
        "unsubscribed": 0,
        "rates": {
            "failed": 1 / 9,
            "hard_bounces": 1 / 9,
            "soft_bounces": 1 / 9,
            "bounces": 2 / 9,
            "complaints": 0.0,
            "unsubscribed": 0.0,
        },
    }
    assert (second["complaints"], second["unsubscribed"]) == (1, 2)
    assert second["rates"]["complaints"] == 1 / 8 and second["rates"]["unsubscribed"] == 2 / 8
    assert report["subscribers"] == {"pending": 0, "active": 5, "unsubscribed": 4, "bounced": 1}
    assert report["suppressed"] == {"complained": 2, "bounced": 1, "unsubscribed": 2}
    assert report["warnings"] == [
        "issue #1: bounce rate 22.22% (2 of 9 sent) is over 2%",
        "issue #2: complaint rate 12.50% (1 of 8 sent) is over 0.1%;"
        " Gmail and Yahoo refuse bulk mail above 0.3%",
    ]


def test_an_empty_list_has_a_report_too(tmp_path: Path) -> None:
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    result = CliRunner().invoke(cli, ["stats", "--config", str(tmp_path / "config.yaml")])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1:] == [
        "no issue has gone out yet",
        "subscribers now: 0 pending, 0 active, 0 unsubscribed, 0 bounced",
        "suppressed: 0 complained, 0 bounced, 0 unsubscribed",
    ]


def _issue(sent: int, hard: int = 0, soft: int = 0, complaints: int = 0) -> IssueStats:
    return IssueStats(7, NOW, "s", sent, sent, 0, hard, soft, complaints, 0)


def test_warnings_start_over_their_levels() -> None:
    assert warnings(_issue(1000, hard=15, soft=5, complaints=1)) == []  # 2% and 0.1% exactly
    assert warnings(_issue(0)) == []
    assert warnings(_issue(1000, hard=21, complaints=2)) == [
        "issue #7: complaint rate 0.20% (2 of 1000 sent) is over 0.1%;"
        " Gmail and Yahoo refuse bulk mail above 0.3%",
        "issue #7: bounce rate 2.10% (21 of 1000 sent) is over 2%",
    ]


# The status page.


def _config(site: Path) -> Config:
    return load_config(site)


def _client(site: Path, environ: dict[str, str]) -> TestClient:
    app = create_app(_config(site), SECRET, clock=lambda: NOW, environ=environ)
    return TestClient(app, base_url="https://example.org")


def _basic(password: str, user: str = "anyone") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_there_is_no_status_page_without_its_token(site: Path) -> None:
    client = _client(site, {})
    assert client.get("/status", headers=_basic(TOKEN)).status_code == 404
    assert client.get("/status").status_code == 404


@pytest.mark.parametrize(
    "headers",
    [
        {},
        _basic("wrong-token"),
        _basic(TOKEN[:-1]),
        {"Authorization": "Bearer " + TOKEN},
        {"Authorization": "Basic !!!"},
    ],
)
def test_the_status_page_asks_for_its_token(site: Path, headers: dict[str, str]) -> None:
    response = _client(site, {"FEEDPUB_STATUS_TOKEN": TOKEN}).get("/status", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="feedpub status", charset="UTF-8"'
    assert "Digest #1" not in response.text


def test_the_status_page_shows_the_table_and_charts(site: Path) -> None:
    response = _client(site, {"FEEDPUB_STATUS_TOKEN": TOKEN}).get("/status", headers=_basic(TOKEN))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert "set-cookie" not in response.headers
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page = etree.fromstring(response.content, etree.HTMLParser())
    rows = [[cell.text for cell in row] for row in page.iter("tr")]
    assert rows[1] == [
        "#1", "2026-11-10", "10", "9", "1 (11.11%)", "1 (11.11%)", "1 (11.11%)",
        "0 (0.00%)", "0 (0.00%)", "Digest #1",
    ]  # fmt: skip
    assert rows[2][7:] == ["1 (12.50%)", "2 (25.00%)", "Digest #2"]
    assert "Warning: issue #2: complaint rate 12.50%" in response.text
    assert "<script" not in response.text
    text = response.text
    assert text.count("<svg") == 2
    sizes, rates = (
        etree.fromstring(text[text.index("<svg", start) : text.index("</svg>", start) + 6])
        for start in (text.index("<svg"), text.rindex("<svg"))
    )
    assert sizes.findtext(f"{SVG}title") == "List size per issue"
    bars = sizes.findall(f"{SVG}rect[@class='bar']")
    assert [bar.findtext(f"{SVG}title") for bar in bars] == [
        "issue #1: 10 recipients",
        "issue #2: 8 recipients",
    ]
    assert float(bars[0].get("height", "")) > float(bars[1].get("height", "")) > 0
    assert rates.findtext(f"{SVG}title") == "Bounce and complaint rates per issue"
    assert len(rates.findall(f"{SVG}circle[@class='bounce']")) == 2
    assert [
        c.findtext(f"{SVG}title") for c in rates.findall(f"{SVG}circle[@class='complaint']")
    ] == [
        "issue #1: complaint rate 0.00%",
        "issue #2: complaint rate 12.50%",
    ]
    labels = {t.text for t in sizes.iter(f"{SVG}text")} | {t.text for t in rates.iter(f"{SVG}text")}
    assert {"issue", "recipients", "rate per sent", "#1", "#2"} <= labels


def test_the_status_page_in_a_browser(site: Path, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: .ci/run installs Debian's chromium package")
    app = create_app(_config(site), SECRET, environ={"FEEDPUB_STATUS_TOKEN": TOKEN})
    with serving_app(app) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        context = browser.new_context(http_credentials={"username": "me", "password": TOKEN})
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        assert page.goto(f"{base}/status").status == 200  # type: ignore[union-attr]
        charts = page.locator("svg[role=img]")
        assert charts.count() == 2
        for index in range(2):
            box = charts.nth(index).bounding_box()
            assert box is not None and box["width"] > 200 and box["height"] > 50
        assert page.locator("rect.bar").count() == 2
        assert page.get_by_text("Digest #2").is_visible()
        page.screenshot(path=str(tmp_path / "status.png"), full_page=True)
        browser.close()
    assert problems == []
