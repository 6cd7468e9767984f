"""Returned mail, read: bounces, delay notices and complaints, and the VERP token of
the envelope sender each message left with.

The only module that imports flufl.bounce. Everything here is a pure function of its
arguments: the mailbox that holds the messages and the ledger that counts them are
at the edges. Readings, in the order they are tried:

1. an ARF feedback report (RFC 5965): a complaint;
2. a DSN (RFC 3464): per recipient, its Action and its enhanced status code
   (RFC 3463, the same table as ``smtpstatus.smtp_verdict``);
3. flufl.bounce's detectors, for the many bounces that are not DSNs (qmail, old
   Exchange, Yahoo, ...): its permanent failures are hard bounces, its temporary
   ones are delay warnings.

A ``hard``, ``soft`` or ``complaint`` reading always names someone: a recipient, a
VERP token, or both. A message that names no one is ``ignored``, with a reason.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser, HeaderParser
from email.policy import compat32
from email.utils import getaddresses, parseaddr
from typing import Literal

from flufl.bounce import all_failures

from feedpub.smtpstatus import replies, status_words, verdict_of
from feedpub.verp import token_of

Kind = Literal["hard", "soft", "complaint", "ignored"]

# flufl.bounce's heuristic detectors take about a second a megabyte; what a bounce
# says comes first and the returned message after it, so they read this much.
HEURISTIC_BYTES = 256 * 1024
# Of the text parts, this much is searched for an enhanced status code.
STATUS_TEXT_BYTES = 64 * 1024

_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.]*\d)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# Feedback types (RFC 5965, RFC 6591) that are not a person's complaint.
_NOT_COMPLAINTS = {
    "not-spam": "a not-spam report, which is no complaint",
    "auth-failure": "an authentication failure report (RFC 6591), which is no complaint",
}
_BOUNCE_SENDERS = ("mailer-daemon", "postmaster")
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery|not delivered|failure|failed|returned|bounce|rejected", re.I
)
_AUTO_REPLY_SUBJECT = re.compile(r"^\s*(auto:|automatic reply|out of (the )?office)", re.I)


@dataclass(frozen=True)
class Reading:
    """What one returned message says.

    ``kind``: ``hard`` (the address is gone), ``soft`` (it failed for now: a full
    mailbox, a delivery that ran out of retries), ``complaint`` (someone reported
    the message as spam), or ``ignored`` (auto-replies, delay notices, policy
    refusals, non-bounces, and messages that name no one). ``recipients``: the
    lower-cased addresses it names; ``token``: the VERP token of the address it was
    sent back to; ``status``: the enhanced status code (``5.1.1``) when it gives
    one; ``reason``: one line for a person; ``key``: the same for the same message
    however often it is read (its Message-ID, else a hash of its bytes).
    """

    kind: Kind
    recipients: tuple[str, ...]
    token: str | None
    status: str | None
    reason: str
    key: str


def read_report(data: bytes, template: str | None) -> Reading:
    """Read one returned message. ``template`` is the VERP address template the
    messages were sent with (``newsletter.bounce_address``), None without VERP.

    Never raises on what ``data`` holds: malformed MIME, binary or huge input
    (the caller limits the size), non-UTF-8 headers. A message that cannot be made
    out at all is ``ignored`` with a reason saying why.
    """
    key = _hash_key(data)
    try:
        message = BytesParser(policy=compat32).parsebytes(data)
        key = _key(message, data)
        return _read(message, data, template, key)
    except Exception as exc:  # hostile input must not stop a mailbox from being read
        return Reading("ignored", (), None, None, _line(f"unreadable message: {_error(exc)}"), key)


def _read(message: Message, data: bytes, template: str | None, key: str) -> Reading:
    parts = list(_own_parts(message))
    embedded = list(_embedded_headers(parts))
    token = _token(template, _outer_addresses(message), embedded)
    complaint = _read_feedback(parts, embedded, template, token, key)
    if complaint is not None:
        return complaint
    dsn = _read_dsn(parts, token, key)
    if dsn is not None and (dsn.recipients or dsn.token):
        return dsn
    # A DSN that names no one may still name its recipient in its text.
    heuristic = _read_heuristic(message, parts, data, token, key)
    if dsn is not None and not (heuristic.recipients or heuristic.token):
        return dsn
    return heuristic


# --- the parts of a message -------------------------------------------------------


def _own_parts(message: Message) -> Iterator[Message]:
    """The message and its parts, depth first; a message it carries (message/*) is
    yielded but not entered."""
    stack = [message]
    while stack:
        part = stack.pop()
        yield part
        if part.get_content_maintype() != "message" and part.is_multipart():
            payload = part.get_payload()
            if isinstance(payload, list):
                stack.extend(p for p in reversed(payload) if isinstance(p, Message))


def _inner(part: Message) -> Message | None:
    """The message a message/* part carries, or its text parsed as headers."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return next((p for p in payload if isinstance(p, Message)), None)
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        return None
    return BytesHeaderParser(policy=compat32).parsebytes(raw)


def _embedded_headers(parts: Iterable[Message]) -> Iterator[Message]:
    """The headers of the returned (or reported) original message."""
    for part in parts:
        if part.get_content_type() in (
            "message/rfc822",
            "message/global",
            "text/rfc822-headers",
            "message/global-headers",
        ):
            inner = _inner(part)
            if inner is not None:
                yield inner


def _header(message: Message, name: str) -> str:
    """One header as text ("" when absent); undecodable bytes become U+FFFD."""
    value = message.get(name)
    return "" if value is None else str(value)


def _headers(message: Message, name: str) -> list[str]:
    return [str(value) for value in message.get_all(name) or []]


def _text(parts: Iterable[Message], limit: int) -> str:
    """The beginning of the text parts, decoded leniently."""
    chunks: list[str] = []
    left = limit
    for part in parts:
        if left <= 0:
            break
        if part.get_content_maintype() != "text" or part.is_multipart():
            continue
        raw = part.get_payload(decode=True)
        if isinstance(raw, bytes):
            chunks.append(raw[:left].decode("utf-8", "replace"))
            left -= len(raw)
    return "\n".join(chunks)


# --- addresses and tokens ---------------------------------------------------------


def _address(text: str) -> str | None:
    """A lower-cased address, or None when ``text`` holds no usable one."""
    address = parseaddr(text.strip())[1].strip().strip("<>")
    local, at, domain = address.rpartition("@")
    if not (at and local and domain) or len(address) > 254:
        return None
    if any(c.isspace() or c == "\ufffd" or c in "<>@" for c in local.strip('"') + domain):
        return None
    return address.lower()


def _outer_addresses(message: Message) -> list[str]:
    """Where the message itself was delivered to: a VERP address, if it was one."""
    found: list[str] = []
    for name in ("Delivered-To", "X-Original-To", "Envelope-To", "To"):
        found.extend(address for _, address in getaddresses(_headers(message, name)))
    return found


def _token(template: str | None, outer: Iterable[str], embedded: Iterable[Message]) -> str | None:
    """The VERP token of the first address that has one: where the message was
    delivered, then the envelope sender of the message it returns."""
    if template is None:
        return None
    candidates = list(outer)
    for headers in embedded:
        for name in ("Return-Path", "X-Envelope-From", "Original-Mail-From"):
            candidates.extend(_headers(headers, name))
    for candidate in candidates:
        token = token_of(template, candidate)
        if token is not None:
            return token
    return None


def _who(recipients: tuple[str, ...], token: str | None) -> str:
    if recipients:
        return ", ".join(recipients)
    if token is not None:
        return f"the subscriber with VERP token {token}"
    return "no one"


# --- ARF feedback reports (RFC 5965) ----------------------------------------------


def _read_feedback(
    parts: list[Message],
    embedded: list[Message],
    template: str | None,
    token: str | None,
    key: str,
) -> Reading | None:
    report = next((p for p in parts if p.get_content_type() == "message/feedback-report"), None)
    if report is None:
        return None
    fields = _inner(report) or Message()
    feedback_type = _header(fields, "Feedback-Type").strip().lower() or "abuse"
    if token is None:
        token = _token(template, (), [fields])
    recipients = _unique(
        _address(a) for value in _headers(fields, "Original-Rcpt-To") for a in value.split(",")
    )
    if not recipients:
        recipients = _unique(
            _address(address)
            for headers in embedded
            for _, address in getaddresses(_headers(headers, "To"))
        )
    source = _header(fields, "User-Agent") or _header(fields, "Reporting-MTA") or "unnamed"
    if feedback_type in _NOT_COMPLAINTS:
        return Reading(
            "ignored",
            recipients,
            token,
            None,
            _line(f"{_NOT_COMPLAINTS[feedback_type]} ({source}) about {_who(recipients, token)}"),
            key,
        )
    if not recipients and token is None:
        return Reading(
            "ignored",
            (),
            None,
            None,
            _line(
                f"a complaint ({feedback_type} report from {source}) that names no recipient "
                "and was not sent back to a VERP address, so it matches no one"
            ),
            key,
        )
    return Reading(
        "complaint",
        recipients,
        token,
        None,
        _line(
            f"{_who(recipients, token)} reported the message as spam "
            f"({feedback_type} report from {source})"
        ),
        key,
    )


# --- DSNs (RFC 3464) --------------------------------------------------------------


_Fate = Literal["hard", "soft", "policy", "delayed", "delivered"]


@dataclass(frozen=True)
class _Outcome:
    """One recipient block of a DSN."""

    verdict: _Fate
    address: str | None
    status: str | None
    diagnostic: str


_RANK = {"hard": 0, "soft": 1, "policy": 2, "delayed": 3, "delivered": 4}


def _status_blocks(part: Message) -> list[Message]:
    """The field blocks of a delivery-status part, however the parser left them."""
    payload = part.get_payload()
    if not isinstance(payload, list):
        raw = part.get_payload(decode=True)
        return _parse_blocks(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else "")
    blocks = [p for p in payload if isinstance(p, Message)]
    if part.get_content_type() == "message/delivery-status":
        return blocks
    # message/global-delivery-status is parsed as a message: its first block as
    # the headers, the other blocks as the body.
    bodies = [b.get_payload() for b in blocks]
    return blocks + [m for body in bodies if isinstance(body, str) for m in _parse_blocks(body)]


def _parse_blocks(text: str) -> list[Message]:
    """Field blocks separated by blank lines."""
    parser = HeaderParser(policy=compat32)
    return [parser.parsestr(b) for b in re.split(r"\r?\n[ \t]*\r?\n", text) if b.strip()]


def _recipient(value: str) -> str | None:
    """The address of a DSN recipient field: ``rfc822; ada@example.net``."""
    kind, semicolon, rest = value.partition(";")
    if not semicolon:
        return _address(value)
    if kind.strip().lower() not in ("rfc822", "utf-8"):
        return None
    return _address(rest)


def _outcome(block: Message) -> _Outcome | None:
    action = _header(block, "Action").strip().lower()
    if not action:
        return None
    address = _recipient(_header(block, "Original-Recipient")) or _recipient(
        _header(block, "Final-Recipient")
    )
    found = _STATUS.search(_header(block, "Status"))
    status = ".".join(found.groups()) if found else None
    diagnostic = _header(block, "Diagnostic-Code")
    _, semicolon, after = diagnostic.partition(";")
    diagnostic = after if semicolon else diagnostic
    said = replies(diagnostic)[:1]
    code = said[0][0] if said else None
    # A generic status (5.0.0) gives way to the specific one the server wrote.
    if said and (status is None or (status.endswith(".0.0") and said[0][1][0] == status[0])):
        status = said[0][1]
    verdict: _Fate
    if action.startswith(("fail", "error")):
        verdict = verdict_of(code, status) or "hard"
    elif action.startswith("delay"):
        verdict = "delayed"
    else:
        verdict = "delivered"
    return _Outcome(verdict, address, status, " ".join(diagnostic.split()))


def _read_dsn(parts: list[Message], token: str | None, key: str) -> Reading | None:
    outcomes = [
        outcome
        for part in parts
        if part.get_content_type() in ("message/delivery-status", "message/global-delivery-status")
        for block in _status_blocks(part)
        if (outcome := _outcome(block)) is not None
    ]
    if not outcomes:
        return None
    best = min(outcomes, key=lambda o: _RANK[o.verdict])
    alike = [o for o in outcomes if o.verdict == best.verdict]
    recipients = _unique(o.address for o in alike)
    if not recipients and token is None:
        return Reading(
            "ignored",
            (),
            None,
            best.status,
            _line(
                f"a delivery report ({best.verdict}) that names no recipient and was not "
                "sent back to a VERP address, so it matches no one"
            ),
            key,
        )
    who = _who(recipients, token)
    status = f" ({status_words(best.status)})" if best.status else ""
    said = f"; the server said: {best.diagnostic}" if best.diagnostic else ""
    kind: Kind
    if best.verdict == "hard":
        kind, what = "hard", f"mail to {who} failed permanently{status}"
    elif best.verdict == "soft":
        kind, what = "soft", f"mail to {who} failed for now{status}, a soft bounce"
    elif best.verdict == "policy":
        kind = "ignored"
        what = (
            f"the server of {who} refused the message on policy grounds{status}; "
            "a policy refusal does not mark the address"
        )
    elif best.verdict == "delayed":
        kind = "ignored"
        what = f"delivery to {who} is delayed{status} and still being tried; a delay is no bounce"
        said = ""
    else:
        kind, what, said = "ignored", f"a delivery report for {who} that reports no failure", ""
    return Reading(kind, recipients, token, best.status, _line(what + said), key)


# --- everything else: flufl.bounce's detectors ------------------------------------


def _read_heuristic(
    message: Message, parts: list[Message], data: bytes, token: str | None, key: str
) -> Reading:
    if len(data) > HEURISTIC_BYTES:
        message = BytesParser(policy=compat32).parsebytes(data[:HEURISTIC_BYTES])
    # flufl.bounce logs each detector it runs, and a failing detector's traceback
    # before re-raising; the failure reaches the reader below, as a sentence.
    logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)
    try:
        temporary, permanent = all_failures(message)
    except Exception as exc:  # a detector's bug must not stop the reading
        return Reading(
            "ignored",
            (),
            token,
            None,
            _line(f"the bounce detectors failed on this message: {_error(exc)}"),
            key,
        )
    failed = _unique(_address(a.decode("ascii", "replace")) for a in sorted(permanent))
    delayed = _unique(_address(a.decode("ascii", "replace")) for a in sorted(temporary))
    found = replies(_text(parts, STATUS_TEXT_BYTES))
    # The permanent code if the text gives one, else the temporary one it gave up on.
    code, status = next((r for r in found if r[1][0] == "5"), None) or next(
        iter(found), (None, None)
    )
    if failed:
        return _heuristic_failure(failed, token, code, status, key)
    if delayed:
        return Reading(
            "ignored",
            delayed,
            token,
            None,
            _line(
                f"a warning that delivery to {', '.join(delayed)} is delayed; a delay is no bounce"
            ),
            key,
        )
    if token is not None and _looks_like_bounce(message):
        return Reading(
            "soft",
            (),
            token,
            status,
            _line(
                f"a bounce in a form no detector knows, sent back to the VERP address of "
                f"{_who((), token)}; it counts as a soft bounce"
            ),
            key,
        )
    if _is_auto_reply(message):
        return Reading(
            "ignored", (), token, None, "an automatic reply (such as out of office), no bounce", key
        )
    return Reading(
        "ignored", (), token, None, "no bounce, delay notice or complaint was found in it", key
    )


def _heuristic_failure(
    failed: tuple[str, ...], token: str | None, code: int | None, status: str | None, key: str
) -> Reading:
    who = ", ".join(failed)
    verdict = verdict_of(code, status) or "hard"
    words = f" ({status_words(status)})" if status else ""
    if verdict == "policy":
        return Reading(
            "ignored",
            failed,
            token,
            status,
            _line(
                f"the server of {who} refused the message on policy grounds{words}; "
                "a policy refusal does not mark the address"
            ),
            key,
        )
    if verdict == "soft":
        return Reading(
            "soft", failed, token, status, _line(f"mail to {who} failed for now{words}"), key
        )
    return Reading(
        "hard", failed, token, status, _line(f"mail to {who} failed permanently{words}"), key
    )


def _looks_like_bounce(message: Message) -> bool:
    sender = parseaddr(_header(message, "From"))[1].lower()
    return (
        _header(message, "Return-Path").strip() == "<>"
        or sender.partition("@")[0] in _BOUNCE_SENDERS
        or message.get_content_type() == "multipart/report"
        or bool(_BOUNCE_SUBJECT.search(_header(message, "Subject")))
    )


def _is_auto_reply(message: Message) -> bool:
    """RFC 3834's Auto-Submitted, and the headers and subjects older responders use."""
    submitted = _header(message, "Auto-Submitted").strip().lower()
    return (
        (submitted != "" and not submitted.startswith("no"))
        or message.get("X-Autoreply") is not None
        or message.get("X-Autorespond") is not None
        or _header(message, "Precedence").strip().lower() == "auto_reply"
        or bool(_AUTO_REPLY_SUBJECT.match(_header(message, "Subject")))
    )


# --- small helpers ----------------------------------------------------------------


def _unique(addresses: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(a for a in addresses if a))


def _hash_key(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _key(message: Message, data: bytes) -> str:
    message_id = " ".join(_header(message, "Message-ID").split())
    if message_id and len(message_id) <= 250 and "\ufffd" not in message_id:
        return message_id
    return _hash_key(data)


def _line(text: str, limit: int = 400) -> str:
    """One printable line of at most ``limit`` characters."""
    text = text.encode("utf-8", "replace").decode("utf-8", "replace")
    text = " ".join(_CONTROL.sub(" ", text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
