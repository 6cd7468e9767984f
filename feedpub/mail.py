"""One issue for one recipient: a multipart EmailMessage with the headers mail
clients and inbox providers expect (RFC 5322, RFC 2369, RFC 2919, RFC 8058)."""

from __future__ import annotations

import binascii
import html
import re
from dataclasses import replace
from datetime import datetime
from email import policy as email_policy
from email.headerregistry import Address, BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote

import dkim

from feedpub.config import DkimConfig, NewsletterConfig
from feedpub.content.text import collapse_space, short_digest, unique_digest, xml_safe
from feedpub.digest import PLACEHOLDERS
from feedpub.locale import load_catalog
from feedpub.model import Issue, Recipient

_URI = re.compile(r"<[^>]*>")
# Characters an already-valid URL keeps; anything else (spaces, CJK) is percent-encoded.
_URL_SAFE = ":/?#[]@!$&'()*+,;=%~"


class ListUnsubscribeHeader(BaseHeader, UnstructuredHeader):
    """Folds only between its URIs and never into encoded words.

    The email package encodes a long header as RFC 2047 words when it cannot fold
    it at a space, and a List-Unsubscribe encoded that way is ignored by mail
    providers. Its URIs are ASCII (RFC 2369), so a fold between them is enough.
    """

    def fold(self, *, policy: Any) -> str:
        linesep: str = policy.linesep
        return f"{self.name}: " + f",{linesep} ".join(_URI.findall(str(self))) + linesep


def _policy() -> email_policy.EmailPolicy[EmailMessage]:
    registry = HeaderRegistry()
    registry.map_to_type("list-unsubscribe", ListUnsubscribeHeader)
    return email_policy.SMTP.clone(header_factory=registry)


SMTP_POLICY = _policy()


def _ascii_url(url: str) -> str:
    return quote(url, safe=_URL_SAFE)


def _clean(text: str) -> str:
    """A display name safe for a header: one line, no control characters."""
    return collapse_space(xml_safe(text))


def personalise(template: str, values: dict[str, str], *, markup: bool) -> str:
    for key, placeholder in PLACEHOLDERS.items():
        value = values[key]
        template = template.replace(placeholder, html.escape(value) if markup else value)
    return template


def message_id(issue: Issue, recipient: Recipient, newsletter: NewsletterConfig) -> str:
    """One list's issue for one address, in 128 bits: no two recipients share it,
    and a resent copy (a resumed run) gets it again, so it is recognised."""
    domain = newsletter.sender_email.rpartition("@")[2]
    copy = unique_digest(f"{newsletter.list_id}\0{issue.number}\0{recipient.email.casefold()}")
    return f"<feedpub.{issue.number}.{copy}@{domain}>"


def message_name(message: EmailMessage) -> str:
    """A name for the message from its Message-ID, the same each time it is sent
    (the outbox names its files with it, so a resent message finds its own file)."""
    return str(message["Message-ID"]).strip("<>").partition("@")[0]


def with_default_name(newsletter: NewsletterConfig, language: str) -> NewsletterConfig:
    """``newsletter`` with the name its greeting gives subscribers who gave none:
    ``default_name`` as configured, else the word ``language``'s catalog has for
    a reader ("there", "读者"), so no site greets in another language."""
    if newsletter.default_name is not None:
        return newsletter
    # TRANSLATORS: the name in "Hello %(name)s," for a subscriber who gave none.
    return replace(newsletter, default_name=load_catalog(language).gettext("there"))


def _values(recipient: Recipient, newsletter: NewsletterConfig) -> dict[str, str]:
    """What fills the placeholders of an issue for ``recipient``."""
    return {
        "name": _clean(recipient.name) or newsletter.default_name or "",
        "email": recipient.email,
        "unsubscribe_url": _ascii_url(
            newsletter.unsubscribe_url.replace("{token}", recipient.token)
        ),
        "manage_url": _ascii_url(newsletter.manage_url.replace("{token}", recipient.token)),
    }


def _list_unsubscribe(
    recipient: Recipient, unsubscribe_url: str, newsletter: NewsletterConfig
) -> str:
    mailto = f"mailto:{newsletter.unsubscribe_email}?subject=unsubscribe%20{quote(recipient.token)}"
    return f"<{unsubscribe_url}>, <{mailto}>"


def _boundary(message_id: str) -> str:
    """A boundary derived from the Message-ID keeps a re-sent copy byte-identical."""
    return "feedpub-" + short_digest(message_id) * 2


def build_message(issue: Issue, recipient: Recipient, newsletter: NewsletterConfig) -> EmailMessage:
    """The finished message for one recipient (``MessageMaker`` makes its bytes
    faster, for sending)."""
    values = _values(recipient, newsletter)
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = Address(_clean(newsletter.sender_name), addr_spec=newsletter.sender_email)
    message["To"] = Address(_clean(recipient.name), addr_spec=recipient.email)
    if newsletter.reply_to:
        message["Reply-To"] = newsletter.reply_to
    message["Subject"] = issue.subject
    message["Date"] = format_datetime(issue.date)
    message["Message-ID"] = message_id(issue, recipient, newsletter)
    message["List-Id"] = f"{_clean(newsletter.title)} <{newsletter.list_id}>"
    message["List-Unsubscribe"] = _list_unsubscribe(
        recipient, values["unsubscribe_url"], newsletter
    )
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    # base64 named outright: left to choose, the email package encodes each part
    # both ways to pick the shorter, which costs more than the rest of the message.
    message.set_content(personalise(issue.text, values, markup=False), cte="base64")
    message.add_alternative(
        personalise(issue.html, values, markup=True), subtype="html", cte="base64"
    )
    message.set_boundary(_boundary(message["Message-ID"]))
    return message


