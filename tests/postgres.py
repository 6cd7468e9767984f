"""A private PostgreSQL server on loopback, created, started and stopped by a test.

``running_postgres`` makes a cluster of its own in a fresh folder under the system temp
directory: ``initdb`` writes the data directory (``data``), the server logs to
``postgres.log`` beside it, and its Unix socket lives in the folder itself (whose short
path keeps the socket under the 108-byte limit). It is started with ``pg_ctl -w start``
on a free port of 127.0.0.1, the only address it listens on, and stopped with ``pg_ctl
-m fast -w stop``; then the folder is removed. It never reads or touches the system's
cluster, which may be running beside it.

Who may connect, and how:

- the superuser ``postgres``, over the Unix socket only, with no password
  (``--auth-local=trust``); the harness itself uses it to make the role and the
  databases;
- anyone else over TCP with a password checked by SCRAM-SHA-256 (``--auth-host``):
  the role ``feedpub`` (LOGIN, CREATEDB), whose password is made afresh for each
  server. ``PostgresServer.url`` leaves the password out, as a config file would; a
  client passes ``password=server.password`` beside it. A connection without the
  password, or with a wrong one, is refused.

initdb refuses to run as root, and tests run as root (as CI does): the folder then
belongs to the ``postgres`` system user (made by Debian's postgresql package), mode
0700, and ``initdb`` and ``pg_ctl`` run as that user, with no supplementary groups and
the folder as working directory (root's may be closed to it). Root still reads the log
and removes the folder. Run as anyone else, the binaries run as that user.

The binaries come from ``pg_config --bindir`` when it has a server in it, else from the
newest ``/usr/lib/postgresql/*/bin`` (Debian keeps them out of PATH). The cluster is
UTF8 with the C.UTF-8 locale, and trades durability for speed, which tests never need:
``fsync``, ``synchronous_commit`` and ``full_page_writes`` are off, and initdb does not
sync its files (``--no-sync``). ``max_connections`` is 200. The binaries run without
the caller's libpq variables (``PGHOST``, ``PGPORT``, ``PGDATA``, ...).

Starting takes 1 to 1.5 s on a 2-CPU machine, nearly all of it initdb (0.85 to 1.3 s;
pg_ctl start 0.13 s, the role 0.02 s); stopping takes 0.1 s.

Every error of the harness quotes the end of the server's log.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

HOST = "127.0.0.1"
ROLE = "feedpub"
SUPERUSER = "postgres"
START_TIMEOUT = 30
STOP_TIMEOUT = 30
# The system user that runs the server when the tests run as root; made by Debian's
# postgresql package.
_SYSTEM_USER = "postgres"
# Another process may take the free port before the server binds it; then the server
# is started again on another one.
_START_ATTEMPTS = 3
_LOG = "postgres.log"
_DATA = "data"


class PostgresError(RuntimeError):
    """The harness could not run PostgreSQL; the message says why and what it logged."""


@dataclass(frozen=True)
class PostgresServer:
    """A running private PostgreSQL server and the role that the tests log in as."""

    host: str
    port: int
    user: str
    password: str
    folder: Path

    def url(self, database: str) -> str:
        """The URL of ``database`` for ``user``, without the password."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{quote(database, safe='')}"

    def create_database(self, name: str) -> str:
        """Create the database ``name``, owned by ``user``; its URL."""
        with _superuser(self) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(self.user)
                )
            )
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop the database ``name``, ending every connection to it first."""
        with _superuser(self) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            # DROP DATABASE waits (up to 5 s) for the terminated backends to exit.
            conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))

    def log(self) -> str:
        """Everything the server logged so far."""
        return _read_log(self.folder)


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A private PostgreSQL server on a free loopback port, with the role ``feedpub``
    and a fresh password; stopped and removed on exit."""
    bindir = _bindir()
    owner = _owner()
    folder = Path(tempfile.mkdtemp(prefix="feedpub-postgres-"))
    try:
        if owner is not None:
            os.chown(folder, owner.pw_uid, owner.pw_gid)
        folder.chmod(0o700)
        _initdb(bindir, folder, owner)
        try:
            port = _start(bindir, folder, owner)
            server = PostgresServer(HOST, port, ROLE, secrets.token_urlsafe(24), folder)
            _create_role(server)
            yield server
        finally:
            _stop(bindir, folder, owner)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _bindir() -> Path:
    """The folder of initdb, pg_ctl and postgres."""
    candidates = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        done = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=False
        )
        if done.returncode == 0 and done.stdout.strip():
            candidates.append(Path(done.stdout.strip()))
    # Debian's, newest first: /usr/lib/postgresql/15/bin before .../9.6/bin.
    candidates += sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda d: tuple(int(p) if p.isdigit() else -1 for p in d.parent.name.split(".")),
        reverse=True,
    )
    for candidate in candidates:
        if all(os.access(candidate / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres")):
            return candidate
    raise PostgresError(
        "PostgreSQL is not installed (no initdb, pg_ctl and postgres from pg_config --bindir "
        "or in /usr/lib/postgresql/*/bin): install Debian's postgresql package "
        "(apt-get install postgresql; .ci/run does this in CI)"
    )


def _owner() -> pwd.struct_passwd | None:
    """The user to run the binaries as: ``postgres`` for root, else None (oneself)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(_SYSTEM_USER)
    except KeyError:
        raise PostgresError(
            f"the tests run as root, whom initdb refuses, and there is no {_SYSTEM_USER!r} "
            "user to run PostgreSQL as: install Debian's postgresql package, which makes it"
        ) from None


def _run(
    argv: list[str], folder: Path, owner: pwd.struct_passwd | None, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run one PostgreSQL program as ``owner`` in ``folder``; an error with its output
    and the log if it fails."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    as_owner: dict[str, Any] = {}
    if owner is not None:
        as_owner = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
        env.update(HOME=owner.pw_dir, USER=owner.pw_name, LOGNAME=owner.pw_name)
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=folder,
            env=env,
            umask=0o077,
            **as_owner,
        )
    except subprocess.TimeoutExpired as exc:
        raise PostgresError(
            f"{' '.join(argv)} took over {timeout:g} s\n{_log_tail(folder)}"
        ) from exc
    if done.returncode != 0:
        raise PostgresError(
            f"{' '.join(argv)} exited with {done.returncode}:\n{done.stdout}{done.stderr}"
            f"{_log_tail(folder)}"
        )
    return done


def _conf_value(value: str | int) -> str:
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("'", "''") + "'"


def _initdb(bindir: Path, folder: Path, owner: pwd.struct_passwd | None) -> None:
    """Make the cluster and append the harness's settings to its postgresql.conf."""
    _run(
        [
            str(bindir / "initdb"),
            "-D",
            str(folder / _DATA),
            "-U",
            SUPERUSER,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ],
        folder,
        owner,
        timeout=60,
    )
    settings: dict[str, str | int] = {
        "listen_addresses": HOST,
        "unix_socket_directories": str(folder),
        "password_encryption": "scram-sha-256",
        "max_connections": 200,
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
    }
    with (folder / _DATA / "postgresql.conf").open("a") as conf:
        conf.write("\n# tests/postgres.py\n")
        conf.writelines(f"{k} = {_conf_value(v)}\n" for k, v in settings.items())


def _start(bindir: Path, folder: Path, owner: pwd.struct_passwd | None) -> int:
    """Start the server on a free port and wait until it takes connections; the port.
    If another process took the port first, stop what started and try another."""
    for attempt in range(1, _START_ATTEMPTS + 1):
        port = _free_port()
        logged = len(_read_log(folder))
        try:
            _run(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(folder / _DATA),
                    "-l",
                    str(folder / _LOG),
                    "-o",
                    f"-p {port}",
                    "-w",
                    "-t",
                    str(START_TIMEOUT),
                    "start",
                ],
                folder,
                owner,
                timeout=START_TIMEOUT + 10,
            )
            return port
        except PostgresError:
            taken = "could not bind" in _read_log(folder)[logged:]
            if not taken or attempt == _START_ATTEMPTS:
                raise
            _stop(bindir, folder, owner)
    raise AssertionError("unreachable")


def _stop(bindir: Path, folder: Path, owner: pwd.struct_passwd | None) -> None:
    """Stop the server if it runs: fast (ending the sessions), else at once."""
    data = folder / _DATA
    if not (data / "postmaster.pid").exists():
        return
    pg_ctl = str(bindir / "pg_ctl")
    try:
        _run(
            [pg_ctl, "-D", str(data), "-m", "fast", "-w", "-t", str(STOP_TIMEOUT), "stop"],
            folder,
            owner,
            timeout=STOP_TIMEOUT + 10,
        )
    except PostgresError:
        if (data / "postmaster.pid").exists():
            _run(
                [pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
                folder,
                owner,
                timeout=STOP_TIMEOUT + 10,
            )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _superuser(server: PostgresServer) -> psycopg.Connection[Any]:
    """A connection as the superuser over the Unix socket (trusted, no password)."""
    try:
        return psycopg.connect(
            host=str(server.folder),
            port=server.port,
            user=SUPERUSER,
            dbname="postgres",
            autocommit=True,
            connect_timeout=10,
        )
    except psycopg.OperationalError as exc:
        raise PostgresError(
            f"could not connect as {SUPERUSER} over {server.folder}: {exc}\n"
            f"{_log_tail(server.folder)}"
        ) from exc


def _create_role(server: PostgresServer) -> None:
    with _superuser(server) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                sql.Identifier(server.user), sql.Literal(server.password)
            )
        )


def _read_log(folder: Path) -> str:
    try:
        return (folder / _LOG).read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _log_tail(folder: Path, lines: int = 40) -> str:
    tail = _read_log(folder).splitlines()[-lines:]
    return "PostgreSQL log:\n" + "\n".join(tail) if tail else "PostgreSQL logged nothing."
