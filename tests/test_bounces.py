"""Reading returned mail: real bounces from many MTAs, hand-made RFC 3464 DSNs and
RFC 5965 feedback reports, hostile input, and the SMTP reply table."""

from __future__ import annotations

import random
from email.message import EmailMessage, Message
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedpub.bounces import Reading, read_report
from feedpub.smtpstatus import smtp_verdict
from feedpub.verp import bounce_address, template_problem, token_of

SAMPLES = Path(__file__).parent / "data" / "bounces"
TEMPLATE = "bounces+{token}@example.org"

# The recipients flufl.bounce's own tests (tests/test_detectors.py, 6.0.0) expect
# of each sample, lower-cased; the samples not named here name no one.
EXPECTED: dict[str, tuple[str, ...]] = {
    "aol_01": ("screenname@aol.com",),
    "bounce_02": ("userx@example.com",),
    "bounce_03": ("userx@example.uk",),
    "caiwireless_01": ("userx@example.com",),
    "dsn_01": ("userx@example.com",),
    "dsn_02": ("zzzzz@example.uk",),
    "dsn_03": ("userx@example.be",),
    "dsn_04": ("userx@example.ch",),
    "dsn_05": ("userx@example.cz",),
    "dsn_06": ("userx@example.com",),
    "dsn_07": ("userx@example.nz",),
    "dsn_08": ("userx@example.de",),
    "dsn_09": ("userx@example.com",),
    "dsn_10": ("anne.person@dom.ain",),
    "dsn_11": ("joem@example.com",),
    "dsn_12": ("userx@example.jp",),
    "dsn_13": ("userx@example.com",),
    "dsn_14": ("userx@example.com.dk",),
    "dsn_15": ("userx@example.com",),
    "dsn_16": ("userx@example.com",),
    "dsn_17": ("userx@example.fi",),
    "dsn_18": ("email@replaced.net",),
    "exim_01": ("userx@its.example.nl",),
    "groupwise_01": ("userx@example.edu",),
    "groupwise_02": ("userx@example.com",),
    "hotpop_01": ("userx@example.com",),
    "llnl_01": ("user1@example.gov",),
    "microsoft_01": ("userx@example.com",),
    "microsoft_02": ("userx@example.com",),
    "microsoft_03": ("userx@example.com",),
    "microsoft_04": ("userx@example.com",),
    "netscape_01": ("aaaaa@corel.com", "bbbbb@corel.com"),
    "newmailru_01": ("zzzzz@newmail.ru",),
    "postfix_01": ("xxxxx@local.ie",),
    "postfix_02": ("yyyyy@digicool.com",),
    "postfix_03": ("ttttt@ggggg.com",),
    "postfix_04": ("userx@mail1.example.com",),
    "postfix_05": ("userx@example.net",),
    "qmail_01": ("userx@example.de",),
    "qmail_02": ("userx@example.com",),
    "qmail_03": ("userx@example.jp",),
    "qmail_04": ("userx@example.au",),
    "qmail_05": ("userx@example.com",),
    "qmail_06": ("ntl@xxx.com",),
    "qmail_07": ("user@example.net",),
    "sendmail_01": ("zzzzz@nfg.nl", "zzzzz@shaft.coal.nl"),
    "simple_01": ("bbbsss@example.com",),
    "simple_02": ("userx@example.net",),
    "simple_03": ("userx@example.za",),
    "simple_04": ("userx@example.com",),
    "simple_05": ("userx@example.net",),
    "simple_06": ("userx@example.com",),
    "simple_07": ("userx@example.net",),
    "simple_08": ("userx@example.de",),
    "simple_09": ("userx@example.de",),
    "simple_10": ("userx@example.com",),
    "simple_11": ("userx@example.com",),
    "simple_12": ("userx@example.ac.jp",),
    "simple_13": ("userx@example.fr",),
    "simple_14": ("userx@example.com", "usery@example.com"),
    "simple_15": ("userx@example.be",),
    "simple_16": ("userx@example.com",),
    "simple_17": ("userx@example.com",),
    "simple_18": ("userx@example.com",),
    "simple_19": ("userx@example.com.ar",),
    "simple_20": ("userx@example.com",),
    "simple_21": ("userx@example.com",),
    "simple_22": ("user@example.org",),
    "simple_23": ("userx@example.it",),
    "simple_24": ("userx@example.com",),
    "simple_25": ("userx@example.com",),
    "simple_26": ("userx@example.it",),
    "simple_27": ("userx@example.net.py",),
    "simple_28": ("userx@example.com",),
    "simple_29": ("userx@example.com",),
    "simple_30": ("userx@example.com",),
    "simple_31": ("userx@example.fr",),
    "simple_32": ("userx@example.com",),
    "simple_33": ("userx@example.com",),
    "simple_34": ("roland@example.com",),
    "simple_35": ("calvin@example.com",),
    "simple_36": ("userx@example.com",),
    "simple_37": ("user@example.edu",),
    "simple_38": ("userx@example.com",),
    "simple_39": ("userx@example.ru",),
    "simple_40": ("user@example.com",),
    "simple_41": ("userx@example.com",),
    "simple_44": ("user@example.com",),
    "simple_45": ("subscriber@earthlink.net",),
    "sina_01": ("userx@sina.com", "usery@sina.com"),
    "smtp32_01": ("userx@example.ph",),
    "smtp32_02": ("userx@example.com",),
    "smtp32_03": ("userx@example.com",),
    "smtp32_04": ("after_another@example.net", "one_bad_address@example.net"),
    "smtp32_05": ("userx@example.com",),
    "smtp32_06": ("absolute_garbage_addr@example.net",),
    "smtp32_07": ("userx@example.com",),
    "yahoo_01": ("userx@example.com",),
    "yahoo_02": ("userx@example.es",),
    "yahoo_03": ("userx@example.com",),
    "yahoo_04": ("userx@example.es", "usery@example.uk"),
    "yahoo_05": ("userx@example.com", "usery@example.com"),
    "yahoo_06": (
        "usera@example.com",
        "userx@example.com",
        "usery@example.com",
        "userz@example.com",
    ),
    "yahoo_07": (
        "userw@example.com",
        "userx@example.com",
        "usery@example.com",
        "userz@example.com",
    ),
    "yahoo_08": (
        "usera@example.com",
        "userb@example.com",
        "userc@example.com",
        "userd@example.com",
        "usere@example.com",
        "userf@example.com",
    ),
    "yahoo_09": ("userx@example.com", "usery@example.com"),
    "yahoo_10": ("userx@example.com", "usery@example.com", "userz@example.com"),
    "yahoo_11": ("bad_user@aol.com",),
    "yahoo_12": ("user@yahoo.com",),
    "yahoo_13": ("bogus-address@example.net",),
    "yale_01": ("userx@cs.yale.edu", "userx@yale.edu"),
}


