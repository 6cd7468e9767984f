"""Writing build output: atomic, and only when the bytes change."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from feedpub.errors import OutputError


@dataclass(frozen=True, slots=True)
class SyncReport:
    written: tuple[str, ...]
    unchanged: tuple[str, ...]
    removed: tuple[str, ...]

    def __str__(self) -> str:
        return (
            f"{len(self.written)} written, {len(self.unchanged)} unchanged, "
            f"{len(self.removed)} removed"
        )


def write_atomic(path: Path, data: bytes, *, durable: bool = True) -> bool:
    """Make ``path`` hold ``data``; return False, touching nothing, when it already does.

    The bytes go to a temporary file in the same folder, which then replaces
    ``path`` in one step, so a reader never sees half a file. ``durable=False``
    skips flushing them to the disk first, for files that are only a cache.
    """
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    import tempfile  # here: a build with nothing to write need not import it

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            if durable:
                stream.flush()
                os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes 0600; feeds are public
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return True


@contextlib.contextmanager
def writing_to(root: Path) -> Iterator[None]:
    """Report a failed write under ``root`` as an ``OutputError`` naming the file."""
    try:
        yield
    except OSError as exc:
        where = exc.filename or root
        raise OutputError(f"cannot write {where}: {exc.strerror or exc}") from None


def remove_stale(root: Path, current: Collection[str], managed: Collection[str]) -> list[str]:
    """Remove files under ``root`` named in ``managed`` that are not ``current``
    (a tag that lost its posts), and the folders they leave empty."""
    removed: list[str] = []
    for path in sorted(root.rglob("*")) if root.is_dir() else ():
        rel = path.relative_to(root).as_posix()
        if path.name in managed and path.is_file() and rel not in current:
            path.unlink()
            removed.append(rel)
            _remove_empty_parents(path.parent, root)
    return removed


def _remove_empty_parents(folder: Path, root: Path) -> None:
    while folder != root and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent
