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


# What quote() never encodes: a token of these goes into a URL as it is.
_URL_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*")


class _Urls:
    """A newsletter's unsubscribe and manage URLs split at ``{token}``, each part
    as _ascii_url writes it: a recipient's URL is their token, so written,
    between the parts (quote() writes each character on its own)."""

    def __init__(self, newsletter: NewsletterConfig) -> None:
        self.unsubscribe = [
            _ascii_url(part) for part in newsletter.unsubscribe_url.split("{token}")
        ]
        self.manage = [_ascii_url(part) for part in newsletter.manage_url.split("{token}")]


def _values(recipient: Recipient, newsletter: NewsletterConfig, urls: _Urls) -> dict[str, str]:
    """What fills the placeholders of an issue for ``recipient``."""
    token = recipient.token
    quoted = token if _URL_PLAIN.fullmatch(token) else _ascii_url(token)
    return {
        "name": _clean(recipient.name) or newsletter.default_name or "",
        "email": recipient.email,
        "unsubscribe_url": quoted.join(urls.unsubscribe),
        "manage_url": quoted.join(urls.manage),
    }


def _list_unsubscribe(
    recipient: Recipient, unsubscribe_url: str, newsletter: NewsletterConfig
) -> str:
    token = recipient.token
    quoted = token if _URL_PLAIN.fullmatch(token) else quote(token)
    mailto = f"mailto:{newsletter.unsubscribe_email}?subject=unsubscribe%20{quoted}"
    return f"<{unsubscribe_url}>, <{mailto}>"


def _boundary(message_id: str) -> str:
    """A boundary derived from the Message-ID keeps a re-sent copy byte-identical."""
    return "feedpub-" + short_digest(message_id) * 2


def build_message(issue: Issue, recipient: Recipient, newsletter: NewsletterConfig) -> EmailMessage:
    """The finished message for one recipient (``MessageMaker`` makes its bytes
    faster, for sending)."""
    values = _values(recipient, newsletter, _Urls(newsletter))
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
_PLAIN_MESSAGE_ID = re.compile(r"<[A-Za-z0-9.]+@[A-Za-z0-9.-]+>")


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


def _message_id_line(identifier: str) -> bytes:
    """The Message-ID header: written straight out when the email package would
    write it so (ASCII, on one short line), else folded by it."""
    line = "Message-ID: " + identifier
    if len(line) <= 78 and _PLAIN_MESSAGE_ID.fullmatch(identifier):
        return line.encode() + b"\r\n"
    return _folded("Message-ID", identifier)


def _base64_lines(data: bytes) -> bytes:
    """``data`` in base64 lines of 76 characters (57 bytes each, so one encoding
    cut every 76 characters is the same), each ending CRLF; nothing for no data."""
    if len(data) <= _LINE_BYTES:  # most often: the lines around a value
        return binascii.b2a_base64(data, newline=False) + b"\r\n" if data else b""
    lines = _BASE64_LINE.findall(binascii.b2a_base64(data, newline=False))
    return b"\r\n".join(lines) + b"\r\n"


def _base64_part(text: str) -> bytes:
    """A text part's body as the email package writes it with ``cte="base64"``:
    its lines joined by CRLF, in base64 lines, each ending CRLF."""
    return _base64_lines(b"\r\n".join(text.encode().splitlines()) + b"\r\n")


