"""feedpub bounces fetch: a real Maildir of returned mail read into a real state
file, from the command line as a user runs it."""

from __future__ import annotations

import mailbox
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

from feedpub.listpolicy import SoftBouncePolicy
from feedpub.model import Issue, ListEvent
from feedpub.store import Store
from feedpub.verp import bounce_address, delivery_token
from tests.conftest import NOW
from tests.test_bounces import dsn, rcpt
from tests.test_cli import _run

TEMPLATE = "bounces+{token}@example.org"
POLICY = SoftBouncePolicy()
CONFIG = f"""
site: {{title: T, url: "https://example.org/"}}
newsletter: {{from: {{email: digest@example.org}}, bounce_address: "{TEMPLATE}"}}
bounces: {{source: maildir, path: bounces, max_bytes: 100000}}
delivery: {{soft_bounce_limit: 2}}
"""


def _site(tmp_path: Path, issue: Issue) -> dict[str, str]:
    """A site with four subscribers who were all sent issue 1; their VERP tokens."""
    (tmp_path / "config.yaml").write_text(CONFIG, encoding="utf-8")
    tokens = {}
    with Store(tmp_path / "state" / "feedpub.db") as store:
        people = [
            store.add_subscriber(f"{name}@example.net", name, (), "active", NOW)
            for name in ("ada", "bob", "cy", "di")
        ]
        store.record_issue(1, NOW, "Issue 1", [], {"all": issue}, [(p, "all") for p in people])
        for person in people:
            tokens[person.email] = delivery_token(1, person.id, person.token)
    return tokens


def _complaint(about: str) -> bytes:
    report = MIMEMultipart("report", report_type="feedback-report")
    report["From"] = "feedback@isp.example"
    report["To"] = "abuse@example.org"
    report["Message-ID"] = f"<arf-{about}>"
    report.attach(MIMEText("This is an abuse report."))
    feedback = Message()
    feedback["Content-Type"] = "message/feedback-report"
    feedback.set_payload(
        f"Feedback-Type: abuse\r\nUser-Agent: isp/1.0\r\nVersion: 1\r\nOriginal-Rcpt-To: {about}\r\n"
    )
    report.attach(feedback)
    return report.as_bytes()


def _status(tmp_path: Path, email: str) -> str:
    with Store(tmp_path / "state" / "feedpub.db") as store:
        subscriber = store.subscriber(email)
        assert subscriber is not None
        return subscriber.status