def sample(name: str) -> bytes:
    return (SAMPLES / f"{name}.txt").read_bytes()


def test_the_corpus_is_all_there() -> None:
    names = {p.stem for p in SAMPLES.glob("*.txt")}
    assert len(names) == 117
    assert set(EXPECTED) <= names
    assert sum(len(v) for v in EXPECTED.values()) == 133


@pytest.mark.parametrize("name", sorted(p.stem for p in SAMPLES.glob("*.txt")))
def test_every_real_bounce_is_read(name: str) -> None:
    reading = read_report(sample(name), TEMPLATE)
    assert reading.kind in ("hard", "soft", "complaint", "ignored")
    assert reading.reason and reading.reason.isprintable()
    assert set(EXPECTED.get(name, ())) <= set(reading.recipients)
    if reading.kind in ("hard", "soft"):
        assert reading.recipients


@pytest.mark.parametrize(
    ("name", "kind", "status", "reason"),
    [
        (
            "dsn_11",
            "hard",
            "5.1.1",
            "mail to joem@example.com failed permanently (5.1.1 (no such mailbox))",
        ),
        (
            "dsn_05",
            "ignored",
            "4.4.1",
            "delivery to userx@example.cz is delayed (4.4.1 (network and routing status)) and still being tried; a delay is no bounce",
        ),
        (
            "dsn_02",
            "soft",
            "4.4.7",
            "mail to zzzzz@example.uk failed for now (4.4.7 (delivery time expired)), a soft bounce; the server said: Diagnostic 5 (Maximum-Time-Expired)",
        ),
        ("qmail_01", "hard", None, "mail to userx@example.de failed permanently"),
        (
            "simple_03",
            "ignored",
            None,
            "a warning that delivery to userx@example.za is delayed; a delay is no bounce",
        ),
        # sendmail words "no such user" 553 5.3.0: the reply code makes it hard.
        (
            "simple_30",
            "hard",
            "5.3.0",
            "mail to userx@example.com failed permanently (5.3.0 (mail system status))",
        ),
        (
            "yahoo_01",
            "soft",
            "4.4.1",
            "mail to userx@example.com failed for now (4.4.1 (network and routing status))",
        ),
        ("dumbass_01", "ignored", None, "no bounce, delay notice or complaint was found in it"),
    ],
)
def test_real_bounces_are_classified(name: str, kind: str, status: str | None, reason: str) -> None:
    reading = read_report(sample(name), None)
    assert (reading.kind, reading.status, reading.reason) == (kind, status, reason)


