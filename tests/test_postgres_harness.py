"""The private PostgreSQL harness: password logins over TCP, databases made and
dropped under open connections, and a server that is gone once the block ends."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.postgres import PostgresServer, running_postgres

# libpq reads no ~/.pgpass through a path that does not exist (/dev/null: a warning).
NO_PASSFILE = "/nonexistent/feedpub-tests/pgpass"


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    with running_postgres() as running:
        yield running


@pytest.fixture(autouse=True)
def no_client_password(monkeypatch: pytest.MonkeyPatch) -> None:
    """A password must come from the test alone, never from libpq's environment."""
    for name in ("PGPASSWORD", "PGPASSFILE", "PGSERVICE", "PGSERVICEFILE"):
        monkeypatch.delenv(name, raising=False)


def _connect(
    url: str, password: str | None = None, *, autocommit: bool = False
) -> psycopg.Connection[tuple[Any, ...]]:
    """Connect to ``url`` with ``password`` alone (None: none), never ~/.pgpass's."""
    return psycopg.connect(
        url, password=password, passfile=NO_PASSFILE, connect_timeout=10, autocommit=autocommit
    )


def test_the_role_logs_in_over_tcp_with_its_password(server: PostgresServer) -> None:
    assert server.host == "127.0.0.1"
    assert server.user == "feedpub"
    url = server.url("postgres")
    assert url == f"postgresql://feedpub@127.0.0.1:{server.port}/postgres"
    assert server.password not in url
    with _connect(url, password=server.password) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.info.host == "127.0.0.1"
        role = conn.execute(
            "SELECT current_user, rolcanlogin, rolcreatedb, rolsuper"
            " FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert role == ("feedpub", True, True, False)
        assert conn.execute("SELECT current_setting('server_encoding')").fetchone() == ("UTF8",)


@pytest.mark.parametrize("password", [None, "", "not-the-password"])
def test_a_login_without_the_password_is_refused(
    server: PostgresServer, password: str | None
) -> None:
    with pytest.raises(psycopg.OperationalError, match="password"):
        _connect(server.url("postgres"), password).close()


def test_the_server_logs_the_refused_login(server: PostgresServer) -> None:
    with pytest.raises(psycopg.OperationalError):
        _connect(server.url("postgres"), password="wrong").close()
    assert 'password authentication failed for user "feedpub"' in server.log()


def test_a_database_is_made_for_the_role_and_dropped_under_an_open_connection(
    server: PostgresServer,
) -> None:
    url = server.create_database("harness_round_trip")
    assert url == server.url("harness_round_trip")
    with _connect(url, password=server.password, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (n integer)")
        conn.execute("INSERT INTO t VALUES (7)")
        assert conn.execute("SELECT n FROM t").fetchone() == (7,)
        owner = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
        ).fetchone()
        assert owner == ("feedpub",)
        # The connection is still open: drop_database ends it.
        server.drop_database("harness_round_trip")
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        _connect(url, password=server.password).close()
    # The name is free again.
    server.create_database("harness_round_trip")
    server.drop_database("harness_round_trip")


def test_the_server_is_gone_after_the_block() -> None:
    with running_postgres() as running:
        with _connect(running.url("postgres"), password=running.password) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert "database system is ready to accept connections" in running.log()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((running.host, running.port), timeout=5).close()
    assert not running.folder.exists()
