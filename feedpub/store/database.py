"""The SQLite connection every part of the store shares: opening and migrating
the file (readable by its owner only), transactions, and the value helpers."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from feedpub.errors import StateError
from feedpub.store.schema import MIGRATIONS


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


class Database:
    """An open state database, migrated to the current schema."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            _private_file(path)
            # SQLite gives the -wal and -shm files the database's mode; these
            # two may be left from an older release.
            for end in ("-wal", "-shm"):
                _private_file(path.with_name(path.name + end), create=False)
            self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA foreign_keys = ON")
            # In WAL mode, NORMAL makes each commit durable when the process dies
            # (kill -9 included); only a power cut can lose the latest commits.
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise StateError(f"cannot use the state database {path}: {exc}") from None

    def close(self) -> None:
        self._db.close()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            raise StateError(f"state database {self.path}: {exc}") from None

    def _migrate(self) -> None:
        if self.schema_version == len(MIGRATIONS):  # without the write lock another holds
            return
        with self._transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise StateError(
                    f"{self.path} was written by a newer feedpub (schema {version}); "
                    "upgrade feedpub"
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])
