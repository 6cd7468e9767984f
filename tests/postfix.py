"""A private Postfix on loopback, configured, started and stopped by a test.

``running_postfix`` builds a Postfix instance of its own (config, queue and data
directories in a fresh folder under the system temp directory, whose short path keeps
Postfix's Unix sockets under the 108-byte limit), starts it with ``postfix -c DIR
start`` on a free port of 127.0.0.1, and stops it with ``postfix -c DIR stop``. It
never reads or touches the system instance, which may be running beside it.

Mail for ``domain`` (``list.test``) goes to the virtual(8) delivery agent: each
listed user has a Maildir. Mail for the bounce template's domain goes to one bounce
Maildir, whatever the token in its local part. Nothing else leaves: every other
address is bounced by the error transport, and no DNS is asked.

Where a bounce for an unknown user comes from:

- by default (``reject_unknown_at_rcpt=False``, ``smtpd_reject_unlisted_recipient =
  no``) smtpd accepts every recipient of the domain; the virtual agent then finds no
  mailbox (5.1.1 'unknown user: "nobody@list.test"') and the bounce(8) daemon sends
  a real RFC 3464 DSN (multipart/report, message/delivery-status) to the
  envelope sender, the VERP address, which lands in the bounce Maildir. The virtual
  agent writes that address, token included, into the DSN's ``Delivered-To`` and
  ``X-Original-To`` headers;
- with ``reject_unknown_at_rcpt=True`` smtpd refuses the unknown recipient at RCPT
  time (``550 5.1.1 ... User unknown in virtual mailbox table``), and no DSN is made.

Postfix is started by root, as in CI: ``mail_owner = postfix`` and ``setgid_group =
postdrop`` (both made by Debian's package), ``postfix check`` creates the queue
directories with their owners, and the data directory belongs to ``postfix``. Mail
is delivered as ``nobody``, who owns the Maildirs. The instance logs to ``maillog``
in its folder (``maillog_file`` through the postlog service), which every error of
the harness quotes.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from feedpub.verp import template_problem

HOST = "127.0.0.1"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 20.0
# Characters with a meaning in a POSIX extended regular expression (regexp_table(5)).
_ERE_SPECIAL = set(".[]()*+?{}|^$\\/")
# Made by Debian's postfix package.
_MAIL_OWNER = "postfix"
# The one delivery user; Postfix never delivers as root.
_DELIVERY_USER = "nobody"

# The listener is added once the queue directories exist and a port is chosen, so
# the port is free for as short a time as can be.
_LISTENER = "{host}:{port} inet n - n - - smtpd\n"
_SERVICES = """\
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n -  0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n -  - trivial-rewrite
bounce    unix  - - n -  0 bounce
defer     unix  - - n -  0 bounce
trace     unix  - - n -  0 bounce
verify    unix  - - n -  1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -  - proxymap
showq     unix  n - n -  - showq
error     unix  - - n -  - error
retry     unix  - - n -  - error
discard   unix  - - n -  - discard
virtual   unix  - n n -  - virtual
anvil     unix  - - n -  1 anvil
scache    unix  - - n -  1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


class PostfixError(RuntimeError):
    """The harness could not run Postfix; the message says why and what it logged."""


