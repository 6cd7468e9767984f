"""Provider webhooks: real signatures made here with real keys (an RSA certificate
signing as SNS does, an HMAC key, a P-256 key), and every forgery refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedpub.errors import FeedpubError, WebhookRefused
from feedpub.model import ListEvent
from feedpub.webhooks import (
    MAX_WEBHOOK_BYTES,
    Accepted,
    read_mailgun,
    read_postmark,
    read_sendgrid,
    read_ses,
)
from tests.conftest import NOW

TOPIC = "arn:aws:sns:us-east-1:123456789012:feedpub-feedback"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem"
SUBSCRIBE_URL = (
    "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"
    f"&TopicArn={TOPIC}&Token=2336412f37fb687f5d51e6e2425c464de"
)
OVERSIZED = b"[" + b" " * MAX_WEBHOOK_BYTES + b"]"


def refused(status: int, call: Callable[[], Accepted]) -> str:
    """Assert that ``call`` is refused with ``status``; its reason, for wording checks."""
    with pytest.raises(WebhookRefused) as caught:
        call()
    assert caught.value.status == status, caught.value.reason
    return caught.value.reason


# SES through SNS ------------------------------------------------------------------


def make_certificate(key: rsa.RSAPrivateKey, not_before: datetime, not_after: datetime) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def sns_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class CertificateHost:
    """Stands in for the HTTPS GET of a SigningCertURL, and notes each one asked for."""

    def __init__(self, pem: bytes) -> None:
        self.pem = pem
        self.fetched: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.fetched.append(url)
        return self.pem


@pytest.fixture
def host(sns_key: rsa.RSAPrivateKey) -> CertificateHost:
    return CertificateHost(
        make_certificate(sns_key, NOW - timedelta(days=30), NOW + timedelta(days=300))
    )


def sns_string_to_sign(message: dict[str, Any]) -> bytes:
    """The string SNS signs, as AWS documents it: name and value lines, in this order."""
    if message["Type"] == "Notification":
        names = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        names = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    return "".join(f"{n}\n{message[n]}\n" for n in names if n in message).encode()


def sns_sign(key: rsa.RSAPrivateKey, message: dict[str, Any], version: str = "1") -> dict[str, Any]:
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(sns_string_to_sign(message), padding.PKCS1v15(), algorithm)
    return {
        **message,
        "SignatureVersion": version,
        "Signature": base64.b64encode(signature).decode(),
        "SigningCertURL": CERT_URL,
    }


def notification(event: dict[str, Any] | str, **fields: Any) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": TOPIC,
        "Message": event if isinstance(event, str) else json.dumps(event),
        "Timestamp": "2026-11-30T11:58:04.751Z",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
        **fields,
    }


def confirmation(kind: str = "SubscriptionConfirmation", **fields: Any) -> dict[str, Any]:
    return {
        "Type": kind,
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37fb687f5d51e6e2425c464de",
        "TopicArn": TOPIC,
        "Message": f"You have chosen to subscribe to the topic {TOPIC}.",
        "SubscribeURL": SUBSCRIBE_URL,
        "Timestamp": "2026-11-30T11:59:00.000Z",
        **fields,
    }


BOUNCE: dict[str, Any] = {
    "notificationType": "Bounce",
    "bounce": {
        "feedbackId": "0100017f-bounce",
        "bounceType": "Permanent",
        "bounceSubType": "General",
        "bouncedRecipients": [
            {
                "emailAddress": "Ada@Example.NET",
                "action": "failed",
                "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1\n user unknown",
            },
            {"emailAddress": "bob@example.net"},
        ],
        "timestamp": "2026-11-30T11:58:03.000Z",
    },
    "mail": {"messageId": "0100017f-mail"},
}
COMPLAINT: dict[str, Any] = {
    "eventType": "Complaint",
    "complaint": {
        "feedbackId": "0100017f-complaint",
        "complaintFeedbackType": "abuse",
        "complainedRecipients": [{"emailAddress": "carol@example.net"}],
    },
    "mail": {"messageId": "0100017f-mail"},
}


def ses(body: dict[str, Any] | bytes, host: CertificateHost, **options: Any) -> Accepted:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return read_ses(
        raw,
        fetch_certificate=host,
        now=options.pop("now", NOW),
        allowed_topics=options.pop("allowed_topics", {TOPIC}),
        **options,
    )


@pytest.mark.parametrize("version", ["1", "2"])
def test_an_ses_bounce_signed_as_sns_signs_gives_one_event_a_recipient(
    sns_key: rsa.RSAPrivateKey, host: CertificateHost, version: str
) -> None:
    accepted = ses(sns_sign(sns_key, notification(BOUNCE), version), host)
    assert accepted == Accepted(
        (
            ListEvent(
                "ses",
                "0100017f-bounce:ada@example.net",
                "ada@example.net",
                "hard",
                "SES Permanent bounce (General): smtp; 550 5.1.1 user unknown",
            ),
            ListEvent(
                "ses",
                "0100017f-bounce:bob@example.net",
                "bob@example.net",
                "hard",
                "SES Permanent bounce (General)",
            ),
        )
    )
    assert host.fetched == [CERT_URL]


@pytest.mark.parametrize(
    ("bounce_type", "kind"),
    [("Permanent", "hard"), ("Transient", "soft"), ("Undetermined", "soft")],
)
def test_ses_bounce_types(
    sns_key: rsa.RSAPrivateKey, host: CertificateHost, bounce_type: str, kind: str
) -> None:
    event = {**BOUNCE, "bounce": {**BOUNCE["bounce"], "bounceType": bounce_type}}
    accepted = ses(sns_sign(sns_key, notification(event)), host)
    assert [e.kind for e in accepted.events] == [kind, kind]


def test_an_ses_complaint_with_a_subject_in_the_signature(
    sns_key: rsa.RSAPrivateKey, host: CertificateHost
) -> None:
    message = notification(COMPLAINT, Subject="Amazon SES Email Event Notification")
    accepted = ses(sns_sign(sns_key, message, "2"), host)
    assert accepted.events == (
        ListEvent(
            "ses",
            "0100017f-complaint:carol@example.net",
            "carol@example.net",
            "complaint",
            "SES complaint (abuse)",
        ),
    )


@pytest.mark.parametrize(
    "event",
    [
        {"notificationType": "Delivery", "delivery": {"recipients": ["ada@example.net"]}},
        {"eventType": "Open", "open": {}},
        "Successfully validated SNS topic for Amazon SES event publishing.",
        "[1, 2]",
    ],
)
def test_other_ses_messages_are_accepted_with_no_events(
    sns_key: rsa.RSAPrivateKey, host: CertificateHost, event: dict[str, Any] | str
) -> None:
    assert ses(sns_sign(sns_key, notification(event)), host) == Accepted(())


def test_a_subscription_confirmation_names_the_url_to_confirm(
    sns_key: rsa.RSAPrivateKey, host: CertificateHost
) -> None:
    assert ses(sns_sign(sns_key, confirmation()), host) == Accepted((), SUBSCRIBE_URL)
    unsubscribed = sns_sign(sns_key, confirmation("UnsubscribeConfirmation"))
    assert ses(unsubscribed, host) == Accepted(())


def test_a_subscribe_url_off_the_sns_hosts_is_not_confirmed(
    sns_key: rsa.RSAPrivateKey, host: CertificateHost
) -> None:
    message = confirmation(SubscribeURL="https://evil.example/?Action=ConfirmSubscription")
    reason = refused(403, lambda: ses(sns_sign(sns_key, message), host))
    assert reason == "SES: the SubscribeURL is not on an SNS host"
    assert host.fetched == []


def test_an_ses_region_in_china_is_an_sns_host(
    sns_key: rsa.RSAPrivateKey, host: CertificateHost
) -> None:
    url = "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-1.pem"
    message = {**sns_sign(sns_key, notification(COMPLAINT)), "SigningCertURL": url}
    assert len(ses(message, host).events) == 1
    assert host.fetched == [url]


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/SimpleNotificationService.pem",
        "https://sns.us-east-1.amazonaws.com.evil.example/x.pem",
        "http://sns.us-east-1.amazonaws.com/x.pem",
        "https://sns.us-east-1.amazonaws.com/x.txt",
        "https://sns.us-east-1.amazonaws.com/x.pem?download=1",
        "https://sns.us-east-1.amazonaws.com/x.pem#part",
        "https://sns.us-east-1.amazonaws.com@evil.example/x.pem",
        "https://sns.us-east-1.amazonaws.com:8443/x.pem",
        "https://SNS.US-EAST-1.AMAZONAWS.COM/x.pem",
        "https://sns.s3.amazonaws.com/x.pem",  # an S3 bucket named "sns"
        "https://evilsns.us-east-1.amazonaws.com/x.pem",
        "https://[::1/x.pem",
    ],
)
def test_a_signing_certificate_off_the_sns_hosts_is_never_fetched(
    sns_key: rsa.RSAPrivateKey, host: CertificateHost, url: str
) -> None:
    message = {**sns_sign(sns_key, notification(BOUNCE)), "SigningCertURL": url}
    reason = refused(403, lambda: ses(message, host))
    assert reason == (
        "SES: the SigningCertURL is not an https://sns.<region>.amazonaws.com/ .pem file"
    )
    assert host.fetched == []


def test_a_tampered_ses_message_is_refused(
    sns_key: rsa.RSAPrivateKey, host: CertificateHost
) -> None:
    signed = sns_sign(sns_key, notification(COMPLAINT))
    forged = {
        **COMPLAINT["complaint"],
        "complainedRecipients": [{"emailAddress": "dan@example.net"}],
    }
    tampered = {**signed, "Message": json.dumps({**COMPLAINT, "complaint": forged})}
    reason = refused(401, lambda: ses(tampered, host))
    assert reason == "SES: the Signature does not match the message"
    version_swapped = {**signed, "SignatureVersion": "2"}
    refused(401, lambda: ses(version_swapped, host))
    subject_added = {**signed, "Subject": "Hello"}
    refused(401, lambda: ses(subject_added, host))


def test_an_ses_message_signed_by_another_key_is_refused(
    sns_key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey, host: CertificateHost
) -> None:
    refused(401, lambda: ses(sns_sign(other_key, notification(BOUNCE)), host))


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("Signature", None, "SES: the message has no Signature or SigningCertURL"),
        ("SigningCertURL", None, "SES: the message has no Signature or SigningCertURL"),
        ("SignatureVersion", None, "SES: the SignatureVersion is neither 1 nor 2"),
        ("SignatureVersion", "3", "SES: the SignatureVersion is neither 1 nor 2"),
        ("SignatureVersion", 1, "SES: the SignatureVersion is neither 1 nor 2"),
    ],
)
def test_an_unsigned_ses_message_is_refused_before_fetching(
    sns_key: rsa.RSAPrivateKey, host: CertificateHost, field: str, value: object, reason: str
) -> None:
    unsigned = {**sns_sign(sns_key, notification(BOUNCE)), field: value}
    assert refused(401, lambda: ses(unsigned, host)) == reason
    assert host.fetched == []


def test_an_ses_signature_that_is_not_base64_is_refused(
    sns_key: rsa.RSAPrivateKey, host: CertificateHost
) -> None:
    garbled = {**sns_sign(sns_key, notification(BOUNCE)), "Signature": "not base64!"}
    assert refused(401, lambda: ses(garbled, host)) == (
        "SES: the Signature does not match the message"
    )


@pytest.mark.parametrize(
    ("not_before", "not_after"),
    [
        (NOW - timedelta(days=400), NOW - timedelta(seconds=1)),
        (NOW + timedelta(seconds=1), NOW + timedelta(days=400)),
    ],
)
def test_a_signing_certificate_not_valid_now_is_refused(
    sns_key: rsa.RSAPrivateKey, not_before: datetime, not_after: datetime
) -> None:
    host = CertificateHost(make_certificate(sns_key, not_before, not_after))
    reason = refused(401, lambda: ses(sns_sign(sns_key, notification(BOUNCE)), host))
    assert reason == "SES: the signing certificate is not valid now"


def test_a_signing_certificate_that_is_not_one_is_refused(sns_key: rsa.RSAPrivateKey) -> None:
    host = CertificateHost(b"<html>Service Unavailable</html>")
    reason = refused(401, lambda: ses(sns_sign(sns_key, notification(BOUNCE)), host))
    assert reason == "SES: the signing certificate is not a PEM certificate"


def test_an_sns_topic_not_configured_is_refused_before_fetching(
    sns_key: rsa.RSAPrivateKey, host: CertificateHost
) -> None:
    other = sns_sign(sns_key, notification(BOUNCE, TopicArn="arn:aws:sns:us-east-1:999999999999:x"))
    reason = refused(403, lambda: ses(other, host))
    assert reason == "SES: the TopicArn is not one of the configured topics"
    signed = sns_sign(sns_key, notification(BOUNCE))
    reason = refused(403, lambda: ses(signed, host, allowed_topics=frozenset()))
    assert reason == "SES: no SNS topics are configured"
    assert host.fetched == []


@pytest.mark.parametrize(
    "timestamp", ["2026-11-30T10:59:59.000Z", "2026-11-30T13:00:01Z", "2026-11-30T11:00:00+08:00"]
)
def test_an_sns_message_outside_the_window_is_refused_before_fetching(
    sns_key: rsa.RSAPrivateKey, host: CertificateHost, timestamp: str
) -> None:
    stale = sns_sign(sns_key, notification(BOUNCE, Timestamp=timestamp))
    reason = refused(401, lambda: ses(stale, host))
    assert reason == "SES: the request was signed more than 3600 seconds away from now"
    assert host.fetched == []
    assert len(ses(stale, host, window=timedelta(days=1)).events) == 2


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "SES: the body is not JSON in UTF-8"),
        (b"\xff\xfe{}", "SES: the body is not JSON in UTF-8"),
        (b"[" * 100_000, "SES: the body is not JSON in UTF-8"),
        (b"[]", "SES: the body is missing or not a JSON object"),
        (b"{}", "SES: Type is missing or not a string"),
        (b'{"Type": "Notice"}', "SES: the message Type 'Notice' is not one SNS sends"),
        (b'{"Type": "Notification", "Message": 5}', "SES: Message is missing or not a string"),
    ],
)
def test_malformed_sns_messages_are_refused(
    host: CertificateHost, body: bytes, reason: str
) -> None:
    assert refused(400, lambda: ses(body, host)) == reason
    assert host.fetched == []


def test_a_signed_ses_event_without_its_recipients_is_refused(
    sns_key: rsa.RSAPrivateKey, host: CertificateHost
) -> None:
    event = {"notificationType": "Bounce", "bounce": {"bounceType": "Permanent"}}
    reason = refused(400, lambda: ses(sns_sign(sns_key, notification(event)), host))
    assert reason == "SES: bouncedRecipients is missing or not a list"


def test_an_oversized_sns_body_is_refused_before_reading(host: CertificateHost) -> None:
    reason = refused(413, lambda: ses(OVERSIZED, host))
    assert reason == "SES: the body is over 1000000 bytes"
    assert host.fetched == []


# Postmark -------------------------------------------------------------------------


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


AUTH = basic("postmark", "s3cret:with colon")


def postmark(record: dict[str, Any] | bytes, authorization: str | None = AUTH) -> Accepted:
    raw = record if isinstance(record, bytes) else json.dumps(record).encode()
    return read_postmark(raw, authorization, user="postmark", password="s3cret:with colon")


def postmark_bounce(bounce_type: str, **fields: Any) -> dict[str, Any]:
    return {
        "RecordType": "Bounce",
        "ID": 4323372036854775807,
        "Type": bounce_type,
        "TypeCode": 1,
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Description": "The server was unable to deliver your message.",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist",
        "Email": "Ada@Example.net",
        "BouncedAt": "2026-11-30T11:58:54.9070259Z",
        **fields,
    }


def test_a_postmark_hard_bounce() -> None:
    assert postmark(postmark_bounce("HardBounce")) == Accepted(
        (
            ListEvent(
                "postmark",
                "4323372036854775807",
                "ada@example.net",
                "hard",
                "Postmark HardBounce: smtp;550 5.1.1 The email account that you tried to reach does not exist",
            ),
        )
    )


@pytest.mark.parametrize(
    ("bounce_type", "kind"),
    [
        ("BadEmailAddress", "hard"),
        ("SoftBounce", "soft"),
        ("Transient", "soft"),
        ("DnsError", "soft"),
        ("Blocked", "soft"),
        ("SpamComplaint", "complaint"),
        ("Unsubscribe", "unsubscribe"),
        ("AutoResponder", None),
        ("DMARCPolicy", None),
    ],
)
def test_postmark_bounce_types(bounce_type: str, kind: str | None) -> None:
    events = postmark(postmark_bounce(bounce_type)).events
    assert [e.kind for e in events] == ([kind] if kind else [])


def test_a_postmark_spam_complaint_record() -> None:
    record = postmark_bounce("SpamComplaint", RecordType="SpamComplaint", ID="abc-1")
    assert postmark(record).events == (
        ListEvent("postmark", "abc-1", "ada@example.net", "complaint", "Postmark SpamComplaint"),
    )


def subscription_change(suppress: bool, reason: str | None) -> dict[str, Any]:
    return {
        "RecordType": "SubscriptionChange",
        "MessageID": "00000000-0000-0000-0000-000000000000",
        "ChangedAt": "2026-11-30T11:57:00Z",
        "Recipient": "Bob@example.net",
        "Origin": "Recipient",
        "SuppressSending": suppress,
        "SuppressionReason": reason,
    }


def test_a_postmark_manual_suppression_is_an_unsubscribe_with_a_made_id() -> None:
    assert postmark(subscription_change(True, "ManualSuppression")).events == (
        ListEvent(
            "postmark",
            "00000000-0000-0000-0000-000000000000:SubscriptionChange",
            "bob@example.net",
            "unsubscribe",
            "Postmark suppression: ManualSuppression",
        ),
    )
    assert postmark(subscription_change(True, "HardBounce")).events[0].kind == "hard"
    assert postmark(subscription_change(False, None)) == Accepted(())


def test_other_postmark_records_are_ignored() -> None:
    delivery = {"RecordType": "Delivery", "MessageID": "x", "Recipient": "ada@example.net"}
    assert postmark(delivery) == Accepted(())


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        basic("postmark", "wrong"),
        basic("other", "s3cret:with colon"),
        basic("postmark", "s3cret"),
        "Bearer " + AUTH.removeprefix("Basic "),
        "Basic not*base64",
        "Basic " + base64.b64encode(b"no colon").decode(),
        "Basic",
        "",
    ],
)
def test_postmark_without_the_right_credentials_is_refused(authorization: str | None) -> None:
    refused(401, lambda: postmark(postmark_bounce("HardBounce"), authorization))


def test_postmark_credentials_are_compared_in_any_letter_case_of_the_scheme() -> None:
    assert len(postmark(postmark_bounce("HardBounce"), "basic" + AUTH[5:]).events) == 1


def test_postmark_with_no_credentials_configured_refuses_everyone() -> None:
    body = json.dumps(postmark_bounce("HardBounce")).encode()
    reason = refused(401, lambda: read_postmark(body, basic("", ""), user="", password=""))
    assert reason == "Postmark: no webhook user and password are configured"


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (b"not json", "Postmark: the body is not JSON in UTF-8"),
        (b'"Bounce"', "Postmark: the body is missing or not a JSON object"),
        (b'{"Type": "HardBounce"}', "Postmark: RecordType is missing or not a string"),
        (
            {"RecordType": "Bounce", "Type": "HardBounce", "ID": 1},
            "Postmark: Email is missing or not a string",
        ),
        (
            {"RecordType": "Bounce", "Type": "HardBounce", "Email": "a@b.c"},
            "Postmark: MessageID is missing or not a string",
        ),
        (
            {"RecordType": "Bounce", "Type": "HardBounce", "ID": True, "Email": "a@b.c"},
            "Postmark: MessageID is missing or not a string",
        ),
        (
            {**subscription_change(True, "ManualSuppression"), "SuppressSending": "true"},
            "Postmark: SuppressSending is missing or not true or false",
        ),
    ],
)
def test_malformed_postmark_records_are_refused(
    record: dict[str, Any] | bytes, reason: str
) -> None:
    assert refused(400, lambda: postmark(record)) == reason


def test_an_oversized_postmark_body_is_refused() -> None:
    assert refused(413, lambda: postmark(OVERSIZED)) == "Postmark: the body is over 1000000 bytes"


# Mailgun --------------------------------------------------------------------------

MAILGUN_KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"


class TokenMemory:
    """The store's part: remembers each token, and says whether it is new."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __call__(self, token: str) -> bool:
        if token in self.seen:
            return False
        self.seen.add(token)
        return True


