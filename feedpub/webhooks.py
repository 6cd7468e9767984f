"""Webhooks from the services that send the mail: each provider's signature is
checked here, and only here, and its events are read into ``ListEvent``s.

Pure: the clock, the SNS certificate fetch and the memory of Mailgun tokens are
passed in, so the web layer owns the network and the store owns what has been seen.
Each reader refuses a body over ``MAX_WEBHOOK_BYTES`` before reading it, and
anything unsigned, wrongly signed, stale, replayed or malformed with
``WebhookRefused``; a refused request returns nothing, so it changes nothing.

Events are returned as the provider sent them, repeats included: a retried request
carries the same event ids, and dropping those is the store's job. What an event
does to a subscriber (a hard bounce, soft bounces counted to a limit, a complaint
or an unsubscribe) is the caller's policy, not decided here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from feedpub.errors import WebhookRefused
from feedpub.model import ListEvent
from feedpub.model import ListEventKind as Kind

# Larger bodies are refused (413) before anything reads them; an SNS message is at
# most 256 KiB.
MAX_WEBHOOK_BYTES = 1_000_000
# How far a signed time may be from now, either way. SNS keeps a message's
# Timestamp across its retries, which a delivery policy spreads over up to an hour.
SNS_WINDOW = timedelta(hours=1)
SIGNATURE_WINDOW = timedelta(minutes=5)
# A detail longer than this is cut: it is one line for a log or a subscriber's record.
MAX_DETAIL_CHARS = 300

# sns.<region>.amazonaws.com(.cn), the region in AWS's form (us-east-1,
# cn-north-1, us-gov-west-1). A looser label would also match hosts AWS lends to
# its customers, such as sns.s3.amazonaws.com, an S3 bucket named "sns".
_SNS_HOST = re.compile(r"sns\.[a-z]{2}(?:-[a-z]+)+-[0-9]+\.amazonaws\.com(?:\.cn)?")
_CONFIRMATION_FIELDS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
# The fields of each message type that SNS signs, in the order it signs them.
_SNS_SIGNED_FIELDS: Mapping[str, tuple[str, ...]] = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": _CONFIRMATION_FIELDS,
    "UnsubscribeConfirmation": _CONFIRMATION_FIELDS,
}
_SNS_HASHES: Mapping[str, Callable[[], hashes.HashAlgorithm]] = {
    "1": hashes.SHA1,
    "2": hashes.SHA256,
}
_SES_BOUNCES: Mapping[str, Kind] = {
    "Permanent": "hard",
    "Transient": "soft",
    "Undetermined": "soft",
}
_POSTMARK_BOUNCES: Mapping[str, Kind] = {
    "HardBounce": "hard",
    "BadEmailAddress": "hard",
    "SoftBounce": "soft",
    "Transient": "soft",
    "DnsError": "soft",
    "Blocked": "soft",
    "SpamComplaint": "complaint",
    "Unsubscribe": "unsubscribe",
}
_POSTMARK_SUPPRESSIONS: Mapping[str, Kind] = {
    "HardBounce": "hard",
    "SpamComplaint": "complaint",
    "ManualSuppression": "unsubscribe",
}
_MAILGUN_FAILURES: Mapping[str, Kind] = {"permanent": "hard", "temporary": "soft"}
_MAILGUN_EVENTS: Mapping[str, Kind] = {"complained": "complaint", "unsubscribed": "unsubscribe"}
_SENDGRID_BOUNCES: Mapping[str | None, Kind] = {None: "hard", "bounce": "hard", "blocked": "soft"}
_SENDGRID_DROPS = frozenset({"Bounced Address", "Invalid"})
_SENDGRID_EVENTS: Mapping[str, Kind] = {
    "spamreport": "complaint",
    "unsubscribe": "unsubscribe",
    "group_unsubscribe": "unsubscribe",
}


@dataclass(frozen=True, slots=True)
class Accepted:
    """A request whose signature holds: its events, and for an SNS subscription,
    the address to GET to confirm it."""

    events: tuple[ListEvent, ...]
    confirm_url: str | None = None


def read_ses(
    body: bytes,
    *,
    fetch_certificate: Callable[[str], bytes],
    now: datetime,
    allowed_topics: Collection[str],
    window: timedelta = SNS_WINDOW,
) -> Accepted:
    """Read an Amazon SNS message carrying SES events.

    Everything that needs no network is checked first: the SigningCertURL must be
    ``https://sns.<region>.amazonaws.com[.cn]/….pem``, the TopicArn one of
    ``allowed_topics`` (an empty collection refuses every topic: any AWS account can
    sign through SNS, so a topic that is not ours proves nothing), the Timestamp
    within ``window`` of ``now``. Only then is ``fetch_certificate(url)`` called for
    the PEM; what it raises reaches the caller unchanged. The certificate must be
    valid at ``now``, and sign the message (SignatureVersion 1: SHA1withRSA,
    2: SHA256withRSA).

    A SubscriptionConfirmation gives no events and a ``confirm_url`` (its
    SubscribeURL, itself on an SNS host); an UnsubscribeConfirmation gives nothing.
    A Notification's Message is an SES event (``eventType`` or, for identity
    notifications, ``notificationType``):

    ======================================  ==========================
    SES event                               kind
    ======================================  ==========================
    Bounce, bounceType Permanent            hard
    Bounce, bounceType Transient            soft
    Bounce, bounceType Undetermined         soft
    Complaint                               complaint
    anything else (Delivery, Send, …)       ignored
    ======================================  ==========================

    One event per bounced or complaining recipient, each with the id
    ``<feedbackId>:<address>``, since one SES feedback names several. A Message that
    is not a JSON object (such as a plain-text notice sent to the topic) is ignored.
    """
    _check_size(body, "SES")
    message = _object(_parse_json(body, "SES"), "SES: the body")
    kind = _text(message, "Type", "SES: ")
    fields = _SNS_SIGNED_FIELDS.get(kind)
    if fields is None:
        raise WebhookRefused(400, f"SES: the message Type {kind!r} is not one SNS sends")
    signed = {name: _signed_field(message, name) for name in fields}
    signature = message.get("Signature")
    version = message.get("SignatureVersion")
    cert_url = message.get("SigningCertURL")
    if not isinstance(signature, str) or not isinstance(cert_url, str):
        raise WebhookRefused(401, "SES: the message has no Signature or SigningCertURL")
    algorithm = _SNS_HASHES.get(version) if isinstance(version, str) else None
    if algorithm is None:
        raise WebhookRefused(401, "SES: the SignatureVersion is neither 1 nor 2")
    if not _on_sns_host(cert_url, pem=True):
        raise WebhookRefused(
            403, "SES: the SigningCertURL is not an https://sns.<region>.amazonaws.com/ .pem file"
        )
    confirm_url = signed["SubscribeURL"] if kind == "SubscriptionConfirmation" else None
    if confirm_url is not None and not _on_sns_host(confirm_url, pem=False):
        raise WebhookRefused(403, "SES: the SubscribeURL is not on an SNS host")
    if not allowed_topics:
        raise WebhookRefused(403, "SES: no SNS topics are configured")
    if signed["TopicArn"] not in allowed_topics:
        raise WebhookRefused(403, "SES: the TopicArn is not one of the configured topics")
    _check_fresh(_sns_time(_text(message, "Timestamp", "SES: ")), now, window, "SES")
    key = _sns_signing_key(fetch_certificate(cert_url), now)
    string_to_sign = "".join(
        f"{name}\n{value}\n" for name, value in signed.items() if value is not None
    )
    try:
        key.verify(
            base64.b64decode(signature, validate=True),
            _utf8(string_to_sign),
            padding.PKCS1v15(),
            algorithm(),
        )
    except (ValueError, InvalidSignature):
        raise WebhookRefused(401, "SES: the Signature does not match the message") from None
    if kind != "Notification":
        return Accepted((), confirm_url)
    return Accepted(_ses_events(_text(message, "Message", "SES: ")))


def read_postmark(body: bytes, authorization: str | None, *, user: str, password: str) -> Accepted:
    """Read a Postmark webhook, sent with the HTTP Basic credentials the user set.

    Both the user and the password are compared in constant time; with either
    unset, every request is refused. One record a request:

    ==================================================  ==========================
    Postmark record                                     kind
    ==================================================  ==========================
    Bounce, Type HardBounce or BadEmailAddress          hard
    Bounce, Type SoftBounce, Transient, DnsError,
    Blocked                                             soft
    Bounce, Type SpamComplaint; SpamComplaint           complaint
    Bounce, Type Unsubscribe                            unsubscribe
    SubscriptionChange, SuppressSending true, reason
    ManualSuppression / HardBounce / SpamComplaint      unsubscribe / hard / complaint
    other bounce types (AutoResponder, DMARCPolicy,
    Unknown, …), SubscriptionChange that reactivates,
    Delivery, Open, Click                               ignored
    ==================================================  ==========================

    The address is the record's Email (Recipient for a SubscriptionChange); the id
    is its ID, or ``<MessageID>:<RecordType>`` for records without one.
    """
    _check_size(body, "Postmark")
    _check_basic_auth(authorization, user, password)
    record = _object(_parse_json(body, "Postmark"), "Postmark: the body")
    record_type = _text(record, "RecordType", "Postmark: ")
    address_key = "Email"
    kind: Kind | None
    if record_type == "Bounce":
        bounce_type = _text(record, "Type", "Postmark: ")
        kind = _POSTMARK_BOUNCES.get(bounce_type)
        detail = _detail(f"Postmark {bounce_type}", _optional_text(record, "Details", "Postmark: "))
    elif record_type == "SpamComplaint":
        kind, detail = "complaint", "Postmark SpamComplaint"
    elif record_type == "SubscriptionChange":
        suppress = record.get("SuppressSending")
        if not isinstance(suppress, bool):
            raise WebhookRefused(400, "Postmark: SuppressSending is missing or not true or false")
        reason = _optional_text(record, "SuppressionReason", "Postmark: ")
        kind = _POSTMARK_SUPPRESSIONS.get(reason or "") if suppress else None
        detail = _detail("Postmark suppression", reason)
        address_key = "Recipient"
    else:
        return Accepted(())
    if kind is None:
        return Accepted(())
    record_id = record.get("ID")
    if isinstance(record_id, str | int) and not isinstance(record_id, bool) and record_id != "":
        event_id = str(record_id)
    else:
        event_id = f"{_text(record, 'MessageID', 'Postmark: ')}:{record_type}"
    address = _address(record, address_key, "Postmark: ")
    return Accepted((ListEvent("postmark", event_id, address, kind, detail),))


def read_mailgun(
    body: bytes,
    *,
    signing_key: str,
    now: datetime,
    remember_token: Callable[[str], bool],
    window: timedelta = SIGNATURE_WINDOW,
) -> Accepted:
    """Read a Mailgun webhook: ``{"signature": {...}, "event-data": {...}}``.

    The signature is the hex HMAC-SHA256 of timestamp + token under the account's
    HTTP webhook signing key, compared in constant time; the timestamp must be
    within ``window`` of ``now``. ``remember_token(token)`` is called last, once
    everything else holds, and returns False for a token it has seen: that request
    is a replay. It need only remember tokens for ``window`` either side of their
    timestamp, since older ones are refused by their time.

    ==============================================  ==========================
    event-data.event                                kind
    ==============================================  ==========================
    failed, severity permanent                      hard
    failed, severity temporary                      soft
    complained                                      complaint
    unsubscribed                                    unsubscribe
    anything else (delivered, opened, rejected, …)  ignored
    ==============================================  ==========================

    The address is event-data.recipient, the id event-data.id.
    """
    _check_size(body, "Mailgun")
    if not signing_key:
        raise WebhookRefused(401, "Mailgun: no webhook signing key is configured")
    document = _object(_parse_json(body, "Mailgun"), "Mailgun: the body")
    signature = document.get("signature")
    if not isinstance(signature, dict):
        raise WebhookRefused(401, "Mailgun: the body has no signature")
    timestamp, token, given = (signature.get(key) for key in ("timestamp", "token", "signature"))
    if not isinstance(timestamp, str) or not isinstance(token, str) or not isinstance(given, str):
        raise WebhookRefused(401, "Mailgun: the signature lacks its timestamp, token or signature")
    expected = hmac.new(_utf8(signing_key), _utf8(timestamp + token), hashlib.sha256)
    if not hmac.compare_digest(_utf8(given), expected.hexdigest().encode("ascii")):
        raise WebhookRefused(401, "Mailgun: the signature does not match the signing key")
    _check_fresh(_seconds(timestamp, "Mailgun"), now, window, "Mailgun")
    events = _mailgun_events(_object(document.get("event-data"), "Mailgun: event-data"))
    if not remember_token(token):
        raise WebhookRefused(409, "Mailgun: this signature token was used before")
    return Accepted(events)


def read_sendgrid(
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    *,
    public_key: str,
    now: datetime,
    window: timedelta = SIGNATURE_WINDOW,
) -> Accepted:
    """Read a SendGrid signed event webhook.

    ``signature`` and ``timestamp`` are the X-Twilio-Email-Event-Webhook-Signature
    and -Timestamp headers; the signature is a base64 DER ECDSA-SHA256 signature of
    the timestamp followed by the raw body, checked with ``public_key``, the base64
    DER P-256 verification key from SendGrid's settings (a key that cannot be read
    refuses every request). The timestamp must be within ``window`` of ``now``.

    =====================================================  ==========================
    event                                                  kind
    =====================================================  ==========================
    bounce, type bounce (or no type)                       hard
    bounce, type blocked                                   soft
    dropped, reason "Bounced Address" or "Invalid"         hard
    spamreport                                             complaint
    unsubscribe, group_unsubscribe                         unsubscribe
    anything else (other drops, deferred, delivered, …)    ignored
    =====================================================  ==========================

    The body is a JSON array of events; the address is each event's email, the id
    its sg_event_id.
    """
    _check_size(body, "SendGrid")
    key = _sendgrid_key(public_key)
    if signature is None or timestamp is None:
        raise WebhookRefused(401, "SendGrid: the request has no signature or timestamp header")
    try:
        key.verify(
            base64.b64decode(signature, validate=True),
            _utf8(timestamp) + body,
            ec.ECDSA(hashes.SHA256()),
        )
    except (ValueError, InvalidSignature):
        raise WebhookRefused(401, "SendGrid: the signature does not match the body") from None
    _check_fresh(_seconds(timestamp, "SendGrid"), now, window, "SendGrid")
    batch = _parse_json(body, "SendGrid")
    if not isinstance(batch, list):
        raise WebhookRefused(400, "SendGrid: the body is not a JSON array of events")
    events: list[ListEvent] = []
    kind: Kind | None
    for index, item in enumerate(batch):
        where = f"SendGrid: event {index}: "
        record = _object(item, where + "it")
        name = _text(record, "event", where)
        if name == "bounce":
            bounce_type = _optional_text(record, "type", where)
            kind = _SENDGRID_BOUNCES.get(bounce_type)
            reason = _optional_text(record, "reason", where)
            detail = _detail(f"SendGrid bounce ({bounce_type or 'bounce'})", reason)
        elif name == "dropped":
            reason = _optional_text(record, "reason", where)
            kind = "hard" if reason in _SENDGRID_DROPS else None
            detail = _detail("SendGrid dropped", reason)
        else:
            kind = _SENDGRID_EVENTS.get(name)
            detail = f"SendGrid {name}"
        if kind is None:
            continue
        event_id = _text(record, "sg_event_id", where)
        events.append(
            ListEvent("sendgrid", event_id, _address(record, "email", where), kind, detail)
        )
    return Accepted(tuple(events))


def _ses_events(message: str) -> tuple[ListEvent, ...]:
    try:
        event = json.loads(message)
    except (ValueError, RecursionError):
        return ()
    if not isinstance(event, dict):
        return ()
    name = event.get("eventType", event.get("notificationType"))
    if name == "Bounce":
        bounce = _object(event.get("bounce"), "SES: bounce")
        bounce_type = _text(bounce, "bounceType", "SES: bounce.")
        sub_type = _optional_text(bounce, "bounceSubType", "SES: bounce.")
        kind = _SES_BOUNCES.get(bounce_type)
        return _ses_recipients(
            bounce,
            "bouncedRecipients",
            kind,
            f"SES {bounce_type} bounce ({sub_type})" if sub_type else f"SES {bounce_type} bounce",
        )
    if name == "Complaint":
        complaint = _object(event.get("complaint"), "SES: complaint")
        feedback = _optional_text(complaint, "complaintFeedbackType", "SES: complaint.")
        return _ses_recipients(
            complaint,
            "complainedRecipients",
            "complaint",
            f"SES complaint ({feedback})" if feedback else "SES complaint",
        )
    return ()


def _ses_recipients(
    feedback: Mapping[str, object], key: str, kind: Kind | None, summary: str
) -> tuple[ListEvent, ...]:
    if kind is None:
        return ()
    where = f"SES: {key}"
    recipients = feedback.get(key)
    if not isinstance(recipients, list):
        raise WebhookRefused(400, f"{where} is missing or not a list")
    feedback_id = _text(feedback, "feedbackId", "SES: ")
    events = []
    for index, item in enumerate(recipients):
        recipient = _object(item, f"{where}[{index}]")
        address = _address(recipient, "emailAddress", f"{where}[{index}].")
        diagnostic = _optional_text(recipient, "diagnosticCode", f"{where}[{index}].")
        events.append(
            ListEvent(
                "ses", f"{feedback_id}:{address}", address, kind, _detail(summary, diagnostic)
            )
        )
    return tuple(events)


def _on_sns_host(url: str, *, pem: bool) -> bool:
    """Whether ``url`` is https on an SNS host, with no user, port or fragment,
    and (for a certificate) a .pem path and no query."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and _SNS_HOST.fullmatch(parts.netloc) is not None
        and not parts.fragment
        and (not pem or (parts.path.endswith(".pem") and not parts.query))
    )


