"""Getting one message to one recipient: an outbox folder or an SMTP server,
behind one small protocol. Only whole-server failures raise; a recipient's
refusal is an ``Outcome``."""

from __future__ import annotations

import contextlib
import os
import re
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from feedpub.config import Config, SmtpConfig
from feedpub.errors import DeliveryError
from feedpub.mail import dkim_sign
from feedpub.output import write_once


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one attempt. ``temporary`` may succeed on a later try;
    ``connection`` says the server itself could not be reached."""

    result: Literal["sent", "temporary", "permanent"]
    reply: str
    connection: bool = False


class Deliverer(Protocol):
    def send(self, data: bytes, sender: str, recipient: str, name: str) -> Outcome: ...

    def close(self) -> None: ...


class OutboxDeliverer:
    """Writes each message to ``folder/NAME.eml``, readable by its owner only.

    The same message always gets the same name, so a resumed run finds the file
    it wrote before rather than adding one; a file that holds another message
    is never replaced."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, data: bytes, sender: str, recipient: str, name: str) -> Outcome:
        path = self.folder / f"{name}.eml"
        try:
            write_once(path, data)
        except FileExistsError:
            raise DeliveryError(
                f"{path} already holds a different message; nothing was overwritten"
            ) from None
        except OSError as exc:
            raise DeliveryError(f"cannot write {path}: {exc.strerror or exc}") from None
        return Outcome("sent", f"written to {path}")

    def close(self) -> None:
        pass


