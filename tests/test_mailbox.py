"""Bounce mailboxes: a Maildir and an mbox in a temporary folder, and a real Dovecot
IMAP server on loopback, with TLS, STARTTLS, MOVE and the fallback without it."""

from __future__ import annotations

import datetime
import grp
import imaplib
import ipaddress
import mailbox
import os
import pwd
import shutil
import socket
import ssl
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from feedpub.errors import MailboxError
from feedpub.mailbox import ImapSource, Incoming, MaildirSource, MboxSource
from tests.smtpd import free_port

LIMIT = 2_000


def message(n: int, size: int = 0) -> bytes:
    body = "x" * size if size else f"bounce number {n}"
    return (
        f"From: MAILER-DAEMON@mx.example.net\r\nTo: bounces+t{n}@example.org\r\n"
        f"Subject: Undelivered {n}\r\nMessage-ID: <b{n}@mx.example.net>\r\n\r\n{body}\r\n"
    ).encode()


def subjects(found: list[Incoming]) -> list[str]:
    return [
        line.decode().removeprefix("Subject: ")
        for item in found
        for line in (item.data or b"").splitlines()
        if line.startswith(b"Subject: ")
    ]


# --- Maildir ------------------------------------------------------------------------


def test_maildir_messages_marked_processed_do_not_come_back(tmp_path: Path) -> None:
    path = tmp_path / "Maildir"
    box = mailbox.Maildir(path, create=True)
    for n in range(3):
        box.add(message(n))
    box.add(message(3, size=LIMIT))
    with MaildirSource(path) as source:
        found = list(source.messages(LIMIT))
        assert sorted(subjects(found)) == ["Undelivered 0", "Undelivered 1", "Undelivered 2"]
        [big] = [item for item in found if item.data is None]
        assert big.reason == (
            f"the message is {len(message(3, size=LIMIT)):,} bytes, over the limit of 2,000; "
            "it was not read"
        )
        for item in found:
            if item.data is None or b"Undelivered 1" not in item.data:
                source.mark_processed(item.key)
    with MaildirSource(path) as source:
        assert subjects(list(source.messages(LIMIT))) == ["Undelivered 1"]
    processed = path / ".processed"
    assert (processed / "maildirfolder").exists()
    assert stat.S_IMODE(processed.stat().st_mode) == 0o700
    assert len(mailbox.Maildir(processed, create=False)) == 3


def test_a_missing_maildir_is_a_sentence(tmp_path: Path) -> None:
    with pytest.raises(MailboxError) as caught:
        MaildirSource(tmp_path / "nowhere")
    assert str(caught.value) == (
        f"cannot read the Maildir {tmp_path / 'nowhere'}: it has no cur and new folders"
    )


# --- mbox ---------------------------------------------------------------------------


def test_mbox_messages_marked_processed_move_to_the_processed_file(tmp_path: Path) -> None:
    path = tmp_path / "bounces.mbox"
    box = mailbox.mbox(path)
    for n in range(3):
        box.add(message(n))
    box.add(message(3, size=LIMIT))
    box.close()
    with MboxSource(path) as source:
        found = list(source.messages(LIMIT))
        assert subjects(found) == ["Undelivered 0", "Undelivered 1", "Undelivered 2"]
        assert found[3].data is None
        assert found[3].reason is not None
        for item in (found[0], found[2], found[3]):
            source.mark_processed(item.key)
    with MboxSource(path) as source:
        assert subjects(list(source.messages(LIMIT))) == ["Undelivered 1"]
    processed = path.with_name("bounces.mbox.processed")
    assert stat.S_IMODE(processed.stat().st_mode) == 0o600
    kept = mailbox.mbox(processed)
    assert [m["Subject"] for m in kept] == [
        "Undelivered 0",
        "Undelivered 2",
        "Undelivered 3",
    ]
    assert all(m.get_from().startswith("MAILER-DAEMON") for m in kept)


def test_an_mbox_is_locked_while_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "bounces.mbox"
    box = mailbox.mbox(path)
    box.add(message(0))
    box.close()
    with MboxSource(path) as source:
        list(source.messages(LIMIT))
        with pytest.raises(MailboxError, match=f"^cannot lock the mbox {path}: "):
            list(MboxSource(path).messages(LIMIT))
    assert not path.with_name("bounces.mbox.lock").exists()


def test_a_missing_mbox_is_a_sentence(tmp_path: Path) -> None:
    with pytest.raises(MailboxError) as caught, MboxSource(tmp_path / "none.mbox") as source:
        list(source.messages(LIMIT))
    assert str(caught.value) == f"cannot read the mbox {tmp_path / 'none.mbox'}: no such file"


# --- IMAP against a real Dovecot ------------------------------------------------------

USER, PASSWORD = "tester", "s3cret pass"


@dataclass
class Dovecot:
    tls_port: int
    plain_port: int
    ca_file: Path

    def source(self, **changes: object) -> ImapSource:
        settings: dict[str, object] = {
            "host": "127.0.0.1",
            "port": self.tls_port,
            "user": USER,
            "password": PASSWORD,
            "folder": "INBOX",
            "security": "tls",
            "processed_folder": "Processed",
            "timeout": 10.0,
            "ca_file": self.ca_file,
        }
        settings.update(changes)
        return ImapSource(**settings)  # type: ignore[arg-type]

    @contextmanager
    def client(self) -> Iterator[imaplib.IMAP4]:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        imap = imaplib.IMAP4_SSL("127.0.0.1", self.tls_port, ssl_context=context, timeout=10)
        imap.login(USER, PASSWORD)
        try:
            yield imap
        finally:
            imap.logout()

    def deliver(self, *messages: bytes, flags: str | None = None) -> None:
        with self.client() as imap:
            for data in messages:
                assert imap.append("INBOX", flags, None, data)[0] == "OK"

    def count(self, folder: str, search: str = "ALL") -> int:
        with self.client() as imap:
            if imap.select(folder)[0] != "OK":
                return 0
            return len(imap.uid("SEARCH", search)[1][0].split())


def certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _wait_for(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"dovecot stopped at start:\n{log.read_text(errors='replace')}")
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    pytest.fail(f"dovecot did not listen on {port}:\n{log.read_text(errors='replace')}")


@contextmanager
def dovecot_server(folder: Path, capability: str | None = None) -> Iterator[Dovecot]:
    """Dovecot on 127.0.0.1, with one user and its own Maildir, run as the current
    user (no chroot, which needs root). As root, its login processes run as
    Debian's dovenull and the mail as nobody (Dovecot refuses root for both), in a
    home nobody may enter."""
    binary = shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/sbin")
    if binary is None:
        pytest.fail(
            "the IMAP tests need Dovecot: install Debian's dovecot-imapd "
            "(apt-get install dovecot-imapd); .ci/run installs it"
        )
    cert, key = certificate(folder)
    (folder / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
    me = pwd.getpwuid(os.geteuid())
    if me.pw_uid == 0:
        mail_user = pwd.getpwnam("nobody")
        internal, login = "root", "dovenull"
        home = Path(tempfile.mkdtemp(prefix="feedpub-imap-"))
        os.chown(home, mail_user.pw_uid, mail_user.pw_gid)
    else:
        mail_user = me
        internal = login = me.pw_name
        home = folder / "home"
        home.mkdir()
    tls_port, plain_port = free_port(), free_port()
    log = folder / "dovecot.log"
    config = folder / "dovecot.conf"
    config.write_text(
        f"""\
base_dir = {folder}/run
state_dir = {folder}/state
instance_name = feedpub-test-{tls_port}
protocols = imap
listen = 127.0.0.1
log_path = {log}
default_internal_user = {internal}
default_internal_group = {grp.getgrgid(pwd.getpwnam(internal).pw_gid).gr_name}
default_login_user = {login}
first_valid_uid = 0
mail_location = maildir:{home}/Maildir
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
{f"imap_capability = {capability}" if capability else ""}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {folder}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_user.pw_uid} gid={mail_user.pw_gid} home={home}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {plain_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
"""
    )
    process = subprocess.Popen(
        [binary, "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        _wait_for(tls_port, process, log)
        _wait_for(plain_port, process, log)
        yield Dovecot(tls_port, plain_port, cert)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if me.pw_uid == 0:
            shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def dovecot(tmp_path: Path) -> Iterator[Dovecot]:
    with dovecot_server(tmp_path) as server:
        yield server


def test_imap_over_tls_moves_processed_messages(dovecot: Dovecot) -> None:
    dovecot.deliver(message(0), message(1), message(2, size=LIMIT))
    dovecot.deliver(message(9), flags="(\\Deleted)")  # someone's, left alone by MOVE
    with dovecot.source() as source:
        found = list(source.messages(LIMIT))
    assert subjects(found) == ["Undelivered 0", "Undelivered 1"]
    assert found[2].data is None
    assert found[2].reason is not None and "over the limit of 2,000" in found[2].reason
    assert dovecot.count("INBOX", "UNSEEN") == 4  # read with BODY.PEEK: no flag set
    with dovecot.source() as source:
        for item in source.messages(LIMIT):
            if item.data is None or b"Undelivered 1" not in item.data:
                source.mark_processed(item.key)
    with dovecot.source() as source:
        assert subjects(list(source.messages(LIMIT))) == ["Undelivered 1"]
    assert dovecot.count("Processed") == 2
    assert dovecot.count("INBOX") == 2


def test_imap_without_a_processed_folder_marks_messages_seen(dovecot: Dovecot) -> None:
    dovecot.deliver(message(0), message(1))
    plain = {"port": dovecot.plain_port, "security": "starttls", "processed_folder": None}
    with dovecot.source(**plain) as source:
        for item in source.messages(LIMIT):
            source.mark_processed(item.key)
    with dovecot.source(**plain) as source:
        assert list(source.messages(LIMIT)) == []
    assert dovecot.count("INBOX", "SEEN") == 2
    assert dovecot.count("Processed") == 0


def test_imap_without_move_copies_deletes_and_expunges(tmp_path: Path) -> None:
    with dovecot_server(tmp_path, capability="IMAP4rev1 LITERAL+ UIDPLUS") as server:
        with server.client() as imap:
            assert b"MOVE" not in imap.capability()[1][0].split()
        server.deliver(message(0), message(1))
        # EXPUNGE takes every \Deleted message with it, so this one shows which way
        # the messages went: MOVE would leave it.
        server.deliver(message(9), flags="(\\Deleted)")
        with server.source() as source:
            for item in source.messages(LIMIT):
                source.mark_processed(item.key)
        assert server.count("Processed") == 2
        assert server.count("INBOX") == 0


def test_a_wrong_password_is_a_clear_line(dovecot: Dovecot) -> None:
    with pytest.raises(MailboxError) as caught, dovecot.source(password="wrong") as source:
        list(source.messages(LIMIT))
    assert str(caught.value) == (
        f"IMAP 127.0.0.1:{dovecot.tls_port} folder INBOX: the server refused the login for "
        "tester: [AUTHENTICATIONFAILED] Authentication failed."
    )


def test_a_missing_folder_is_a_clear_line(dovecot: Dovecot) -> None:
    with pytest.raises(MailboxError) as caught, dovecot.source(folder="Bounces") as source:
        list(source.messages(LIMIT))
    assert str(caught.value).startswith(
        f"IMAP 127.0.0.1:{dovecot.tls_port} folder Bounces: opening the folder Bounces failed: "
        "Mailbox doesn't exist: Bounces"
    )


def test_an_untrusted_certificate_is_a_clear_line(dovecot: Dovecot) -> None:
    with pytest.raises(MailboxError) as caught, dovecot.source(ca_file=None) as source:
        list(source.messages(LIMIT))
    assert str(caught.value).startswith(
        f"IMAP 127.0.0.1:{dovecot.tls_port} folder INBOX: connecting failed: "
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"
    )


def test_no_server_is_a_clear_line() -> None:
    port = free_port()
    source = ImapSource("127.0.0.1", port, USER, PASSWORD, "INBOX", "none", None, timeout=2)
    with pytest.raises(MailboxError) as caught, source:
        list(source.messages(LIMIT))
    assert str(caught.value) == (
        f"IMAP 127.0.0.1:{port} folder INBOX: connecting failed: Connection refused"
    )