def _sns_signing_key(pem: bytes, now: datetime) -> rsa.RSAPublicKey:
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise WebhookRefused(401, "SES: the signing certificate is not a PEM certificate") from None
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise WebhookRefused(401, "SES: the signing certificate is not valid now")
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise WebhookRefused(401, "SES: the signing certificate does not hold an RSA key")
    return key


def _sns_time(text: str) -> float:
    try:
        signed = datetime.fromisoformat(text)
    except ValueError:
        raise WebhookRefused(400, "SES: the Timestamp is not an ISO 8601 time") from None
    if signed.tzinfo is None:
        raise WebhookRefused(400, "SES: the Timestamp has no time zone")
    return signed.timestamp()


def _signed_field(message: Mapping[str, object], name: str) -> str | None:
    """A field SNS signs; only Subject may be absent (or null)."""
    if name == "Subject":
        return _optional_text(message, name, "SES: ")
    return _text(message, name, "SES: ")


def _mailgun_events(data: Mapping[str, object]) -> tuple[ListEvent, ...]:
    where = "Mailgun: event-data."
    name = _text(data, "event", where)
    if name == "failed":
        severity = _text(data, "severity", where)
        kind = _MAILGUN_FAILURES.get(severity)
        summary = f"Mailgun failed ({severity})"
    else:
        kind = _MAILGUN_EVENTS.get(name)
        summary = f"Mailgun {name}"
    if kind is None:
        return ()
    status = data.get("delivery-status")
    diagnostic = None
    if isinstance(status, dict):
        diagnostic = _optional_text(status, "description", where + "delivery-status.") or (
            _optional_text(status, "message", where + "delivery-status.")
        )
    reason = _optional_text(data, "reason", where)
    event_id = _text(data, "id", where)
    address = _address(data, "recipient", where)
    return (ListEvent("mailgun", event_id, address, kind, _detail(summary, reason, diagnostic)),)


