"""SMTP replies and enhanced status codes (RFC 3463): what a refusal means for
the address, for the SMTP server's answers and for the DSNs it sends back."""

from __future__ import annotations

import re
from typing import Literal

Verdict = Literal["hard", "soft", "policy"]

# An enhanced status code of class 4 or 5, after the reply code if there is one:
# "550 5.1.1", "550-5.7.1", "#4.4.1".
_REPLY = re.compile(r"(?:(?<!\d)([45]\d\d)[ -])?(?<![\d.])([45])\.(\d{1,3})\.(\d{1,3})(?![\d.]*\d)")
_LEADING_STATUS = re.compile(r"\s*([245])\.(\d{1,3})\.(\d{1,3})(?!\S)")

# RFC 3463: the subject (second number) of an enhanced status code, and the details
# a reader most often meets.
_SUBJECTS = {
    "0": "other or undefined status",
    "1": "addressing status",
    "2": "mailbox status",
    "3": "mail system status",
    "4": "network and routing status",
    "5": "mail delivery protocol status",
    "6": "message content or media status",
    "7": "security or policy status",
}
_DETAILS = {
    "1.1": "no such mailbox",
    "1.2": "no such domain",
    "1.3": "bad mailbox address syntax",
    "1.6": "the mailbox has moved",
    "1.10": "the domain accepts no mail",
    "2.1": "mailbox disabled",
    "2.2": "mailbox full",
    "2.3": "message too big for the mailbox",
    "3.4": "message too big for the system",
    "4.4": "unable to route",
    "4.7": "delivery time expired",
    "7.1": "delivery not authorized, message refused",
}
_HARD_CODES = frozenset({550, 551, 553, 521, 556})


def smtp_verdict(code: int, message: str | bytes) -> Verdict | None:
    """What an SMTP reply to one recipient (smtplib's refused-recipient tuple) means
    for the address; None when it is no refusal (2xx, 3xx).

    An enhanced status code (RFC 3463) at the start of the reply decides, when its
    class matches the reply code's:

    =======================  =======  ================================================
    status                   verdict  why
    =======================  =======  ================================================
    4.x.x                    soft     a temporary failure (452 4.2.2: no room for now)
    5.0.x, 5.1.x (5.1.10)    hard     no such user, no such domain, no mail at all
    5.7.x                    policy   refused on policy grounds (spam filter, DMARC):
                                      says nothing about the address
    5.y.0 with 550/551/553   hard     a generic detail under a no-such-user reply
                                      (sendmail's "553 5.3.0 Addressee unknown")
    other 5.2.x to 5.6.x     soft     the mailbox is full or disabled, or the cause is
                                      the message or the path, not the address
    =======================  =======  ================================================

    Without one, the reply code decides: 550, 551, 553, 521 and 556 are hard; any
    other 5xx (552 storage, a bare 554) and every 4xx are soft.
    """
    if not 400 <= code < 600:
        return None
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    leading = _LEADING_STATUS.match(text)
    status = ".".join(leading.groups()) if leading else None
    if status is not None and status[0] != str(code // 100):
        status = None
    return verdict_of(code, status)


def verdict_of(code: int | None, status: str | None) -> Verdict | None:
    """The table in ``smtp_verdict``'s docstring, for a reply code, an enhanced
    status code, or both."""
    if status is None:
        if code is None or not 400 <= code < 600:
            return None
        return "hard" if code in _HARD_CODES else "soft"
    klass, subject, detail = status.split(".")
    if klass == "2":
        return None
    if klass == "4":
        return "soft"
    if subject == "7":
        return "policy"
    if subject in ("0", "1") or (int(detail) == 0 and code in _HARD_CODES):
        return "hard"
    return "soft"


def replies(text: str) -> list[tuple[int | None, str]]:
    """The enhanced status codes in ``text`` (class 4 and 5), each with the reply
    code written before it, if one was."""
    return [
        (int(m.group(1)) if m.group(1) else None, ".".join(m.group(2, 3, 4)))
        for m in _REPLY.finditer(text)
    ]


def status_words(status: str) -> str:
    """``5.1.1 (no such mailbox)``: the code and what RFC 3463 calls it."""
    _, subject, detail = status.split(".")
    meaning = _DETAILS.get(f"{subject}.{int(detail)}") or _SUBJECTS.get(subject, "unknown")
    return f"{status} ({meaning})"