def mailgun_body(
    event: object,
    *,
    key: str = MAILGUN_KEY,
    timestamp: str = str(int(NOW.timestamp()) - 30),
    token: str = "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0",
) -> dict[str, Any]:
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": event,
    }


def mailgun(
    body: dict[str, Any] | bytes, memory: TokenMemory | None = None, **options: Any
) -> Accepted:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return read_mailgun(
        raw,
        signing_key=options.pop("signing_key", MAILGUN_KEY),
        now=NOW,
        remember_token=memory if memory is not None else TokenMemory(),
        **options,
    )


def failed(severity: str) -> dict[str, Any]:
    return {
        "event": "failed",
        "id": "G9Bn5sl1TC6nu79C8C0bwg",
        "timestamp": 1521233195.375624,
        "severity": severity,
        "reason": "bounce",
        "recipient": "Ada@example.net",
        "delivery-status": {"code": 550, "description": "", "message": "5.1.1 No such user"},
    }


def test_a_mailgun_permanent_failure_is_a_hard_bounce() -> None:
    memory = TokenMemory()
    assert mailgun(mailgun_body(failed("permanent")), memory) == Accepted(
        (
            ListEvent(
                "mailgun",
                "G9Bn5sl1TC6nu79C8C0bwg",
                "ada@example.net",
                "hard",
                "Mailgun failed (permanent): bounce: 5.1.1 No such user",
            ),
        )
    )
    assert memory.seen == {"a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0"}


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        (failed("temporary"), "soft"),
        ({"event": "complained", "id": "c1", "recipient": "ada@example.net"}, "complaint"),
        ({"event": "unsubscribed", "id": "u1", "recipient": "ada@example.net"}, "unsubscribe"),
        ({"event": "delivered", "id": "d1", "recipient": "ada@example.net"}, None),
        ({"event": "failed", "severity": "unknown", "id": "f1"}, None),
    ],
)
def test_mailgun_events(event: dict[str, Any], kind: str | None) -> None:
    events = mailgun(mailgun_body(event)).events
    assert [e.kind for e in events] == ([kind] if kind else [])