def test_a_policy_refusal_in_a_real_dsn_does_not_mark_the_address() -> None:
    # Status 5.0.0, but the server wrote "550-5.7.1 ... likely unsolicited".
    reading = read_report(sample("simple_42"), None)
    assert reading.kind == "ignored"
    assert reading.status == "5.7.1"
    assert "a policy refusal does not mark the address" in reading.reason


# --- hand-made DSNs (RFC 3464) ------------------------------------------------------


def dsn(
    *recipients: dict[str, str],
    to: str = "bounces+tok3n@example.org",
    returned: Message | None = None,
) -> bytes:
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = "Mail Delivery System <MAILER-DAEMON@mx.example.net>"
    report["To"] = to
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report["Message-ID"] = "<dsn-1@mx.example.net>"
    report.attach(
        MIMEText("I'm sorry to have to inform you that your message could not be delivered.")
    )
    status = Message()
    status["Content-Type"] = "message/delivery-status"
    for fields in [{"Reporting-MTA": "dns; mx.example.net"}, *recipients]:
        block = Message()
        for name, value in fields.items():
            block[name] = value
        status.attach(block)
    report.attach(status)
    if returned is not None:
        report.attach(MIMEMessage(returned))
    return report.as_bytes()


def rcpt(address: str, action: str, status: str, diagnostic: str = "") -> dict[str, str]:
    fields = {"Final-Recipient": f"rfc822; {address}", "Action": action, "Status": status}
    if diagnostic:
        fields["Diagnostic-Code"] = f"smtp; {diagnostic}"
    return fields


def test_a_hard_bounce() -> None:
    data = dsn(
        rcpt(
            "Ada@Example.NET",
            "failed",
            "5.1.1",
            "550 5.1.1 <ada@example.net>: Recipient address rejected: User unknown",
        )
    )
    assert read_report(data, TEMPLATE) == Reading(
        "hard",
        ("ada@example.net",),
        "tok3n",
        "5.1.1",
        "mail to ada@example.net failed permanently (5.1.1 (no such mailbox)); the server said: "
        "550 5.1.1 <ada@example.net>: Recipient address rejected: User unknown",
        "<dsn-1@mx.example.net>",
    )


