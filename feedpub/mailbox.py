"""The mailbox bounces come back to, read at the edge: a Maildir, an mbox file or an
IMAP folder. Each source yields the messages not yet processed, as bytes, and moves
or marks a message once the caller has recorded it, so a message is read again only
when recording it did not finish (and the ledger's key counts it once).

Only this module touches the mailbox and imaplib; their errors reach the caller as
MailboxError sentences that name the mailbox and what failed.
"""

from __future__ import annotations

import contextlib
import imaplib
import mailbox
import os
import re
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, Protocol, Self

from feedpub.errors import MailboxError

Security = Literal["tls", "starttls", "none"]

_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")


@dataclass(frozen=True)
class Incoming:
    """One message of a mailbox. ``key`` names it to ``mark_processed`` (it is the
    mailbox's own handle, not the ledger's key: ``bounces.read_report`` gives that).
    ``data`` is None when the message is over the size limit; ``reason`` then says
    so. An oversized message is marked processed like any other, so it does not
    come back."""

    key: str
    data: bytes | None
    reason: str | None = None


class BounceSource(Protocol):
    """A mailbox of returned mail. Use it in a ``with`` block: changes are saved,
    and connections closed, when the block ends."""

    def messages(self, max_bytes: int) -> Iterator[Incoming]: ...

    def mark_processed(self, key: str) -> None: ...

    def close(self) -> None: ...


def _too_big(size: int, max_bytes: int) -> str:
    return f"the message is {size:,} bytes, over the limit of {max_bytes:,}; it was not read"


def _os_reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


class _Closing:
    def close(self) -> None:
        """Save what changed and let go of the mailbox."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _read_limited(box: mailbox.Mailbox[mailbox.Message], key: str, max_bytes: int) -> Incoming:
    """The message, or a reason when it holds more than ``max_bytes`` bytes; never
    more than ``max_bytes + 1`` of it is read."""
    with box.get_file(key) as file:
        data = file.read(max_bytes + 1)
        if len(data) <= max_bytes:
            return Incoming(key, data)
        size = len(data) + len(file.read())
    return Incoming(key, None, _too_big(size, max_bytes))


class MaildirSource(_Closing):
    """A Maildir (its ``new`` and ``cur`` messages). A processed message moves to its
    ``.processed`` Maildir++ sub-folder, made when first needed: the inbox then holds
    only what is still to be read, whatever flags a mail client sets."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not (path / "cur").is_dir() or not (path / "new").is_dir():
            raise MailboxError(f"cannot read the Maildir {path}: it has no cur and new folders")
        self._box = mailbox.Maildir(path, create=False)
        self._processed: mailbox.Maildir | None = None

    def messages(self, max_bytes: int) -> Iterator[Incoming]:
        try:
            for key in sorted(self._box.keys()):
                with contextlib.suppress(KeyError):  # gone since it was listed
                    yield _read_limited(self._box, key, max_bytes)
        except OSError as exc:
            raise MailboxError(f"cannot read the Maildir {self.path}: {_os_reason(exc)}") from None

    def mark_processed(self, key: str) -> None:
        try:
            if self._processed is None:
                self._processed = self._box.add_folder("processed")
            self._processed.add(self._box.get_bytes(key))
            self._box.discard(key)
        except OSError as exc:
            raise MailboxError(
                f"cannot move a message of the Maildir {self.path} to its .processed "
                f"folder: {_os_reason(exc)}"
            ) from None