# 76 characters a line, as the email package cuts them for its line length of 78,
# and the 57 bytes each holds.
_BASE64_LINE = re.compile(b".{1,%d}" % ((SMTP_POLICY.max_line_length or 78) // 4 * 4))
_LINE_BYTES = (SMTP_POLICY.max_line_length or 78) // 4 * 3
_PLACEHOLDER = re.compile(b"(%s)" % b"|".join(re.escape(p.encode()) for p in PLACEHOLDERS.values()))
_KEYS = {placeholder.encode(): key for key, placeholder in PLACEHOLDERS.items()}
# How the placeholders end: a value with none of these cannot make one with the
# text next to it (that personalise would then fill in), unless that text starts
# or ends like one (see _may_meet_a_value).
_PLACEHOLDER_ENDS = frozenset(placeholder[-4:] for placeholder in PLACEHOLDERS.values())


def _may_meet_a_value(fixed: bytes, *, before: bool, after: bool) -> bool:
    """Whether a placeholder could appear where ``fixed`` meets a value: it ends
    with the start of one (``before`` a value), or starts with the rest of one
    or is all inside it (``after`` a value)."""
    for placeholder in _KEYS:
        for cut in range(1, len(placeholder)):
            head, rest = placeholder[:cut], placeholder[cut:]
            if before and fixed.endswith(head):
                return True
            if after and (fixed.startswith(rest) or rest.startswith(fixed)):
                return True
    return False


class _PartMaker:
    """One text part's base64 body for each recipient, as
    ``_base64_part(personalise(template, values, markup=markup))`` writes it.

    The template's pieces between placeholders are encoded once for each of the
    57 places in a base64 line where a piece can start (it depends on the length
    of the values before it); per recipient only the lines that hold a value
    are encoded. Templates and values that would not come out the same that way
    (a CR that a value could join with an LF, a value with a line break or that
    could complete a placeholder) are personalised in full."""

    def __init__(self, template: str, *, markup: bool) -> None:
        self.template = template
        self.markup = markup
        pieces = _PLACEHOLDER.split(b"\r\n".join(template.encode().splitlines()) + b"\r\n")
        self._fixed = pieces[0::2]
        self._sizes = [len(fixed) for fixed in self._fixed]
        self._keys = [_KEYS[placeholder] for placeholder in pieces[1::2]]
        last = len(self._fixed) - 1
        self._exact = "\r" not in template and not any(
            _may_meet_a_value(fixed, before=n < last, after=n > 0)
            for n, fixed in enumerate(self._fixed)
        )
        self._encoded: dict[tuple[int, int], bytes] = {}

    def make(self, values: dict[str, str]) -> bytes:
        # The values in one string, NUL between them: escaped, encoded and checked
        # at once (no placeholder's end spans a NUL).
        every = "\0".join([values[key] for key in self._keys])
        if self.markup:
            every = html.escape(every)
        filled = every.encode().split(b"\0") if self._keys else []
        if (
            not self._exact
            or len(filled) != len(self._keys)  # a value with a NUL of its own
            or "\r" in every
            or "\n" in every
            or any(end in every for end in _PLACEHOLDER_ENDS)
        ):
            return _base64_part(personalise(self.template, values, markup=self.markup))
        encoded, out, pending = self._encoded, [], b""
        for n, fixed in enumerate(self._fixed):
            if n:
                pending += filled[n - 1]
            start = -len(pending) % _LINE_BYTES  # where the piece's first whole line starts
            size = self._sizes[n]
            if size < start:
                pending += fixed
                continue
            if pending:
                out.append(_base64_lines(pending + fixed[:start]))
            end = size - (size - start) % _LINE_BYTES
            lines = encoded.get((n, start))
            if lines is None:
                lines = encoded[n, start] = _base64_lines(fixed[start:end])
            out.append(lines)
            pending = fixed[end:]
        out.append(_base64_lines(pending))
        return b"".join(out)


class MessageMaker:
    """One issue's messages for sending, as the bytes ``build_message(...).as_bytes()``
    gives (a test holds them to it), made many times faster: the headers every
    recipient shares are folded once, and per recipient only To, Message-ID,
    List-Unsubscribe and the lines of the two parts that hold a recipient's
    value are made (see _PartMaker)."""

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
        self._urls = _Urls(newsletter)
        self._text = _PartMaker(issue.text, markup=False)
        self._html = _PartMaker(issue.html, markup=True)

    def make(self, recipient: Recipient) -> tuple[bytes, str]:
        """The message for ``recipient``, and its name (see ``message_name``)."""
        newsletter = self.newsletter
        values = _values(recipient, newsletter, self._urls)
        identifier = message_id(self.issue, recipient, newsletter)
        boundary = _boundary(identifier).encode()
        unsubscribe = _list_unsubscribe(recipient, values["unsubscribe_url"], newsletter)
        head = b"".join(
            (
                self._from,
                _to_line(_clean(recipient.name), recipient.email),
                self._dated,
                _message_id_line(identifier),
                self._list_id,
                # Folded between its URIs, as ListUnsubscribeHeader folds it.
                b"List-Unsubscribe: " + ",\r\n ".join(_URI.findall(unsubscribe)).encode() + b"\r\n",
                self._mime,
                b'Content-Type: multipart/alternative; boundary="' + boundary + b'"\r\n',
            )
        )
        text = self._text.make(values)
        html_part = self._html.make(values)
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