def test_a_replayed_mailgun_request_is_refused() -> None:
    memory = TokenMemory()
    body = mailgun_body(failed("permanent"))
    mailgun(body, memory)
    assert refused(409, lambda: mailgun(body, memory)) == (
        "Mailgun: this signature token was used before"
    )


def test_a_refused_mailgun_request_does_not_use_up_its_token() -> None:
    memory = TokenMemory()
    refused(401, lambda: mailgun(mailgun_body(failed("permanent"), key="wrong"), memory))
    refused(400, lambda: mailgun(mailgun_body({"event": "failed"}), memory))
    assert memory.seen == set()
    assert len(mailgun(mailgun_body(failed("permanent")), memory).events) == 1


@pytest.mark.parametrize(
    ("field", "value"), [("token", "b" * 50), ("timestamp", str(int(NOW.timestamp())))]
)
def test_a_mailgun_request_with_a_changed_token_or_timestamp_is_refused(
    field: str, value: str
) -> None:
    """Mailgun signs the timestamp and token only; event-data is not covered."""
    body = mailgun_body(failed("permanent"))
    tampered = {**body, "signature": {**body["signature"], field: value}}
    reason = refused(401, lambda: mailgun(tampered))
    assert reason == "Mailgun: the signature does not match the signing key"


def test_a_mailgun_request_signed_with_another_key_is_refused() -> None:
    refused(401, lambda: mailgun(mailgun_body(failed("permanent"), key="another-key")))
    refused(401, lambda: mailgun(mailgun_body(failed("permanent")), signing_key="another-key"))
    reason = refused(
        401, lambda: mailgun(mailgun_body(failed("permanent"), key=""), signing_key="")
    )
    assert reason == "Mailgun: no webhook signing key is configured"


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "sig",
        {},
        {"timestamp": 1, "token": "t", "signature": "s"},
        {"timestamp": "1", "token": "t"},
    ],
)
def test_an_unsigned_mailgun_request_is_refused(signature: object) -> None:
    body = {"signature": signature, "event-data": failed("permanent")}
    refused(401, lambda: mailgun(body))