class MboxSource(_Closing):
    """An mbox file, locked (the mailbox module's dot and fcntl locks) from the first
    read to ``close``. A processed message is copied to ``<path>.processed`` at once,
    and removed from the file when the source closes: a run cut short leaves a
    message in both, never in neither."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._box: mailbox.mbox | None = None
        self._removed = False

    def _open(self) -> mailbox.mbox:
        if self._box is None:
            if not self.path.is_file():
                raise MailboxError(f"cannot read the mbox {self.path}: no such file")
            box = mailbox.mbox(self.path, create=False)
            try:
                box.lock()
            except (OSError, mailbox.ExternalClashError) as exc:
                box.close()
                raise MailboxError(f"cannot lock the mbox {self.path}: {exc}") from None
            self._box = box
        return self._box

    def messages(self, max_bytes: int) -> Iterator[Incoming]:
        try:
            box = self._open()
            for key in list(box.keys()):
                yield _read_limited(box, key, max_bytes)
        except OSError as exc:
            raise MailboxError(f"cannot read the mbox {self.path}: {_os_reason(exc)}") from None

    def mark_processed(self, key: str) -> None:
        box = self._open()
        target = self.path.with_name(self.path.name + ".processed")
        try:
            with contextlib.suppress(FileExistsError):  # it holds addresses: owner only
                os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            processed = mailbox.mbox(target)
            processed.lock()
            try:
                with box.get_file(key, from_=True) as file:
                    processed.add(file.read())
                processed.flush()
            finally:
                processed.unlock()
                processed.close()
            box.discard(key)
            self._removed = True
        except (OSError, mailbox.ExternalClashError) as exc:
            raise MailboxError(
                f"cannot move a message of the mbox {self.path} to {target}: {exc}"
            ) from None

    def close(self) -> None:
        """Remove the processed messages from the file and unlock it."""
        box, self._box = self._box, None
        if box is None:
            return
        try:
            if self._removed:
                box.flush()
        except OSError as exc:
            raise MailboxError(
                f"cannot remove the processed messages from the mbox {self.path}: {_os_reason(exc)}"
            ) from None
        finally:
            box.unlock()
            box.close()


class ImapSource(_Closing):
    """An IMAP folder. Without ``processed_folder``, the unread (UNSEEN) messages are
    read, and a processed one is marked \\Seen. With it, every message in the folder
    is read (a person reading the folder sets \\Seen too) and a processed one moves
    there: MOVE (RFC 6851), or COPY, \\Deleted and EXPUNGE where the server lacks it.
    Messages are fetched with BODY.PEEK, after their RFC822.SIZE, so reading sets no
    flag and an oversized one is never downloaded. ``timeout`` (seconds) bounds
    every network operation; ``ca_file`` is trusted besides the system's CAs."""

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        password: str,
        folder: str,
        security: Security,
        processed_folder: str | None,
        *,
        timeout: float = 30.0,
        ca_file: Path | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.folder = folder
        self.security = security
        self.processed_folder = processed_folder
        self.timeout = timeout
        self.ca_file = ca_file
        self._imap: imaplib.IMAP4 | None = None
        self._can_move = False
        self._made_folder = False

    @property
    def where(self) -> str:
        return f"IMAP {self.host}:{self.port} folder {self.folder}"

    def _fail(self, doing: str, exc: BaseException | str) -> MailboxError:
        if isinstance(exc, OSError) and not isinstance(exc, ssl.SSLError):
            detail = _os_reason(exc)
        elif isinstance(exc, imaplib.IMAP4.error):
            detail = _server_text(exc.args[0] if exc.args else exc)
        else:
            detail = str(exc) or type(exc).__name__
        return MailboxError(f"{self.where}: {doing} failed: {detail}")

    def _connect(self) -> imaplib.IMAP4:
        if self._imap is not None:
            return self._imap
        context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        try:
            if self.security == "tls":
                imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    self.host, self.port, ssl_context=context, timeout=self.timeout
                )
            else:
                imap = imaplib.IMAP4(self.host, self.port, timeout=self.timeout)
                if self.security == "starttls":
                    imap.starttls(ssl_context=context)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise self._fail("connecting", exc) from None
        try:
            try:
                imap.login(self.user, self.password)
            except imaplib.IMAP4.error as exc:
                raise MailboxError(
                    f"{self.where}: the server refused the login for {self.user}: "
                    f"{_server_text(exc.args[0] if exc.args else exc)}"
                ) from None
            _ok(imap.select(_quoted(self.folder)), f"opening the folder {self.folder}")
            capabilities = _ok(imap.capability(), "asking for capabilities")
            self._can_move = b"MOVE" in _words(capabilities).upper().split()
        except MailboxError:
            _logout(imap)
            raise
        except (OSError, imaplib.IMAP4.error) as exc:
            _logout(imap)
            raise self._fail("logging in", exc) from None
        except _Refused as exc:
            _logout(imap)
            raise self._fail(exc.doing, exc.text) from None
        self._imap = imap
        return imap

    def messages(self, max_bytes: int) -> Iterator[Incoming]:
        imap = self._connect()
        try:
            search = "UNSEEN" if self.processed_folder is None else "UNDELETED"
            found = _ok(imap.uid("SEARCH", search), "searching the folder")
            uids = [uid.decode() for uid in _words(found).split()]
            for uid, size in self._sizes(imap, uids):
                if size > max_bytes:
                    yield Incoming(uid, None, _too_big(size, max_bytes))
                    continue
                data = _literal(_ok(imap.uid("FETCH", uid, "(BODY.PEEK[])"), "fetching"))
                if data is not None:
                    yield Incoming(uid, data)
        except _Refused as exc:
            raise self._fail(exc.doing, exc.text) from None
        except (OSError, imaplib.IMAP4.error) as exc:
            raise self._fail("reading messages", exc) from None

    def _sizes(self, imap: imaplib.IMAP4, uids: list[str]) -> list[tuple[str, int]]:
        """The size of each message, asked for a few hundred at a time (a command
        line has a length limit)."""
        sizes: dict[str, int] = {}
        for start in range(0, len(uids), 500):
            some = ",".join(uids[start : start + 500])
            for line in _ok(imap.uid("FETCH", some, "(RFC822.SIZE)"), "asking for sizes"):
                text = line[0] if isinstance(line, tuple) else line
                uid, size = _UID.search(text), _SIZE.search(text)
                if uid and size:
                    sizes[uid.group(1).decode()] = int(size.group(1))
        return [(uid, sizes[uid]) for uid in uids if uid in sizes]

    def mark_processed(self, key: str) -> None:
        imap = self._connect()
        try:
            if self.processed_folder is None:
                _ok(imap.uid("STORE", key, "+FLAGS", "(\\Seen)"), "marking a message seen")
                return
            target = _quoted(self.processed_folder)
            if not self._made_folder:
                imap.create(target)  # "already exists" is a NO, and fine
                self._made_folder = True
            if self._can_move:
                _ok(imap.uid("MOVE", key, target), f"moving a message to {self.processed_folder}")
                return
            _ok(imap.uid("COPY", key, target), f"copying a message to {self.processed_folder}")
            _ok(imap.uid("STORE", key, "+FLAGS", "(\\Deleted)"), "deleting the moved message")
            _ok(imap.expunge(), "expunging the moved message")
        except _Refused as exc:
            raise self._fail(exc.doing, exc.text) from None
        except (OSError, imaplib.IMAP4.error) as exc:
            raise self._fail("marking a message processed", exc) from None

    def close(self) -> None:
        """Log out."""
        imap, self._imap = self._imap, None
        if imap is not None:
            _logout(imap)


