"""One process at a time: a lock beside the state file."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from feedpub.errors import StateError
from feedpub.store.database import _private_file


@contextmanager
def exclusive_lock(state_path: Path, purpose: str) -> Iterator[None]:
    """Hold a lock beside the state file for as long as the block runs.

    The operating system drops it when the process ends in any way, kill -9
    included, so a crashed run never leaves a stale lock.
    """
    lock_path = state_path.with_name(state_path.name + ".lock")
    _private_file(lock_path)
    handle = os.open(lock_path, os.O_RDWR)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(handle, 100, 0).decode(errors="replace").strip()
            raise StateError(
                f"another feedpub process is using {state_path} ({holder or 'unknown'}); "
                "try again when it has finished"
            ) from None
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"{purpose}, pid {os.getpid()}".encode(), 0)
        yield
    finally:
        os.close(handle)