@pytest.mark.parametrize(
    "timestamp", [str(int(NOW.timestamp()) - 301), str(int(NOW.timestamp()) + 301), "0"]
)
def test_a_stale_mailgun_request_is_refused(timestamp: str) -> None:
    body = mailgun_body(failed("permanent"), timestamp=timestamp)
    reason = refused(401, lambda: mailgun(body))
    assert reason == "Mailgun: the request was signed more than 300 seconds away from now"


def test_a_mailgun_timestamp_that_is_not_seconds_is_refused() -> None:
    body = mailgun_body(failed("permanent"), timestamp="１６００")
    reason = refused(401, lambda: mailgun(body))
    assert reason == "Mailgun: the timestamp is not a number of seconds"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"token=abc&signature=def", "Mailgun: the body is not JSON in UTF-8"),
        (mailgun_body(None), "Mailgun: event-data is missing or not a JSON object"),
        (mailgun_body({"id": "x"}), "Mailgun: event-data.event is missing or not a string"),
        (
            mailgun_body({"event": "complained", "id": "c1"}),
            "Mailgun: event-data.recipient is missing or not a string",
        ),
        (
            mailgun_body({"event": "complained", "id": "c1", "recipient": " "}),
            "Mailgun: event-data.recipient is empty",
        ),
    ],
)
def test_malformed_mailgun_requests_are_refused(body: dict[str, Any] | bytes, reason: str) -> None:
    assert refused(400, lambda: mailgun(body)) == reason


