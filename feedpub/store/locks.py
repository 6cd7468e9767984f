"""One holder at a time of each job (the build, the digest, the bounce mailbox),
across processes and, with PostgreSQL, across machines.

SQLite: a file lock beside the state file. PostgreSQL: a session advisory lock,
on a connection held for the purpose. Either way the lock goes when its process
ends in any way, kill -9 included, so a crashed run never leaves a stale lock
(PostgreSQL notices a machine that vanished by its TCP keepalives).
"""

from __future__ import annotations

import fcntl
import os
import socket
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc
from sqlalchemy.engine import Connection

from feedpub.errors import StateError
from feedpub.store.database import StateDatabase, _private_file, _reason

# The first key of feedpub's advisory locks; the second names the job.
_LOCK_SPACE = 7_419


def holder_name(purpose: str) -> str:
    """Who holds a lock, as another process's error names it."""
    return f"{purpose}, pid {os.getpid()} on {socket.gethostname()}"


class JobLock:
    """A job's lock, once taken; ``release`` lets it go. A ``shared`` one is held
    by any number of processes at once, and keeps out those who want it alone."""

    def __init__(
        self, state: StateDatabase, job: str, purpose: str, *, shared: bool = False
    ) -> None:
        self._state = state
        self.job = job
        self._purpose = purpose
        self._shared = shared
        self._handle: int | None = None
        self._connection: Connection | None = None
        self._key = zlib.crc32(job.encode()) & 0x7FFFFFFF

    def take(self) -> bool:
        """Take the lock if no one holds it; False when another process does."""
        if self._state.shared:
            return self._take_advisory()
        path = self._state.location.path
        lock_path = path.with_name(f"{path.name}.{self.job}.lock")
        _private_file(lock_path)
        handle = os.open(lock_path, os.O_RDWR)
        try:
            fcntl.flock(handle, (fcntl.LOCK_SH if self._shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            return False
        if not self._shared:
            os.ftruncate(handle, 0)
            os.pwrite(handle, holder_name(self._purpose).encode(), 0)
        self._handle = handle
        return True

    def _take_advisory(self) -> bool:
        try:
            connection = self._state.engine.connect()
            taken = connection.exec_driver_sql(
                f"SELECT pg_try_advisory_lock{self._kind}({_LOCK_SPACE}, {self._key})"
            ).scalar()
            if not taken:
                connection.close()
                return False
            connection.exec_driver_sql(
                "SELECT set_config('application_name', %(name)s, false)",
                {"name": f"feedpub {self.job}: {holder_name(self._purpose)}"[:63]},
            )
        except exc.SQLAlchemyError as error:
            raise StateError(f"state database {self._state.name}: {_reason(error)}") from None
        self._connection = connection
        return True

    def held_elsewhere(self) -> bool:
        """Whether another process holds the lock now (it is taken and let go
        again to find out)."""
        if self.take():
            self.release()
            return False
        return True

    @property
    def _kind(self) -> str:
        return "_shared" if self._shared else ""

    def holder(self) -> str:
        """Who holds the lock now, as far as can be told."""
        if self._state.shared:
            with self._state.engine.connect() as connection:
                found = connection.exec_driver_sql(
                    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a"
                    " ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted"
                    f" AND l.classid = {_LOCK_SPACE} AND l.objid = {self._key}"
                ).scalar()
            return str(found or "unknown").removeprefix(f"feedpub {self.job}: ")
        path = self._state.location.path
        try:
            with open(path.with_name(f"{path.name}.{self.job}.lock"), "rb") as handle:
                return handle.read(200).decode(errors="replace").strip() or "unknown"
        except OSError:
            return "unknown"

    def release(self) -> None:
        if self._handle is not None:
            os.close(self._handle)
            self._handle = None
        if self._connection is not None:
            try:
                self._connection.exec_driver_sql(
                    f"SELECT pg_advisory_unlock{self._kind}({_LOCK_SPACE}, {self._key})"
                )
            except exc.SQLAlchemyError:
                pass  # the connection is gone, and the lock with it
            finally:
                self._connection.close()
                self._connection = None


@contextmanager
def job_lock(state: StateDatabase, job: str, purpose: str) -> Iterator[None]:
    """Hold ``job``'s lock for as long as the block runs; StateError at once
    when another process holds it."""
    lock = JobLock(state, job, purpose)
    if not lock.take():
        raise StateError(
            f"another feedpub process is running the {job} job on {state.name} "
            f"({lock.holder()}); try again when it has finished"
        )
    try:
        yield
    finally:
        lock.release()


# Held, shared, by each running 'feedpub worker'.
WORKERS = "workers"


def workers_running(state: StateDatabase) -> bool:
    """Whether any 'feedpub worker' runs on the state, on any machine."""
    return JobLock(state, WORKERS, "looking for workers").held_elsewhere()


@contextmanager
def announced(state: StateDatabase, worker: str) -> Iterator[None]:
    """Let the others tell that ``worker`` is alive while the block runs (see
    ``worker_alive``): with PostgreSQL, by a lock of its own."""
    if not state.shared:
        yield
        return
    lock = JobLock(state, f"worker {worker}", "worker")
    lock.take()
    try:
        yield
    finally:
        lock.release()


def worker_alive(state: StateDatabase, worker: str) -> bool:
    """Whether ``worker`` (named ``host:pid:tag``, as pipeline.worker_name makes
    it) still runs, so that what it holds is left to it until its leases end.
    One that died, even by kill -9, is known at once: with PostgreSQL its lock
    went with its connection; with SQLite (one machine) its process is gone."""
    if state.shared:
        return JobLock(state, f"worker {worker}", "looking for a worker").held_elsewhere()
    host, _, rest = worker.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
