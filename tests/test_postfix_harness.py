"""The private Postfix harness: real delivery to Maildirs, a real asynchronous DSN
sent back to the VERP address, and the refusal at RCPT time."""

from __future__ import annotations

import re
import smtplib
import socket
from collections.abc import Iterable
from email import message_from_bytes
from email.message import EmailMessage, Message
from email.policy import default as default_policy
from email.utils import make_msgid

import pytest

from feedpub.bounces import read_report
from feedpub.smtpstatus import smtp_verdict
from feedpub.verp import bounce_address
from tests.postfix import maildir_messages, running_postfix

TEMPLATE = "bounces+{token}@bounce.test"
SENDER = bounce_address(TEMPLATE, "tok123")


def _issue() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Test Site <news@example.org>"
    message["To"] = "subscribers@list.test"
    message["Subject"] = "Issue 1"
    message["Message-ID"] = make_msgid(domain="example.org")
    message.set_content("The first issue.\n")
    return message


def _parse(data: bytes) -> EmailMessage:
    parsed = message_from_bytes(data, policy=default_policy)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _payload(parts: Iterable[Message], content_type: str) -> list[Message]:
    """What the one part of ``content_type`` holds: field blocks or a message."""
    [part] = [p for p in parts if p.get_content_type() == content_type]
    payload = part.get_payload()
    assert isinstance(payload, list)
    return [p for p in payload if isinstance(p, Message)]


def test_known_users_get_the_issue_and_an_unknown_one_bounces_to_the_verp_address() -> None:
    issue = _issue()
    with running_postfix(["alice", "bob"], TEMPLATE) as mta:
        assert mta.domain == "list.test"
        with smtplib.SMTP(mta.host, mta.port, timeout=30) as smtp:
            refused = smtp.send_message(
                issue,
                from_addr=SENDER,
                to_addrs=["alice@list.test", "bob@list.test", "nobody@list.test"],
            )
        # Every recipient is accepted; the unknown one is bounced afterwards.
        assert refused == {}
        for user in ("alice", "bob"):
            [data] = mta.wait_for_messages(mta.maildir(user), 1)
            delivered = _parse(data)
            assert delivered["Message-ID"] == issue["Message-ID"]
            assert delivered["Delivered-To"] == f"{user}@list.test"
            assert delivered["Return-Path"] == f"<{SENDER}>"

        [data] = mta.wait_for_messages(mta.bounce_maildir, 1)
        dsn = _parse(data)
        assert dsn["Delivered-To"] == SENDER
        assert dsn["X-Original-To"] == SENDER
        assert dsn["Return-Path"] == "<>"
        assert dsn.get_content_type() == "multipart/report"
        assert dsn.get_param("report-type") == "delivery-status"
        parts = list(dsn.walk())
        [recipient] = _payload(parts, "message/delivery-status")[1:]
        assert recipient["Final-Recipient"] == "rfc822; nobody@list.test"
        assert recipient["Action"] == "failed"
        assert re.fullmatch(r"5\.\d{1,3}\.\d{1,3}", recipient["Status"])
        [returned] = _payload(parts, "message/rfc822")
        assert returned["Message-ID"] == issue["Message-ID"]

        reading = read_report(data, TEMPLATE)
        assert (reading.kind, reading.recipients, reading.token) == (
            "hard",
            ("nobody@list.test",),
            "tok123",
        )

    assert not mta.root.exists()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((mta.host, mta.port), timeout=5).close()


def test_an_unknown_user_can_be_refused_at_rcpt_time() -> None:
    with running_postfix(["alice"], TEMPLATE, reject_unknown_at_rcpt=True) as mta:
        with smtplib.SMTP(mta.host, mta.port, timeout=30) as smtp:
            refused = smtp.send_message(
                _issue(), from_addr=SENDER, to_addrs=["alice@list.test", "nobody@list.test"]
            )
            with pytest.raises(smtplib.SMTPRecipientsRefused) as only_unknown:
                smtp.send_message(_issue(), from_addr=SENDER, to_addrs=["nobody@list.test"])
        code, reply = refused["nobody@list.test"]
        assert code == 550
        assert reply.startswith(b"5.1.1 ")
        assert smtp_verdict(code, reply) == "hard"
        assert only_unknown.value.recipients == refused

        mta.wait_for_messages(mta.maildir("alice"), 1)
        # Once the message has left the queue, any bounce would have been sent.
        mta.wait_for(lambda: ": removed" in mta.log(), "the message to leave the queue")
        assert "non-delivery notification" not in mta.log()
        assert maildir_messages(mta.bounce_maildir) == []
