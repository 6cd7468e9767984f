"""The state database every part of the store shares: SQLite (a file readable by
its owner only) or PostgreSQL, through SQLAlchemy Core, migrated by Alembic to
one schema, and the plain statements that run on either.

SQLAlchemy opens, pools and migrates the connections; the statements
themselves go straight to the driver's cursor (sqlite3, psycopg), written once
with ``:name`` parameters: through SQLAlchemy each cost a send a third more CPU
(bench/send_rate.py). Connections are in autocommit mode: a read is one
statement, and a change is one explicit transaction (``BEGIN IMMEDIATE`` on
SQLite, which takes the write lock at once, so two writers never deadlock on
an upgrade from a read lock).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import NullPool

from feedpub.errors import StateError
from feedpub.model import StateLocation

# Alembic's newest revision (feedpub/store/migrations/versions); a database at it
# is opened without loading Alembic.
HEAD = "0008"
# The revision each PRAGMA user_version of a SQLite file made before Alembic is at.
_LEGACY_REVISIONS = {n: f"{n:04d}" for n in range(1, 8)}
# Taken by whoever migrates a PostgreSQL database, for the migration's transaction.
_MIGRATION_LOCK = 7_419_000
# A :name parameter, as the statements write them (psycopg's are %(name)s).
_PARAMETER = re.compile(r"(?<![:\w]):(\w+)")


class Row(Protocol):
    """A row of a result, its columns by name."""

    def __getitem__(self, column: str) -> Any: ...


class Conflict(Exception):
    """A change the database refused: it would break a unique or foreign key."""


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _private_file(path: Path, *, create: bool = True) -> None:
    """Make sure only its owner can read ``path`` (created if missing and ``create``):
    the state holds addresses and tokens.

    An existing file is never opened here: closing any descriptor of a database
    file drops every POSIX lock this process holds on it, those of SQLite's
    connections in other threads included, which lets two writers corrupt it.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if create:  # (made meanwhile by another connection, as ours would be: fine)
            with contextlib.suppress(FileExistsError):
                os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        return
    if mode & 0o077:  # made by an older release, or by hand
        os.chmod(path, 0o600)


def _digest(secret: str) -> str:
    """How a single-use secret is stored: a copy of the database opens no link."""
    return hashlib.sha256(secret.encode()).hexdigest()


def server_url(location: StateLocation, environ: Mapping[str, str] = os.environ) -> URL:
    """The PostgreSQL server ``location.url`` names, with the password from the
    environment variable ``location.password_env`` (when it is set)."""
    assert location.url is not None
    url = make_url(location.url).set(drivername="postgresql+psycopg")
    password = environ.get(location.password_env)
    return url.set(password=password) if password else url


def _sqlite_engine(path: Path) -> Engine:
    _private_file(path)
    # SQLite gives the -wal and -shm files the database's mode; these two may
    # be left from an older release.
    for end in ("-wal", "-shm"):
        _private_file(path.with_name(path.name + end), create=False)
    engine = sqlalchemy.create_engine(
        URL.create("sqlite+pysqlite", database=str(path)),
        isolation_level="AUTOCOMMIT",
        connect_args={"timeout": 30, "check_same_thread": False},
        poolclass=NullPool,
    )

    @event.listens_for(engine, "connect")
    def _pragmas(connection: Any, record: object) -> None:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA foreign_keys = ON")
        # In WAL mode, NORMAL makes each commit durable when the process dies
        # (kill -9 included); only a power cut can lose the latest commits.
        connection.execute("PRAGMA synchronous = NORMAL")

    return engine


class StateDatabase:
    """The state database one process uses, from any of its threads: opened and
    migrated once, then lent out as connections (``Store``)."""

    def __init__(self, location: StateLocation, environ: Mapping[str, str] = os.environ) -> None:
        self.location = location
        self.shared = location.url is not None
        self.name = (
            make_url(location.url).render_as_string(hide_password=True)
            if location.url
            else str(location.path)
        )
        self._statements: dict[str, str] = {}
        self._statements_lock = threading.Lock()
        try:
            if location.url is None:
                self.engine = _sqlite_engine(location.path)
            else:
                self.engine = sqlalchemy.create_engine(
                    server_url(location, environ),
                    isolation_level="AUTOCOMMIT",
                    pool_pre_ping=True,
                    # Up to one connection for each of the web app's 40 request
                    # threads, five kept open between bursts.
                    pool_size=5,
                    max_overflow=35,
                    connect_args={
                        "connect_timeout": 10,
                        "application_name": "feedpub",
                        # A daemon on a machine that vanished lets go of its
                        # locks once the server notices, within about a minute.
                        "keepalives": 1,
                        "keepalives_idle": 30,
                        "keepalives_interval": 10,
                        "keepalives_count": 3,
                    },
                )
            with self.engine.connect() as connection:
                self._migrate(connection)
        except (exc.SQLAlchemyError, OSError) as error:
            raise StateError(
                f"cannot use the state database {self.name}: {_reason(error)}"
            ) from None

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> StateDatabase:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def statement(self, sql: str) -> str:
        """``sql`` in the driver's own parameter style, made once."""
        found = self._statements.get(sql)
        if found is None:
            driver = _PARAMETER.sub(r"%(\1)s", sql.replace("%", "%%")) if self.shared else sql
            with self._statements_lock:
                found = self._statements.setdefault(sql, driver)
        return found

    def revision(self, connection: Connection) -> str | None:
        """The Alembic revision the database is at; a SQLite file made before
        Alembic by its PRAGMA user_version; None when it is empty."""
        inspector = sqlalchemy.inspect(connection)
        if inspector.has_table("alembic_version"):
            return connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        if not self.shared:
            version = int(connection.exec_driver_sql("PRAGMA user_version").scalar() or 0)
            return _LEGACY_REVISIONS.get(version)
        return None

    def _migrate(self, connection: Connection) -> None:
        if self._current(connection) == HEAD:  # without the write lock another holds
            return
        connection.exec_driver_sql("BEGIN" if self.shared else "BEGIN IMMEDIATE")
        try:
            if self.shared:
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
            self._upgrade(connection)
        except BaseException:
            connection.exec_driver_sql("ROLLBACK")
            raise
        connection.exec_driver_sql("COMMIT")

    def _current(self, connection: Connection) -> str | None:
        try:
            return connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        except exc.DBAPIError:
            return None

    def _upgrade(self, connection: Connection) -> None:
        from alembic import command
        from alembic.config import Config as AlembicConfig
        from alembic.script import ScriptDirectory

        settings = AlembicConfig()
        settings.set_main_option("script_location", "feedpub.store:migrations")
        settings.attributes["connection"] = connection
        found = self.revision(connection)
        known = {
            script.revision for script in ScriptDirectory.from_config(settings).walk_revisions()
        }
        if found is not None and found not in known:
            raise StateError(
                f"{self.name} was written by a newer feedpub (schema {found}); upgrade feedpub"
            )
        if found is not None and not sqlalchemy.inspect(connection).has_table("alembic_version"):
            command.stamp(settings, found)
        command.upgrade(settings, "head")