def test_bounces_fetch_marks_suppresses_and_counts_each_message_once(
    tmp_path: Path, issue: Issue
) -> None:
    tokens = _site(tmp_path, issue)
    box = mailbox.Maildir(tmp_path / "bounces", create=True)
    # A hard bounce whose recipient the receiving MTA mangled: the VERP token says who.
    box.add(
        dsn(
            rcpt("ADA-forwarded@relay.example", "failed", "5.1.1"),
            to=bounce_address(TEMPLATE, tokens["ada@example.net"]),
        )
    )
    box.add(_complaint("bob@example.net"))
    soft = rcpt("cy@example.net", "failed", "5.2.2", "552 5.2.2 Mailbox full")
    box.add(dsn(soft, to=bounce_address(TEMPLATE, tokens["cy@example.net"])))
    box.add(dsn(rcpt("di@example.net", "failed", "5.7.1", "554 5.7.1 spam")))  # policy
    box.add(_complaint("stranger@example.com"))  # no such subscriber
    box.add(
        dsn(
            rcpt("di@example.net", "failed", "5.1.1"),
            to=bounce_address(TEMPLATE, "9-9-0123456789ab"),
        )
    )
    box.add(b"From: x@y\r\nContent-Type: multipart/mixed; boundary=\r\n\r\n--\r\ngarbage")
    box.add(b"Subject: big\r\n\r\n" + b"x" * 200_000)
    box.close()

    result = _run("bounces", "fetch", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "8 messages read: 3 changed the list, 4 changed nothing, 1 set aside unread"
    assert _status(tmp_path, "ada@example.net") == "bounced"
    assert _status(tmp_path, "bob@example.net") == "unsubscribed"
    assert _status(tmp_path, "cy@example.net") == "active"  # 1 soft bounce of 2
    assert _status(tmp_path, "di@example.net") == "active"  # policy refusals mark no one
    text = result.stdout
    assert "ada@example.net: hard bounce: marked bounced" in text
    assert "bob@example.net: complaint: unsubscribed for good" in text
    assert "cy@example.net: soft bounce 1 of 2 within 30 days" in text
    assert (
        "a policy refusal does not mark the address; the server said: 554 5.7.1 spam; "
        "nothing changed" in text
    )
    assert "stranger@example.com: no subscriber has this address; nothing changed" in text
    assert "its token 9-9-0123456789ab names no delivery of this list, nothing changed" in text
    assert "set aside unread" in text
    with Store(tmp_path / "state" / "feedpub.db") as store:
        assert store.suppressions([f"{n}@example.net" for n in ("ada", "bob", "cy", "di")]) == {
            "ada@example.net": "bounced",
            "bob@example.net": "complained",
        }

    # Every message was moved aside: a second run reads none; the same bounce
    # delivered again counts once.
    again = _run("bounces", "fetch", "-q", cwd=tmp_path)
    assert again.stdout.strip() == (
        "0 messages read: 0 changed the list, 0 changed nothing, 0 set aside unread"
    )
    box = mailbox.Maildir(tmp_path / "bounces")
    box.add(_complaint("bob@example.net"))
    box.add(dsn(soft, to=bounce_address(TEMPLATE, tokens["cy@example.net"])))
    box.close()
    third = _run("bounces", "fetch", cwd=tmp_path)
    assert "seen before; counted once" in third.stdout
    assert _status(tmp_path, "cy@example.net") == "active"


def test_bounces_fetch_without_a_mailbox_says_what_to_add(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        'site: {title: T, url: "https://example.org/"}\n', encoding="utf-8"
    )
    result = _run("bounces", "fetch", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "config.yaml: bounces: section missing; it names the bounce mailbox"
    )


def test_suppressed_addresses_need_force_and_complaints_never_come_back(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(CONFIG, encoding="utf-8")
    with Store(tmp_path / "state" / "feedpub.db") as store:
        for name in ("ada", "bob"):
            store.add_subscriber(f"{name}@example.net", name, (), "active", NOW)
        store.record_event(
            ListEvent("ses", "1", "ada@example.net", "hard", "bounced"), None, NOW, POLICY
        )
        store.record_event(
            ListEvent("ses", "2", "bob@example.net", "complaint", "spam"), None, NOW, POLICY
        )
    for name in ("ada", "bob"):  # their records erased; the suppressions stay
        erased = _run("subscribers", "remove", f"{name}@example.net", "--erase", cwd=tmp_path)
        assert erased.stdout.strip() == f"erased {name}@example.net", erased.stderr
    csv = tmp_path / "list.csv"
    csv.write_text("email\nada@example.net\nbob@example.net\ncy@example.net\n", encoding="utf-8")
    result = _run("subscribers", "import", str(csv), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported 1, 0 already on the list, 2 suppressed, 0 bad rows"
    assert result.stderr.splitlines() == [
        f"{csv}: ada@example.net is suppressed: it bounced; add --force to add it back",
        f"{csv}: bob@example.net is suppressed: it complained (marked a message as spam); it "
        "cannot be added back, only signed up again by its owner through the subscribe form",
    ]
    refused = _run("subscribers", "add", "ada@example.net", cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "error: ada@example.net is suppressed: it bounced; add --force to add it back"
    )
    forced = _run("subscribers", "add", "ada@example.net", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    never = _run("subscribers", "add", "bob@example.net", "--force", cwd=tmp_path)
    assert never.returncode == 1
    assert "cannot be added back" in never.stderr
    with Store(tmp_path / "state" / "feedpub.db") as store:
        assert store.subscriber("bob@example.net") is None
        assert store.suppressions(["ada@example.net", "bob@example.net"]) == {
            "bob@example.net": "complained"
        }