@dataclass(frozen=True)
class PostfixServer:
    """A running private Postfix: where it listens and where its mail lands."""

    host: str
    port: int
    domain: str
    bounce_template: str
    users: tuple[str, ...]
    root: Path

    @property
    def config_dir(self) -> Path:
        return self.root / "conf"

    @property
    def bounce_maildir(self) -> Path:
        """The Maildir that every DSN sent to a VERP address lands in."""
        return self.root / "mail" / "bounces"

    def maildir(self, user: str) -> Path:
        """The Maildir of ``user@domain``, a listed user."""
        if user not in self.users:
            raise KeyError(f"{user!r} has no mailbox; the users are {', '.join(self.users)}")
        return self.root / "mail" / self.domain / user

    def log(self) -> str:
        """Everything this instance logged so far."""
        return _read_log(self.root)

    def flush(self) -> None:
        """Ask Postfix to try every queued message now."""
        _postfix_command([_program("postqueue"), "-c", str(self.config_dir), "-f"], self.root)

    def wait_for(self, predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
        """Poll ``predicate`` until it holds, flushing the queue now and then; raise
        with ``what`` and the log if it does not within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        next_flush = time.monotonic() + 1.0
        while not predicate():
            now = time.monotonic()
            if now > deadline:
                raise PostfixError(f"waited {timeout:g} s for {what}\n{_log_tail(self.root)}")
            if now > next_flush:
                self.flush()
                next_flush = now + 1.0
            time.sleep(0.05)

    def wait_for_messages(self, maildir: Path, count: int, timeout: float = 20.0) -> list[bytes]:
        """The messages in ``maildir`` once it holds at least ``count`` of them."""
        self.wait_for(
            lambda: len(maildir_messages(maildir)) >= count,
            f"{count} message(s) in {maildir}",
            timeout,
        )
        return maildir_messages(maildir)


def maildir_messages(maildir: Path) -> list[bytes]:
    """The delivered messages of a Maildir (``new`` and ``cur``), oldest first."""
    files = [
        p for sub in ("new", "cur") if (maildir / sub).is_dir() for p in (maildir / sub).iterdir()
    ]
    return [p.read_bytes() for p in sorted(files, key=lambda p: p.name)]


@contextmanager
def running_postfix(
    users: list[str],
    bounce_template: str,
    *,
    domain: str = "list.test",
    reject_unknown_at_rcpt: bool = False,
) -> Iterator[PostfixServer]:
    """A private Postfix on a free loopback port, stopped and removed on exit.

    ``users`` get Maildirs under ``domain``; ``bounce_template`` is the VERP envelope
    sender (``bounces+{token}@bounce.test``): any address of its shape lands in
    ``bounce_maildir``. With ``reject_unknown_at_rcpt`` an unknown user of ``domain``
    is refused at RCPT time instead of bounced afterwards.
    """
    postfix = _program("postfix")
    if os.geteuid() != 0:
        raise PostfixError("the Postfix harness runs Postfix as root (as CI does); run as root")
    root = Path(tempfile.mkdtemp(prefix="feedpub-postfix-"))
    try:
        _configure(root, users, domain, bounce_template, reject_unknown_at_rcpt)
        # "postfix check" creates the queue directories, owned as they must be.
        _postfix_command([postfix, "-c", str(root / "conf"), "check"], root)
        server = PostfixServer(HOST, _free_port(), domain, bounce_template, tuple(users), root)
        with (server.config_dir / "master.cf").open("a") as master_cf:
            master_cf.write(_LISTENER.format(host=server.host, port=server.port))
        _start(postfix, server)
        try:
            yield server
        finally:
            _stop(postfix, server)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _program(name: str) -> str:
    """The path of one of Postfix's programs, which live in sbin."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    found = shutil.which(name, path=path)
    if found is None:
        raise PostfixError(
            "Postfix is not installed: install Debian's postfix package "
            "(apt-get install postfix; .ci/run does this in CI)"
        )
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _ere_literal(text: str) -> str:
    return "".join(f"\\{c}" if c in _ERE_SPECIAL else c for c in text)


def _bounce_pattern(template: str) -> tuple[str, str]:
    """A regexp_table(5) pattern for every VERP address of ``template`` (the token is
    what ``feedpub.verp`` allows), and the template's domain."""
    problem = template_problem(template)
    if problem is not None:
        raise ValueError(f"bounce template: {problem}")
    local, _, domain = template.rpartition("@")
    prefix, _, suffix = local.partition("{token}")
    literal = [_ere_literal(text) for text in (prefix, suffix, domain)]
    return f"^{literal[0]}[A-Za-z0-9_-]+{literal[1]}@{literal[2]}$", domain


def _configure(
    root: Path, users: list[str], domain: str, bounce_template: str, reject_unknown_at_rcpt: bool
) -> None:
    """Write main.cf, master.cf (without the listener) and the mailbox maps."""
    conf = root / "conf"
    bounce_pattern, bounce_domain = _bounce_pattern(bounce_template)
    nobody = pwd.getpwnam(_DELIVERY_USER)
    # The delivery user walks through the root to the Maildirs.
    root.chmod(0o755)
    conf.mkdir()
    (root / "queue").mkdir()
    # The master's lock file and the daemons' caches are written as mail_owner.
    owner = pwd.getpwnam(_MAIL_OWNER)
    (root / "data").mkdir()
    os.chown(root / "data", owner.pw_uid, owner.pw_gid)
    mail = root / "mail"
    mail.mkdir()
    os.chown(mail, nobody.pw_uid, nobody.pw_gid)
    (conf / "mailboxes").write_text(
        "".join(f"{user}@{domain} {domain}/{user}/\n" for user in users)
    )
    (conf / "bounces.regexp").write_text(f"/{bounce_pattern}/ bounces/\n")
    settings = {
        "compatibility_level": "3.6",
        "queue_directory": root / "queue",
        "data_directory": root / "data",
        "mail_owner": _MAIL_OWNER,
        "setgid_group": "postdrop",
        "syslog_name": "postfix-feedpub-test",
        "maillog_file": root / "maillog",
        "maillog_file_prefixes": root,
        "myhostname": "mta.feedpub.test",
        "mydomain": "feedpub.test",
        "myorigin": "$myhostname",
        "mydestination": "",
        "inet_interfaces": HOST,
        "inet_protocols": "ipv4",
        "mynetworks": "127.0.0.0/8",
        "smtpd_banner": "$myhostname ESMTP feedpub test Postfix",
        "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
        "smtpd_reject_unlisted_recipient": "yes" if reject_unknown_at_rcpt else "no",
        "smtpd_tls_security_level": "none",
        "smtp_tls_security_level": "none",
        "smtp_dns_support_level": "disabled",
        "biff": "no",
        "append_dot_mydomain": "no",
        "readme_directory": "no",
        "alias_maps": "",
        "alias_database": "",
        "local_recipient_maps": "",
        "relay_domains": "",
        "relayhost": "",
        "local_transport": "error:5.1.1 this test Postfix has no local mailboxes",
        "default_transport": "error:5.4.4 this test Postfix sends nothing out",
        "recipient_delimiter": "+",
        "virtual_mailbox_domains": f"{domain}, {bounce_domain}",
        "virtual_mailbox_base": mail,
        "virtual_mailbox_maps": f"texthash:{conf / 'mailboxes'}, regexp:{conf / 'bounces.regexp'}",
        "virtual_uid_maps": f"static:{nobody.pw_uid}",
        "virtual_gid_maps": f"static:{nobody.pw_gid}",
        "delay_warning_time": "0h",
        "queue_run_delay": "1s",
        "minimal_backoff_time": "1s",
        "maximal_backoff_time": "2s",
        "maximal_queue_lifetime": "10s",
        "bounce_queue_lifetime": "10s",
    }
    (conf / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
    (conf / "master.cf").write_text(_SERVICES)


def _postfix_command(argv: list[str], root: Path, timeout: float = 30.0) -> str:
    """Run one Postfix command; its output, or an error with the log."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise PostfixError(f"{' '.join(argv)} took over {timeout:g} s\n{_log_tail(root)}") from exc
    if done.returncode != 0:
        raise PostfixError(
            f"{' '.join(argv)} exited with {done.returncode}:\n{done.stdout}{done.stderr}"
            f"{_log_tail(root)}"
        )
    return done.stdout + done.stderr


def _start(postfix: str, server: PostfixServer) -> None:
    """Start the instance and wait for its greeting; stop what started if it fails."""
    try:
        _postfix_command([postfix, "-c", str(server.config_dir), "start"], server.root)
        _wait_for_banner(server)
    except PostfixError:
        _stop(postfix, server)
        raise


def _wait_for_banner(server: PostfixServer) -> None:
    """Wait until smtpd answers with its 220 greeting."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with socket.create_connection((server.host, server.port), timeout=2.0) as conn:
                if conn.recv(512).startswith(b"220"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise PostfixError(
                f"Postfix did not greet on {server.host}:{server.port} within "
                f"{START_TIMEOUT:g} s\n{_log_tail(server.root)}"
            )
        time.sleep(0.1)


def _stop(postfix: str, server: PostfixServer) -> None:
    """Stop the instance and wait until none of its processes is left."""
    queue = server.root / "queue"
    if _instance_pids(queue):
        subprocess.run(
            [postfix, "-c", str(server.config_dir), "stop"],
            capture_output=True,
            timeout=STOP_TIMEOUT,
            check=False,
        )
    deadline = time.monotonic() + STOP_TIMEOUT
    while pids := _instance_pids(queue):
        if time.monotonic() > deadline:
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            return
        time.sleep(0.1)


def _instance_pids(queue: Path) -> list[int]:
    """The processes of this instance: Postfix daemons work in its queue directory."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(os.readlink(entry / "cwd")) == queue:
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def _read_log(root: Path) -> str:
    try:
        return (root / "maillog").read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _log_tail(root: Path, lines: int = 40) -> str:
    tail = _read_log(root).splitlines()[-lines:]
    return "Postfix log:\n" + "\n".join(tail) if tail else "Postfix logged nothing."