class Throttle:
    """Spaces sends at most ``per_second`` apart (0: no limit)."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1 / per_second if per_second > 0 else 0.0
        self.clock = clock
        self.next_at: float | None = None

    def delay(self) -> float:
        """The seconds the next send must wait; it is counted as made then."""
        if not self.interval:
            return 0.0
        now = self.clock()
        at = now if self.next_at is None else max(now, self.next_at)
        self.next_at = at + self.interval
        return at - now


@dataclass(frozen=True, slots=True)
class Room:
    """A wait for room to write more of a message on ``sock``."""

    sock: socket.socket


# What a send waits for before its next step: the server's reply on a socket,
# room to write on one, or (a float) the seconds the rate limit asks for.
Wait = socket.socket | Room | float
# A send one step at a time (SMTPDeliverer.steps): the waits, then the outcome.
Steps = Generator[Wait, None, Outcome]


def finish(steps: Steps) -> Outcome:
    """Take a send's steps here and now, each reply waited for by the read that
    follows, each delay slept."""
    while True:
        try:
            wait = next(steps)
        except StopIteration as done:
            outcome: Outcome = done.value
            return outcome
        if not isinstance(wait, socket.socket | Room):
            time.sleep(wait)


def _reply(code: int, text: bytes | str) -> str:
    message = text.decode(errors="replace") if isinstance(text, bytes) else text
    return f"{code} {' '.join(message.split())}"


def classify(code: int, text: bytes | str) -> Outcome:
    """4xx replies may pass later (RFC 5321, 4.2.1); 5xx ones will not."""
    return Outcome("temporary" if 400 <= code < 500 else "permanent", _reply(code, text))


# An address smtplib.quoteaddr writes back as it is, in angle brackets: a dot-atom
# local part and a domain of letters, digits and hyphens.
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
)
_LEADING_DOT = re.compile(rb"(?m)^\.")
# The replies that let MAIL, RCPT and DATA go on.
_ACCEPTED = ((250,), (250, 251), (354,))


def _path(address: str) -> str:
    """An SMTP path for ``address``, as smtplib writes it."""
    return f"<{address}>" if _PLAIN_ADDRESS.fullmatch(address) else smtplib.quoteaddr(address)


def _a_line_starts_with_a_dot(data: bytes) -> bool:
    """Whether a line of ``data`` starts with "." (to be doubled). Found dot by
    dot, which a message has few of (base64 has none): searching for LF and a
    dot together cost more than the rest of a send."""
    at = data.find(b".")
    while at > 0 and data[at - 1] != 0x0A:
        at = data.find(b".", at + 1)
    return at != -1


def _reset(smtp: smtplib.SMTP, code: int) -> None:
    """After a refusal: a closing server (421) is left, any other is reset. One
    that does not take the RSET is left too: the next send connects afresh
    rather than start on a connection in a state nobody knows."""
    if code != 421:
        try:
            if smtp.rset()[0] == 250:
                return
        except smtplib.SMTPServerDisconnected:  # smtplib closed it
            return
    smtp.close()


def _write(smtp: smtplib.SMTP, sock: socket.socket, data: bytes) -> Generator[Wait, None, None]:
    """Write ``data`` whole, as smtplib's send does, yielding a wait for room on
    ``sock`` whenever its buffer is full: a socket with a timeout takes what
    fits. A TLS socket, or one without a timeout, writes it all at once."""
    if isinstance(sock, ssl.SSLSocket) or sock.gettimeout() is None:
        smtp.send(data)
        return
    view = memoryview(data)
    try:
        while view := view[sock.send(view) :]:
            yield Room(sock)
    except OSError:
        smtp.close()
        raise smtplib.SMTPServerDisconnected("Server not connected") from None


def _transaction(
    smtp: smtplib.SMTP, sender: str, recipient: str, data: bytes
) -> Generator[Wait, None, None]:
    """One message to one recipient, raising what smtplib's sendmail raises;
    yields the socket before each wait for the server's replies, and the waits
    for room to write the message.

    MAIL, RCPT and DATA go in one write when the server offers PIPELINING (RFC
    2920), each after the last one's reply otherwise; the message then goes in
    one more write, its lines that start with "." doubled (RFC 5321, 4.5.2).
    """
    sock = smtp.sock
    if sock is None:  # closed by an earlier 421
        raise smtplib.SMTPServerDisconnected("please run connect() first")
    smtp.ehlo_or_helo_if_needed()
    size = f" size={len(data)}" if smtp.has_extn("size") else ""
    commands = (
        f"mail FROM:{_path(sender)}{size}\r\n",
        f"rcpt TO:{_path(recipient)}\r\n",
        "data\r\n",
    )
    pipelining = smtp.has_extn("pipelining")
    if pipelining:
        smtp.send("".join(commands))
        yield sock
    replies: list[tuple[int, bytes]] = []
    for command, accepted in zip(commands, _ACCEPTED, strict=True):
        if not pipelining:
            smtp.send(command)
            yield sock
        replies.append(smtp.getreply())
        code = replies[-1][0]
        if code == 421 or (code not in accepted and not pipelining):  # no reply follows
            break
    refusals: tuple[Callable[[int, bytes], smtplib.SMTPException], ...] = (
        lambda code, text: smtplib.SMTPSenderRefused(code, text, sender),
        lambda code, text: smtplib.SMTPRecipientsRefused({recipient: (code, text)}),
        smtplib.SMTPDataError,
    )
    for (code, text), accepted, refusal in zip(replies, _ACCEPTED, refusals, strict=False):
        if code not in accepted:
            if replies[-1][0] == 354:  # a lax server took DATA all the same: ended empty
                smtp.send(".\r\n")
                smtp.getreply()
            # Pipelined, a refused RCPT can be followed by a 421 to DATA (a server
            # closing after too many errors): the refusal is the RCPT's, the
            # connection is over all the same.
            _reset(smtp, 421 if replies[-1][0] == 421 else code)
            raise refusal(code, text)
    if _a_line_starts_with_a_dot(data):
        data = _LEADING_DOT.sub(b"..", data)
    yield from _write(smtp, sock, data + (b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n"))
    yield sock
    code, text = smtp.getreply()
    if code != 250:
        _reset(smtp, code)
        raise smtplib.SMTPDataError(code, text)


class SMTPDeliverer:
    """Sends over one SMTP connection, reused across messages and reopened when
    the server drops it."""

    def __init__(
        self,
        settings: SmtpConfig,
        password: str | None,
        throttle: Throttle | None = None,
    ) -> None:
        self.settings = settings
        self.password = password
        self.throttle = throttle or Throttle(settings.rate_limit)
        self._smtp: smtplib.SMTP | None = None
        # Every message that leaves through this server is signed: digests and
        # confirmations alike.
        self._dkim_key = None
        if settings.dkim is not None:
            try:
                self._dkim_key = settings.dkim.key_file.read_bytes()
            except OSError as exc:
                raise DeliveryError(
                    f"cannot read the DKIM key {settings.dkim.key_file}: {exc}"
                ) from None

    @property
    def where(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    def _context(self) -> ssl.SSLContext:
        ca_file = self.settings.ca_file
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)

    def _connect(self) -> smtplib.SMTP:
        settings = self.settings
        smtp: smtplib.SMTP
        if settings.security == "tls":
            smtp = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=settings.timeout, context=self._context()
            )
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
            if settings.security == "starttls":
                smtp.starttls(context=self._context())
        if settings.username:
            try:
                smtp.login(settings.username, self.password or "")
            except smtplib.SMTPAuthenticationError as exc:
                smtp.close()
                raise DeliveryError(
                    f"{self.where} refused the login for {settings.username}: "
                    f"{_reply(exc.smtp_code, exc.smtp_error)}"
                ) from None
        return smtp

    def _drop(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.close()
            finally:
                self._smtp = None

    def send(self, data: bytes, sender: str, recipient: str, name: str) -> Outcome:
        return finish(self.steps(data, sender, recipient))

    def steps(self, data: bytes, sender: str, recipient: str) -> Steps:
        """``send`` one step at a time, for several connections taken in turns
        from one thread (see sending.Connections): the first connection, TLS
        and login are made at once; the waits for the rate limit, for each of
        the server's replies and for room to write the message are yielded."""
        if self._dkim_key is not None and self.settings.dkim is not None:
            data = dkim_sign(data, self.settings.dkim, self._dkim_key)
        delay = self.throttle.delay()
        if delay:
            yield delay
        try:
            if self._smtp is not None and self._smtp.sock is None:
                # Closed after the last send's refusal (a 421, a failed RSET): that
                # refusal was the last send's; this one gets a connection of its own.
                self._drop()
            if self._smtp is None:
                self._smtp = self._connect()
            yield from _transaction(self._smtp, sender, recipient, data)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = exc.recipients[recipient]
            return classify(code, text)
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            if exc.smtp_code == 421:  # the server is closing the connection
                self._drop()
            return classify(exc.smtp_code, exc.smtp_error)
        except smtplib.SMTPServerDisconnected as exc:
            self._drop()
            return Outcome("temporary", f"connection to {self.where} lost: {exc}")
        except smtplib.SMTPResponseException as exc:
            self._drop()
            return classify(exc.smtp_code, exc.smtp_error)
        except ssl.SSLError as exc:
            self._drop()
            raise DeliveryError(f"TLS with {self.where} failed: {exc}") from None
        except (OSError, smtplib.SMTPException) as exc:  # refused, reset, timed out
            self._drop()
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            return Outcome("temporary", f"cannot reach {self.where}: {reason}", connection=True)
        return Outcome("sent", "250 accepted")

    def close(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._smtp.quit()
            self._drop()


def make_deliverer(config: Config, environ: Mapping[str, str] = os.environ) -> Deliverer:
    """The outbox without an smtp section; else the SMTP server, with the password
    read from the environment variable smtp.password_env names."""
    smtp = config.smtp
    if smtp is None:
        return OutboxDeliverer(config.outbox_dir)
    password = None
    if smtp.username:
        password = environ.get(smtp.password_env)
        if password is None:
            raise DeliveryError(
                f"the SMTP password is read from the environment variable {smtp.password_env} "
                "(smtp.password_env), which is not set"
            )
    return SMTPDeliverer(smtp, password)