def test_a_full_mailbox_is_a_soft_bounce() -> None:
    reading = read_report(
        dsn(rcpt("bob@example.net", "failed", "5.2.2", "552 5.2.2 Mailbox full")), TEMPLATE
    )
    assert (reading.kind, reading.recipients, reading.status) == (
        "soft",
        ("bob@example.net",),
        "5.2.2",
    )
    assert reading.reason.startswith(
        "mail to bob@example.net failed for now (5.2.2 (mailbox full)), a soft bounce"
    )


def test_a_temporary_failure_that_ran_out_of_retries_is_soft() -> None:
    reading = read_report(dsn(rcpt("bob@example.net", "failed", "4.4.7")), TEMPLATE)
    assert (reading.kind, reading.status) == ("soft", "4.4.7")


def test_a_delay_is_ignored() -> None:
    reading = read_report(dsn(rcpt("bob@example.net", "delayed", "4.4.1")), TEMPLATE)
    assert reading.kind == "ignored"
    assert reading.recipients == ("bob@example.net",)
    assert "a delay is no bounce" in reading.reason


def test_a_policy_refusal_does_not_mark_the_address() -> None:
    data = dsn(rcpt("carol@example.org", "failed", "5.7.1", "554 5.7.1 Message rejected as spam"))
    reading = read_report(data, TEMPLATE)
    assert (reading.kind, reading.status) == ("ignored", "5.7.1")
    assert reading.reason == (
        "the server of carol@example.org refused the message on policy grounds "
        "(5.7.1 (delivery not authorized, message refused)); a policy refusal does not mark "
        "the address; the server said: 554 5.7.1 Message rejected as spam"
    )


def test_several_recipients_the_worst_fate_names_them() -> None:
    data = dsn(
        rcpt("ada@example.net", "failed", "5.1.1"),
        rcpt("dan@example.com", "failed", "5.1.2"),
        rcpt("eve@example.com", "delayed", "4.4.1"),
    )
    reading = read_report(data, TEMPLATE)
    assert (reading.kind, reading.recipients) == ("hard", ("ada@example.net", "dan@example.com"))


def test_original_recipient_is_preferred_to_the_final_one() -> None:
    fields = rcpt("forwarded@elsewhere.example", "failed", "5.1.1")
    fields["Original-Recipient"] = "rfc822;ada@example.net"
    assert read_report(dsn(fields), TEMPLATE).recipients == ("ada@example.net",)


def test_a_dsn_without_recipients_still_counts_by_its_verp_token() -> None:
    reading = read_report(dsn({"Action": "failed", "Status": "5.1.1"}), TEMPLATE)
    assert (reading.kind, reading.recipients, reading.token) == ("hard", (), "tok3n")
    assert reading.reason.startswith(
        "mail to the subscriber with VERP token tok3n failed permanently"
    )


def test_the_token_comes_from_the_returned_message_too() -> None:
    original = EmailMessage()
    original["Return-Path"] = "<bounces+fromreturned@Example.ORG>"
    original["To"] = "ada@example.net"
    original.set_content("The digest.")
    data = dsn(
        rcpt("ada@example.net", "failed", "5.1.1"), to="newsletter@example.org", returned=original
    )
    assert read_report(data, TEMPLATE).token == "fromreturned"
    assert read_report(data, None).token is None


def test_a_dsn_that_names_no_one_is_reported() -> None:
    reading = read_report(
        dsn({"Action": "failed", "Status": "5.1.1"}, to="postmaster@example.org"), TEMPLATE
    )
    assert reading == Reading(
        "ignored",
        (),
        None,
        "5.1.1",
        "a delivery report (hard) that names no recipient and was not sent back to a VERP "
        "address, so it matches no one",
        "<dsn-1@mx.example.net>",
    )


# --- feedback reports (RFC 5965) ----------------------------------------------------