def _reason(error: BaseException) -> str:
    """What went wrong, in the driver's words, without SQLAlchemy's statement dump."""
    if isinstance(error, exc.DBAPIError) and error.orig is not None:
        error = error.orig
    return " ".join(str(error).split())  # one line, as every error feedpub prints


class Database:
    """One connection to the state database, for one thread at a time. Opened
    from a ``StateDatabase`` the caller keeps (the web app, the daemon), or from
    a location, which it then opens and closes with itself."""

    def __init__(self, state: StateDatabase | StateLocation | Path) -> None:
        if isinstance(state, Path):
            state = StateLocation(state)
        self._owned = not isinstance(state, StateDatabase)
        self.state = StateDatabase(state) if isinstance(state, StateLocation) else state
        self.shared = self.state.shared
        self.path = self.state.name
        try:
            self._connection = self.state.engine.connect()
        except exc.SQLAlchemyError as error:
            if self._owned:
                self.state.close()
            raise StateError(
                f"cannot use the state database {self.path}: {_reason(error)}"
            ) from None
        self._db = _Sql(self._connection.connection.dbapi_connection, self.state, self.path)
        # Rows a claim locks are passed over by the other claims under way
        # (SQLite's one writer at a time needs no such clause).
        self.skip_locked = " FOR UPDATE SKIP LOCKED" if self.shared else ""

    def close(self) -> None:
        self._connection.close()
        if self._owned:
            self.state.close()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self, *, snapshot: bool = False) -> Iterator[_Sql]:
        """One transaction: a write (SQLite's write lock taken at once), or with
        ``snapshot`` a read that sees one moment of the database throughout."""
        if snapshot:
            begin = "BEGIN ISOLATION LEVEL REPEATABLE READ" if self.shared else "BEGIN"
        else:
            begin = "BEGIN" if self.shared else "BEGIN IMMEDIATE"
        db = self._db
        db.run(begin)
        try:
            yield db
        except BaseException:
            db.run("ROLLBACK")
            raise
        db.run("COMMIT")

    @property
    def schema_version(self) -> str | None:
        return self.state.revision(self._connection)


class _Sql:
    """Plain statements with ``:name`` parameters, on one driver connection;
    its errors become StateError (Conflict for a broken key)."""

    def __init__(self, raw: Any, state: StateDatabase, name: str) -> None:
        self._raw = raw
        self._state = state
        self._name = name
        dbapi = state.engine.dialect.dbapi
        assert dbapi is not None
        self._errors = dbapi.Error, dbapi.IntegrityError
        if state.shared:
            from psycopg.rows import dict_row

            self._rows: Any = dict_row
        else:
            self._rows = sqlite3.Row

    def _cursor(self) -> Any:
        """A cursor whose rows give their columns by name."""
        if self._state.shared:
            return self._raw.cursor(row_factory=self._rows)
        cursor = self._raw.cursor()
        cursor.row_factory = self._rows
        return cursor

    def _execute(self, sql: str, params: Mapping[str, Any], *, many: bool = False) -> Any:
        cursor = self._cursor()
        error, conflict = self._errors
        try:
            if many:
                cursor.executemany(self._state.statement(sql), params)
            else:
                cursor.execute(self._state.statement(sql), params)
        except conflict as refused:
            raise Conflict(_reason(refused)) from None
        except error as failed:
            raise StateError(f"state database {self._name}: {_reason(failed)}") from None
        return cursor

    def one(self, sql: str, **params: Any) -> Row | None:
        row: Row | None = self._execute(sql, params).fetchone()
        return row

    def all(self, sql: str, **params: Any) -> list[Row]:
        return list(self._execute(sql, params).fetchall())

    def scalar(self, sql: str, **params: Any) -> Any:
        row = self._execute(sql, params).fetchone()
        if row is None:
            return None
        return next(iter(row.values())) if isinstance(row, dict) else row[0]

    def run(self, sql: str, **params: Any) -> int:
        """Run a change; how many rows it changed."""
        return int(self._execute(sql, params).rowcount)

    def many(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self._execute(sql, rows, many=True)  # type: ignore[arg-type]