def _folded(name: str, value: object) -> bytes:
    """One header line (or folded lines) as the email package writes it."""
    return SMTP_POLICY.fold_binary(name, SMTP_POLICY.header_factory(name, value))


# A display name and address the email package writes as they are: ASCII atext
# and single spaces, no character that would need quoting or encoding.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")


def _to_line(name: str, email: str) -> bytes:
    """The To header: written straight out when the email package would write
    it so (a plain name and address on one short line), else folded by it."""
    line = f"To: {name} <{email}>" if name else f"To: {email}"
    if (
        len(line) <= 78
        and (not name or _PLAIN_NAME.fullmatch(name))
        and _PLAIN_ADDRESS.fullmatch(email)
    ):
        return line.encode() + b"\r\n"
    return _folded("To", Address(name, addr_spec=email))


def _base64_part(text: str) -> bytes:
    """A text part's body as the email package writes it with ``cte="base64"``:
    its lines joined by CRLF, in base64 lines of 76 characters (57 bytes each, so
    one encoding cut every 76 characters is the same), each ending CRLF."""
    data = b"\r\n".join(text.encode().splitlines()) + b"\r\n"
    encoded = binascii.b2a_base64(data, newline=False)
    return b"\r\n".join(_BASE64_LINE.findall(encoded)) + b"\r\n"


# 57 bytes a line, as the email package cuts them for its line length of 78.
_BASE64_LINE = re.compile(b".{1,%d}" % ((SMTP_POLICY.max_line_length or 78) // 4 * 4))


class MessageMaker:
    """One issue's messages for sending, as the bytes ``build_message(...).as_bytes()``
    gives (a test holds them to it), made several times faster: the headers every
    recipient shares are folded once, and per recipient only To, Message-ID,
    List-Unsubscribe and the two personalised parts are made."""

    def __init__(self, issue: Issue, newsletter: NewsletterConfig) -> None:
        self.issue = issue
        self.newsletter = newsletter
        fold = _folded
        sender = Address(_clean(newsletter.sender_name), addr_spec=newsletter.sender_email)
        self._from = fold("From", sender)
        reply = fold("Reply-To", newsletter.reply_to) if newsletter.reply_to else b""
        self._dated = (
            reply + fold("Subject", issue.subject) + fold("Date", format_datetime(issue.date))
        )
        self._list_id = fold("List-Id", f"{_clean(newsletter.title)} <{newsletter.list_id}>")
        self._mime = fold("List-Unsubscribe-Post", "List-Unsubscribe=One-Click") + fold(
            "MIME-Version", "1.0"
        )

    def make(self, recipient: Recipient) -> tuple[bytes, str]:
        """The message for ``recipient``, and its name (see ``message_name``)."""
        newsletter, fold = self.newsletter, _folded
        values = _values(recipient, newsletter)
        identifier = message_id(self.issue, recipient, newsletter)
        boundary = _boundary(identifier).encode()
        unsubscribe = _list_unsubscribe(recipient, values["unsubscribe_url"], newsletter)
        head = b"".join(
            (
                self._from,
                _to_line(_clean(recipient.name), recipient.email),
                self._dated,
                fold("Message-ID", identifier),
                self._list_id,
                # Folded between its URIs, as ListUnsubscribeHeader folds it.
                b"List-Unsubscribe: " + ",\r\n ".join(_URI.findall(unsubscribe)).encode() + b"\r\n",
                self._mime,
                b'Content-Type: multipart/alternative; boundary="' + boundary + b'"\r\n',
            )
        )
        text = _base64_part(personalise(self.issue.text, values, markup=False))
        html_part = _base64_part(personalise(self.issue.html, values, markup=True))
        delimiter = b"\r\n--" + boundary + b"\r\n"
        data = b"".join(
            (
                head,
                delimiter,
                b'Content-Type: text/plain; charset="utf-8"\r\n',
                b"Content-Transfer-Encoding: base64\r\n\r\n",
                text,
                delimiter,
                b'Content-Type: text/html; charset="utf-8"\r\n',
                b"Content-Transfer-Encoding: base64\r\nMIME-Version: 1.0\r\n\r\n",
                html_part,
                b"\r\n--" + boundary + b"--\r\n",
            )
        )
        return data, identifier.strip("<>").partition("@")[0]


def build_confirmation(
    newsletter: NewsletterConfig,
    email: str,
    name: str,
    link: str,
    now: datetime,
    subject: str,
    text: str,
    html_body: str,
) -> EmailMessage:
    """The double opt-in message: its subject, rendered text and HTML, sent to one address."""
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = Address(_clean(newsletter.sender_name), addr_spec=newsletter.sender_email)
    message["To"] = Address(_clean(name), addr_spec=email)
    message["Subject"] = _clean(subject)
    message["Date"] = format_datetime(now)
    domain = newsletter.sender_email.rpartition("@")[2]
    # The link holds a random nonce: 128 bits of its digest name this message alone.
    message["Message-ID"] = f"<feedpub.confirm.{unique_digest(link)}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text, cte="base64")
    message.add_alternative(html_body, subtype="html", cte="base64")
    return message


# Headers a DKIM signature covers; List-Unsubscribe and List-Unsubscribe-Post must
# be among them for one-click unsubscribe to be honoured (RFC 8058, section 4).
DKIM_HEADERS = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"mime-version",
    b"content-type",
)


def dkim_sign(data: bytes, settings: DkimConfig, private_key: bytes) -> bytes:
    """``data`` with a DKIM-Signature header in front."""
    signature = dkim.sign(
        data,
        settings.selector.encode(),
        settings.domain.encode(),
        private_key,
        include_headers=list(DKIM_HEADERS),
        signature_algorithm=settings.algorithm.encode(),
    )
    return bytes(signature) + data