def arf(fields: str, original_to: str = "ada@example.net") -> bytes:
    report = MIMEMultipart("report", report_type="feedback-report")
    report["From"] = "feedback@fbl.example.net"
    report["To"] = "fbl@example.org"
    report["Subject"] = "Abuse report"
    report["Message-ID"] = "<arf-1@fbl.example.net>"
    report.attach(MIMEText("This is an email abuse report for an email message received from you."))
    feedback = Message()
    feedback["Content-Type"] = "message/feedback-report"
    feedback.set_payload(fields)
    report.attach(feedback)
    original = EmailMessage()
    original["From"] = "news@example.org"
    original["To"] = original_to
    original["Subject"] = "Digest #1"
    original.set_content("The digest.")
    report.attach(MIMEMessage(original))
    return report.as_bytes()


def test_a_complaint_names_its_recipient_and_token() -> None:
    data = arf(
        "Feedback-Type: abuse\nUser-Agent: ExampleFBL/1.0\nVersion: 1\n"
        "Original-Mail-From: <bounces+c0mplaint@example.org>\n"
        "Original-Rcpt-To: <Ada@example.net>\n"
    )
    assert read_report(data, TEMPLATE) == Reading(
        "complaint",
        ("ada@example.net",),
        "c0mplaint",
        None,
        "ada@example.net reported the message as spam (abuse report from ExampleFBL/1.0)",
        "<arf-1@fbl.example.net>",
    )


def test_a_redacted_complaint_counts_by_its_token() -> None:
    data = arf(
        "Feedback-Type: abuse\nUser-Agent: ExampleFBL/1.0\nVersion: 1\n"
        "Original-Mail-From: bounces+redacted1@example.org\n",
        original_to="",
    )
    reading = read_report(data, TEMPLATE)
    assert (reading.kind, reading.recipients, reading.token) == ("complaint", (), "redacted1")


def test_a_complaint_without_original_rcpt_to_names_the_original_to() -> None:
    data = arf("Feedback-Type: fraud\nUser-Agent: ExampleFBL/1.0\nVersion: 1\n")
    reading = read_report(data, None)
    assert (reading.kind, reading.recipients) == ("complaint", ("ada@example.net",))


def test_a_complaint_about_an_unknown_address_is_just_reported() -> None:
    data = arf("Feedback-Type: abuse\nVersion: 1\nOriginal-Rcpt-To: nobody-knows@example.com\n")
    reading = read_report(data, TEMPLATE)
    assert (reading.kind, reading.recipients, reading.token) == (
        "complaint",
        ("nobody-knows@example.com",),
        None,
    )


def test_a_not_spam_report_is_no_complaint() -> None:
    reading = read_report(arf("Feedback-Type: not-spam\nVersion: 1\n"), TEMPLATE)
    assert reading.kind == "ignored"
    assert (
        reading.reason == "a not-spam report, which is no complaint (unnamed) about ada@example.net"
    )


# --- other messages and hostile input -----------------------------------------------


def test_an_auto_reply_is_ignored() -> None:
    reply = EmailMessage()
    reply["From"] = "ada@example.net"
    reply["To"] = "bounces+tok3n@example.org"
    reply["Subject"] = "Out of office"
    reply["Auto-Submitted"] = "auto-replied"
    reply.set_content("I am away until Monday.")
    reading = read_report(reply.as_bytes(), TEMPLATE)
    assert (reading.kind, reading.reason) == (
        "ignored",
        "an automatic reply (such as out of office), no bounce",
    )


def test_an_unknown_bounce_to_a_verp_address_is_soft() -> None:
    bounce = EmailMessage()
    bounce["From"] = "MAILER-DAEMON@mx.example.net"
    bounce["To"] = "bounces+tok3n@example.org"
    bounce["Subject"] = "Returned mail"
    bounce.set_content("Something went wrong, in words no detector knows.")
    reading = read_report(bounce.as_bytes(), TEMPLATE)
    assert (reading.kind, reading.recipients, reading.token) == ("soft", (), "tok3n")


def test_a_20_mb_bounce_is_read() -> None:
    original = EmailMessage()
    original["To"] = "ada@example.net"
    original.set_content("x" * 100 + "\n", subtype="plain")
    original.add_attachment(
        random.Random(1).randbytes(15_000_000), maintype="application", subtype="octet-stream"
    )
    data = dsn(rcpt("ada@example.net", "failed", "5.1.1"), returned=original)
    assert len(data) > 20_000_000
    reading = read_report(data, TEMPLATE)
    assert (reading.kind, reading.recipients) == ("hard", ("ada@example.net",))