def test_an_oversized_mailgun_body_is_refused() -> None:
    refused(413, lambda: mailgun(OVERSIZED))


# SendGrid -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sendgrid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def verification_key(key: ec.EllipticCurvePrivateKey) -> str:
    """The key as SendGrid's settings show it: base64 DER SubjectPublicKeyInfo."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def sendgrid_sign(key: ec.EllipticCurvePrivateKey, timestamp: str, body: bytes) -> str:
    return base64.b64encode(key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()


STAMP = str(int(NOW.timestamp()) - 10)


def sendgrid(
    key: ec.EllipticCurvePrivateKey,
    body: list[Any] | bytes,
    *,
    timestamp: str = STAMP,
    public_key: str | None = None,
    now: datetime = NOW,
) -> Accepted:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return read_sendgrid(
        raw,
        sendgrid_sign(key, timestamp, raw),
        timestamp,
        public_key=public_key if public_key is not None else verification_key(key),
        now=now,
    )


def sg_event(event: str, number: int, **fields: Any) -> dict[str, Any]:
    return {
        "email": f"User{number}@Example.net",
        "timestamp": 1764503900,
        "event": event,
        "sg_event_id": f"sg-{number}",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        **fields,
    }


def test_a_sendgrid_batch_gives_the_events_that_bear_on_the_list(
    sendgrid_key: ec.EllipticCurvePrivateKey,
) -> None:
    batch = [
        sg_event("processed", 0),
        sg_event("bounce", 1, type="bounce", reason="550 5.1.1 no such user", status="5.1.1"),
        sg_event("bounce", 2, type="blocked", reason="421 try later"),
        sg_event("dropped", 3, reason="Bounced Address"),
        sg_event("dropped", 4, reason="Invalid"),
        sg_event("dropped", 5, reason="Unsubscribed Address"),
        sg_event("spamreport", 6),
        sg_event("unsubscribe", 7),
        sg_event("group_unsubscribe", 8, asm_group_id=1),
        sg_event("deferred", 9, response="400 try again later", attempt="5"),
        sg_event("bounce", 10),
    ]
    assert [
        (e.event_id, e.address, e.kind, e.detail) for e in sendgrid(sendgrid_key, batch).events
    ] == [
        ("sg-1", "user1@example.net", "hard", "SendGrid bounce (bounce): 550 5.1.1 no such user"),
        ("sg-2", "user2@example.net", "soft", "SendGrid bounce (blocked): 421 try later"),
        ("sg-3", "user3@example.net", "hard", "SendGrid dropped: Bounced Address"),
        ("sg-4", "user4@example.net", "hard", "SendGrid dropped: Invalid"),
        ("sg-6", "user6@example.net", "complaint", "SendGrid spamreport"),
        ("sg-7", "user7@example.net", "unsubscribe", "SendGrid unsubscribe"),
        ("sg-8", "user8@example.net", "unsubscribe", "SendGrid group_unsubscribe"),
        ("sg-10", "user10@example.net", "hard", "SendGrid bounce (bounce)"),
    ]


def test_the_signed_example_sendgrid_publishes_is_accepted() -> None:
    """The key, signature and payload of SendGrid's own SDK test
    (sendgrid-python, test/unit/test_eventwebhook.py): the format is theirs, not ours."""
    payload = (
        b'[{"email":"hello@world.com","event":"dropped","reason":"Bounced Address",'
        b'"sg_event_id":"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",'
        b'"sg_message_id":"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",'
        b'"smtp-id":"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>","timestamp":1600112492}]\r\n'
    )
    public_key = (
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1"
        "flpVKS3GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
    )
    signature = "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM="
    now = datetime.fromtimestamp(1600112502, UTC)
    accepted = read_sendgrid(payload, signature, "1600112502", public_key=public_key, now=now)
    assert [(e.address, e.kind) for e in accepted.events] == [("hello@world.com", "hard")]
    refused(
        401,
        lambda: read_sendgrid(
            payload[:-2], signature, "1600112502", public_key=public_key, now=now
        ),
    )


def test_a_tampered_sendgrid_request_is_refused(sendgrid_key: ec.EllipticCurvePrivateKey) -> None:
    body = json.dumps([sg_event("spamreport", 1)]).encode()
    signature = sendgrid_sign(sendgrid_key, STAMP, body)
    key = verification_key(sendgrid_key)
    tampered = body.replace(b"User1", b"User2")
    reason = refused(
        401, lambda: read_sendgrid(tampered, signature, STAMP, public_key=key, now=NOW)
    )
    assert reason == "SendGrid: the signature does not match the body"
    later = str(int(STAMP) + 1)
    refused(401, lambda: read_sendgrid(body, signature, later, public_key=key, now=NOW))


@pytest.mark.parametrize(
    "signature", ["", "not base64!", base64.b64encode(b"\x30\x02junk").decode()]
)
def test_a_garbled_sendgrid_signature_is_refused(
    sendgrid_key: ec.EllipticCurvePrivateKey, signature: str
) -> None:
    body = json.dumps([sg_event("spamreport", 1)]).encode()
    key = verification_key(sendgrid_key)
    reason = refused(401, lambda: read_sendgrid(body, signature, STAMP, public_key=key, now=NOW))
    assert reason == "SendGrid: the signature does not match the body"


def test_a_sendgrid_request_signed_by_another_key_is_refused(
    sendgrid_key: ec.EllipticCurvePrivateKey,
) -> None:
    other = verification_key(ec.generate_private_key(ec.SECP256R1()))
    refused(401, lambda: sendgrid(sendgrid_key, [sg_event("spamreport", 1)], public_key=other))


@pytest.mark.parametrize(("signed", "stamped"), [(False, True), (True, False), (False, False)])
def test_an_unsigned_sendgrid_request_is_refused(
    sendgrid_key: ec.EllipticCurvePrivateKey, signed: bool, stamped: bool
) -> None:
    body = json.dumps([sg_event("spamreport", 1)]).encode()
    signature = sendgrid_sign(sendgrid_key, STAMP, body) if signed else None
    timestamp = STAMP if stamped else None
    key = verification_key(sendgrid_key)
    reason = refused(
        401, lambda: read_sendgrid(body, signature, timestamp, public_key=key, now=NOW)
    )
    assert reason == "SendGrid: the request has no signature or timestamp header"


@pytest.mark.parametrize(
    "public_key",
    [
        "",
        "not base64!",
        base64.b64encode(b"not DER").decode(),
        base64.b64encode(
            ec.generate_private_key(ec.SECP384R1())
            .public_key()
            .public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        ).decode(),
    ],
)
def test_an_unreadable_sendgrid_key_refuses_every_request(
    sendgrid_key: ec.EllipticCurvePrivateKey, public_key: str
) -> None:
    reason = refused(
        401, lambda: sendgrid(sendgrid_key, [sg_event("spamreport", 1)], public_key=public_key)
    )
    assert reason == "SendGrid: the verification key is not a base64 P-256 key"


def test_a_sendgrid_key_copied_with_line_breaks_is_read(
    sendgrid_key: ec.EllipticCurvePrivateKey,
) -> None:
    key = verification_key(sendgrid_key)
    wrapped = "\n".join(key[i : i + 64] for i in range(0, len(key), 64)) + "\n"
    assert len(sendgrid(sendgrid_key, [sg_event("spamreport", 1)], public_key=wrapped).events) == 1


@pytest.mark.parametrize(
    "timestamp", [str(int(NOW.timestamp()) - 301), str(int(NOW.timestamp()) + 301), "9" * 15]
)
def test_a_stale_sendgrid_request_is_refused(
    sendgrid_key: ec.EllipticCurvePrivateKey, timestamp: str
) -> None:
    reason = refused(
        401, lambda: sendgrid(sendgrid_key, [sg_event("spamreport", 1)], timestamp=timestamp)
    )
    assert reason == "SendGrid: the request was signed more than 300 seconds away from now"


@pytest.mark.parametrize("timestamp", ["1764503990.5", "9" * 16, "-1", ""])
def test_a_sendgrid_timestamp_that_is_not_seconds_is_refused(
    sendgrid_key: ec.EllipticCurvePrivateKey, timestamp: str
) -> None:
    reason = refused(401, lambda: sendgrid(sendgrid_key, [], timestamp=timestamp))
    assert reason == "SendGrid: the timestamp is not a number of seconds"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[{]", "SendGrid: the body is not JSON in UTF-8"),
        (b'{"event": "bounce"}', "SendGrid: the body is not a JSON array of events"),
        (b"[1]", "SendGrid: event 0: it is missing or not a JSON object"),
        (b'[{"email": "a@b.c"}]', "SendGrid: event 0: event is missing or not a string"),
        (
            b'[{"event": "deferred"}, {"event": "spamreport", "email": "a@b.c"}]',
            "SendGrid: event 1: sg_event_id is missing or not a string",
        ),
        (
            b'[{"event": "bounce", "type": 5, "email": "a@b.c", "sg_event_id": "x"}]',
            "SendGrid: event 0: type is not a string",
        ),
    ],
)
def test_malformed_sendgrid_batches_are_refused(
    sendgrid_key: ec.EllipticCurvePrivateKey, body: bytes, reason: str
) -> None:
    assert refused(400, lambda: sendgrid(sendgrid_key, body)) == reason


def test_an_oversized_sendgrid_body_is_refused_before_its_signature_is_checked(
    sendgrid_key: ec.EllipticCurvePrivateKey,
) -> None:
    reason = refused(
        413,
        lambda: read_sendgrid(
            OVERSIZED, None, None, public_key=verification_key(sendgrid_key), now=NOW
        ),
    )
    assert reason == "SendGrid: the body is over 1000000 bytes"


def test_a_refusal_is_a_feedpub_error_with_its_reason_as_message() -> None:
    error = WebhookRefused(409, "Mailgun: this signature token was used before")
    assert isinstance(error, FeedpubError)
    assert str(error) == error.reason


# Whatever arrives -----------------------------------------------------------------

# JSON built from the names and values the readers look for, so that hypothesis
# reaches past the first check into every branch of the parsing.
WORDS = st.sampled_from(
    [
        *(
            "Bounce Complaint Permanent Transient SpamComplaint SubscriptionChange HardBounce "
            "ManualSuppression failed permanent temporary complained unsubscribed bounce "
            "blocked dropped spamreport unsubscribe a@b.c "
        ).split(),
        "Bounced Address",
        "",
    ]
)
KEYS = st.sampled_from(
    (
        "notificationType eventType bounce complaint bounceType bounceSubType "
        "bouncedRecipients complainedRecipients emailAddress diagnosticCode feedbackId complaintFeedbackType "
        "RecordType Type ID MessageID Email Recipient "
        "Details SuppressSending SuppressionReason event severity recipient "
        "id reason delivery-status description message email "
        "type sg_event_id "
    ).split()
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | WORDS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(KEYS | st.text(max_size=4), children, max_size=6)
    ),
    max_leaves=30,
)


def outcome(call: Callable[[], Accepted]) -> Accepted | None:
    """The reader's answer, None when it refused; anything else raised fails the test."""
    try:
        accepted = call()
    except WebhookRefused as refusal:
        assert 400 <= refusal.status < 500
        assert "\n" not in refusal.reason
        return None
    for event in accepted.events:
        assert event.address == event.address.lower() and event.address
        assert "\n" not in event.detail
    return accepted


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=200) | JSON.map(lambda v: json.dumps(v).encode()))
def test_any_body_is_read_or_refused_never_raised(
    body: bytes,
    sendgrid_key: ec.EllipticCurvePrivateKey,
    host: CertificateHost,
) -> None:
    outcome(lambda: ses(body, host))
    outcome(lambda: postmark(body, None))
    outcome(lambda: mailgun(body))
    outcome(
        lambda: read_sendgrid(body, None, STAMP, public_key=verification_key(sendgrid_key), now=NOW)
    )


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=JSON)
def test_any_signed_content_is_read_or_refused_never_raised(
    content: object,
    sns_key: rsa.RSAPrivateKey,
    sendgrid_key: ec.EllipticCurvePrivateKey,
    host: CertificateHost,
) -> None:
    text = json.dumps(content)
    outcome(lambda: ses(sns_sign(sns_key, notification(text)), host))
    outcome(lambda: postmark(text.encode()))
    outcome(lambda: mailgun(mailgun_body(content)))
    outcome(lambda: sendgrid(sendgrid_key, text.encode()))
