"""A real SMTP server on loopback (aiosmtpd) that records what arrives and can
be told to refuse, delay or drop, the way real servers do."""

from __future__ import annotations

import asyncio
import email
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes
    at: float = 0.0  # time.monotonic() when it was accepted

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Behaviour:
    """How the server answers. ``data_reply(n)`` may return a reply for the
    n-th DATA command (counting from 0) instead of accepting it."""

    refuse: set[str] = field(default_factory=set)
    rcpt_reply: Callable[[str], str | None] = lambda address: None
    data_reply: Callable[[int], str | None] = lambda n: None
    delay: float = 0.0
    on_data: Callable[[int], None] = lambda n: None


class RecordingHandler:
    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.received: list[Received] = []
        self.data_commands = 0
        self.peers: set[object] = set()  # the client ends of the connections that sent
        self.most_at_once = 0  # the most DATA commands answered at one time
        self._open = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if address in self.behaviour.refuse:
            return f"550 5.1.1 <{address}>: no such user here"
        reply = self.behaviour.rcpt_reply(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        with self.lock:
            n = self.data_commands
            self.data_commands += 1
            self.peers.add(session.peer)
            self._open += 1
            self.most_at_once = max(self.most_at_once, self._open)
        self.behaviour.on_data(n)
        if self.behaviour.delay:
            await asyncio.sleep(self.behaviour.delay)
        with self.lock:
            self._open -= 1
        reply = self.behaviour.data_reply(n)
        if reply is not None:
            return reply
        with self.lock:
            self.received.append(
                Received(
                    envelope.mail_from, list(envelope.rcpt_tos), envelope.content, time.monotonic()
                )
            )
        return "250 2.0.0 Message accepted for delivery"

    def by_recipient(self) -> dict[str, list[Received]]:
        found: dict[str, list[Received]] = {}
        for item in self.received:
            for rcpt in item.recipients:
                found.setdefault(rcpt, []).append(item)
        return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    port: int
    handler: RecordingHandler
    controller: Controller


@contextmanager
def smtp_server(
    behaviour: Behaviour | None = None,
    *,
    port: int | None = None,
    tls: ssl.SSLContext | None = None,
    starttls: ssl.SSLContext | None = None,
    login: tuple[str, str] | None = None,
) -> Iterator[Server]:
    """Run a server on 127.0.0.1 for the block. ``tls``: implicit TLS;
    ``starttls``: offer STARTTLS; ``login``: require AUTH with these credentials."""
    handler = RecordingHandler(behaviour or Behaviour())
    port = port or free_port()
    kwargs: dict[str, object] = {}
    if starttls is not None:
        kwargs["tls_context"] = starttls
    if login is not None:

        def authenticate(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
            ok = (
                isinstance(auth_data, LoginPassword)
                and (auth_data.login.decode(), auth_data.password.decode()) == login
            )
            return AuthResult(success=ok, handled=False)

        kwargs["authenticator"] = authenticate
        kwargs["auth_required"] = True
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, ssl_context=tls, ready_timeout=10, **kwargs
    )
    controller.start()
    try:
        yield Server(port, handler, controller)
    finally:
        controller.stop()


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made with openssl."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@contextmanager
def silent_server() -> Iterator[int]:
    """A server on 127.0.0.1 that accepts connections and never says a word, the
    way a hung mail server does; yields its port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stopping = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stopping.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stopping.set()
        thread.join(5)
        for connection in held:
            connection.close()
        listener.close()