def test_20_mb_of_text_is_read_without_blowing_up() -> None:
    data = b"From: MAILER-DAEMON@mx.example.net\r\nSubject: failure\r\n\r\n" + b"y" * 99 + b"\r\n"
    data += b"z" * 99 * 200_000
    reading = read_report(data, TEMPLATE)
    assert reading.kind == "ignored"


def test_a_truncated_boundary_still_gives_what_came_before() -> None:
    data = dsn(rcpt("ada@example.net", "failed", "5.1.1"))
    cut = data[: data.rindex(b"--=====")]
    assert read_report(cut, TEMPLATE).recipients == ("ada@example.net",)
    assert read_report(data[: len(data) // 2], TEMPLATE).kind in ("hard", "soft", "ignored")


def test_binary_garbage_is_ignored_with_a_reason() -> None:
    reading = read_report(random.Random(7).randbytes(100_000), TEMPLATE)
    assert reading.kind == "ignored"
    assert reading.key.startswith("sha256:")
    assert reading.reason.isprintable()


def test_non_utf8_headers_give_a_printable_reason() -> None:
    data = (
        b"From: MAILER-DAEMON@mx.example.net\r\nTo: bounces+tok3n@example.org\r\n"
        b"Subject: Unzustellbar: \xfc\xe4\r\nMessage-ID: <\xff@x>\r\n\r\n"
        b"<j\xfcrgen@example.net>: user unknown\r\n"
    )
    reading = read_report(data, TEMPLATE)
    assert reading.reason.isprintable()
    assert reading.key.startswith("sha256:")  # the Message-ID is not text


def test_deep_nesting_is_ignored_with_a_reason() -> None:
    data = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        for i in range(3000)
    )
    reading = read_report(data, TEMPLATE)
    assert reading.kind == "ignored"
    assert reading.reason.startswith("unreadable message: RecursionError")


def test_the_key_is_the_message_id_else_a_hash_of_the_bytes() -> None:
    assert read_report(sample("dsn_11"), None).key == read_report(sample("dsn_11"), TEMPLATE).key
    assert (
        read_report(b"Subject: a\r\n\r\nbody", None).key
        == read_report(b"Subject: a\r\n\r\nbody", None).key
    )
    assert (
        read_report(b"Subject: a\r\n\r\nbody", None).key
        != read_report(b"Subject: b\r\n\r\nbody", None).key
    )


FRAGMENTS = [
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n",
    b"Content-Type: multipart/report; report-type=feedback-report; boundary=B\r\n",
    b"\r\n",
    b"--B\r\n",
    b"--B--\r\n",
    b"Content-Type: message/delivery-status\r\n",
    b"Content-Type: message/global-delivery-status\r\n",
    b"Content-Type: message/feedback-report\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Type: text/rfc822-headers\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Action: failed\r\n",
    b"Action: delayed\r\n",
    b"Final-Recipient: rfc822; a@b.example\r\n",
    b"Original-Recipient: utf-8; \xc3\xa4@b.example\r\n",
    b"Status: 5.1.1\r\n",
    b"Status: 4.\r\n",
    b"Diagnostic-Code: smtp; 553 5.3.0 x\r\n",
    b"Feedback-Type: abuse\r\n",
    b"Original-Rcpt-To: <@>\r\n",
    b"To: bounces+x@example.org\r\n",
    b"Return-Path: <bounces+@example.org>\r\n",
    b"From: MAILER-DAEMON@x\r\n",
    b"\xff\xfe\x00\r\n",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_read_report_never_raises_on_bytes(data: bytes) -> None:
    reading = read_report(data, TEMPLATE)
    assert reading.reason.isprintable()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=40))