def _sendgrid_key(public_key: str) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_der_public_key(
            base64.b64decode("".join(public_key.split()), validate=True)
        )
    except (ValueError, UnsupportedAlgorithm):
        key = None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise WebhookRefused(401, "SendGrid: the verification key is not a base64 P-256 key")
    return key


def _check_basic_auth(authorization: str | None, user: str, password: str) -> None:
    if not user or not password:
        raise WebhookRefused(401, "Postmark: no webhook user and password are configured")
    if authorization is None:
        raise WebhookRefused(401, "Postmark: the request has no credentials")
    scheme, _, encoded = authorization.strip().partition(" ")
    try:
        credentials = base64.b64decode(encoded.strip(), validate=True)
    except ValueError:
        credentials = b""
    given_user, colon, given_password = credentials.partition(b":")
    user_matches = hmac.compare_digest(given_user, _utf8(user))
    password_matches = hmac.compare_digest(given_password, _utf8(password))
    if scheme.lower() != "basic" or not colon or not (user_matches and password_matches):
        raise WebhookRefused(401, "Postmark: the user or password is wrong")


def _check_size(body: bytes, provider: str) -> None:
    if len(body) > MAX_WEBHOOK_BYTES:
        raise WebhookRefused(413, f"{provider}: the body is over {MAX_WEBHOOK_BYTES} bytes")