class _Refused(Exception):
    """A NO or BAD answer, on its way to become a MailboxError."""

    def __init__(self, doing: str, text: str) -> None:
        super().__init__(doing, text)
        self.doing = doing
        self.text = text


def _ok(answer: tuple[str, Sequence[object]], doing: str) -> list[bytes | tuple[bytes, bytes]]:
    """The data of an OK answer; a NO raises _Refused with the server's words."""
    kind, data = answer
    if kind != "OK":
        raise _Refused(doing, _server_text(_words(data)))
    return [d for d in data if isinstance(d, bytes | tuple)]


def _words(data: Sequence[object]) -> bytes:
    """The plain lines of an answer, joined."""
    return b" ".join(d for d in data if isinstance(d, bytes))


def _literal(data: list[bytes | tuple[bytes, bytes]]) -> bytes | None:
    """The message text in a FETCH answer; None when the message is gone."""
    return next((item[1] for item in data if isinstance(item, tuple)), None)


def _quoted(folder: str) -> str:
    """A folder name as an IMAP quoted string (imaplib sends arguments as they are)."""
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _server_text(value: object) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    text = re.sub(r"^b'(.*)'$", r"\1", text)
    return " ".join(text.split()) or "no reason given"


def _logout(imap: imaplib.IMAP4) -> None:
    with contextlib.suppress(OSError, imaplib.IMAP4.error):
        imap.logout()