def test_read_report_never_raises_on_broken_reports(fragments: list[bytes]) -> None:
    reading = read_report(b"".join(fragments), TEMPLATE)
    assert reading.reason.isprintable()


# --- VERP ---------------------------------------------------------------------------

TEMPLATES = [
    "bounces+{token}@example.org",
    "{token}.bounce@Mail.Example.org",
    "b-{token}-x@example.org",
]


@given(st.sampled_from(TEMPLATES), st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True))
def test_a_token_comes_back_from_its_bounce_address(template: str, token: str) -> None:
    address = bounce_address(template, token)
    assert token_of(template, address) == token
    local, _, domain = address.rpartition("@")
    assert token_of(template, f"Bounces <{local}@{domain.upper()}>") == token


def test_token_of() -> None:
    assert token_of(TEMPLATE, "bounces+abc@EXAMPLE.org") == "abc"
    assert token_of(TEMPLATE, "<bounces+abc@example.org>") == "abc"
    assert token_of(TEMPLATE, "bounces+@example.org") is None
    assert token_of(TEMPLATE, "bounces+abc@example.net") is None
    assert token_of(TEMPLATE, "Bounces+abc@example.org") is None
    assert token_of(TEMPLATE, "news@example.org") is None
    assert token_of(TEMPLATE, "") is None


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        (
            "bounces@example.org",
            "expected exactly one {token} in the local part, like bounces+{token}@example.org, got 'bounces@example.org'",
        ),
        (
            "{token}+{token}@example.org",
            "expected exactly one {token} in the local part, like bounces+{token}@example.org, got '{token}+{token}@example.org'",
        ),
        (
            "bounces@{token}.example.org",
            "expected exactly one {token} in the local part, like bounces+{token}@example.org, got 'bounces@{token}.example.org'",
        ),
        (
            "bounces+{token}",
            "expected an address like bounces+{token}@example.org, got 'bounces+{token}'",
        ),
        (
            "bounces +{token}@example.org",
            "the local part of 'bounces +{token}@example.org' may hold, besides {token}, only letters, digits and !#$%&'*+-/=?^_`|~ with single dots between them",
        ),
        (
            "bounces+{token}@example..org",
            "'example..org' in 'bounces+{token}@example..org' is not a domain name",
        ),
    ],
)
def test_template_problems_are_sentences(template: str, problem: str) -> None:
    assert template_problem(template) == problem
    with pytest.raises(ValueError, match="bounce address: "):
        bounce_address(template, "abc")


def test_a_token_is_letters_digits_dashes_and_underscores() -> None:
    with pytest.raises(ValueError, match="a VERP token is letters, digits, - and _; got 'a@b'"):
        bounce_address(TEMPLATE, "a@b")


# --- SMTP replies given at once ------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "message", "verdict"),
    [
        (550, "5.1.1 <ada@example.net>: Recipient address rejected: User unknown", "hard"),
        (550, b"5.1.10 Recipient address rejected: domain has a null MX", "hard"),
        (550, "Requested action not taken: mailbox unavailable", "hard"),
        (551, "User not local", "hard"),
        (553, "5.3.0 <ada@example.net>... Addressee unknown", "hard"),
        (552, "5.2.2 Mailbox full", "soft"),
        (452, "4.2.2 Mailbox full", "soft"),
        (452, "Insufficient system storage", "soft"),
        (450, "4.7.1 Try again later (greylisted)", "soft"),
        (554, "5.7.1 Message rejected as spam", "policy"),
        (550, "5.7.26 Unauthenticated email is not accepted (DMARC)", "policy"),
        (554, "Transaction failed", "soft"),
        (550, "4.1.1 a class that contradicts the code", "hard"),
        (250, "2.1.5 Ok", None),
        (354, "End data with <CR><LF>.<CR><LF>", None),
    ],
)
def test_smtp_verdict(code: int, message: str | bytes, verdict: str | None) -> None:
    assert smtp_verdict(code, message) == verdict