def _parse_json(body: bytes, provider: str) -> object:
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):
        raise WebhookRefused(400, f"{provider}: the body is not JSON in UTF-8") from None


def _check_fresh(signed: float, now: datetime, window: timedelta, provider: str) -> None:
    if abs(now.timestamp() - signed) > window.total_seconds():
        raise WebhookRefused(
            401,
            f"{provider}: the request was signed more than"
            f" {int(window.total_seconds())} seconds away from now",
        )


def _seconds(text: str, provider: str) -> int:
    if re.fullmatch(r"[0-9]{1,15}", text) is None:
        raise WebhookRefused(401, f"{provider}: the timestamp is not a number of seconds")
    return int(text)


def _object(value: object, what: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise WebhookRefused(400, f"{what} is missing or not a JSON object")
    return value


def _text(record: Mapping[str, object], key: str, where: str) -> str:
    value = record.get(key)
    if not isinstance(value, str):
        raise WebhookRefused(400, f"{where}{key} is missing or not a string")
    return value


def _optional_text(record: Mapping[str, object], key: str, where: str) -> str | None:
    value = record.get(key)
    if value is not None and not isinstance(value, str):
        raise WebhookRefused(400, f"{where}{key} is not a string")
    return value


def _address(record: Mapping[str, object], key: str, where: str) -> str:
    address = _text(record, key, where).strip().lower()
    if not address:
        raise WebhookRefused(400, f"{where}{key} is empty")
    return address


def _detail(summary: str, *parts: str | None) -> str:
    """One line: the summary and the parts given, whitespace folded, cut to length."""
    line = ": ".join(" ".join(part.split()) for part in (summary, *parts) if part)
    if len(line) > MAX_DETAIL_CHARS:
        return line[: MAX_DETAIL_CHARS - 1] + "…"
    return line


def _utf8(text: str) -> bytes:
    """UTF-8 bytes; a lone surrogate (JSON allows one) is kept, so it fails to match
    a signature instead of raising."""
    return text.encode("utf-8", "surrogatepass")
