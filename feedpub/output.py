"""Writing build output: atomic, only when the bytes change, with the mode the
file needs; and the manifest of the files feedpub keeps in the feed folder."""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from feedpub.errors import OutputError

# Feeds are public; outbox messages and caches (addresses, personal links) are
# for their owner only. A folder feedpub creates gets the mode its files need.
PUBLIC_FILE, PUBLIC_FOLDER = 0o644, 0o755
PRIVATE_FILE, PRIVATE_FOLDER = 0o600, 0o700

# The files a build left in the feed folder, written there by the build itself.
MANIFEST_NAME = ".feedpub-manifest.json"


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


def _make_folders(folder: Path, mode: int) -> None:
    """Create ``folder`` and its missing parents with exactly ``mode``; a folder
    that already exists keeps its own, so feedpub never loosens one."""
    if folder.is_dir():
        return
    _make_folders(folder.parent, mode)
    try:
        folder.mkdir(mode)
    except FileExistsError:
        if folder.is_dir():  # made meanwhile by another worker of this build
            return
        raise
    os.chmod(folder, mode)  # mkdir's mode is narrowed by the umask


def _write_temporary(path: Path, data: bytes, *, public: bool, durable: bool) -> str:
    """A new file beside ``path`` holding ``data``, to be moved into place."""
    import tempfile  # here: a build with nothing to write need not import it

    _make_folders(path.parent, PUBLIC_FOLDER if public else PRIVATE_FOLDER)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            os.fchmod(stream.fileno(), PUBLIC_FILE if public else PRIVATE_FILE)
            stream.write(data)
            if durable:
                stream.flush()
                os.fsync(stream.fileno())
    except BaseException:
        os.unlink(temporary)
        raise
    return temporary


def write_atomic(path: Path, data: bytes, *, public: bool = False, durable: bool = True) -> bool:
    """Make ``path`` hold ``data``, readable by everyone when ``public`` and by its
    owner only otherwise; return False, touching nothing, when it already does.

    The bytes go to a temporary file in the same folder, which then replaces
    ``path`` in one step, so a reader never sees half a file. ``durable=False``
    skips flushing them to the disk first, for files that are only a cache.
    """
    try:
        stat = path.stat()
        loose = not public and stat.st_mode & 0o077  # left readable by an older release
        if not loose and stat.st_size == len(data) and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    temporary = _write_temporary(path, data, public=public, durable=durable)
    try:
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return True


def write_once(path: Path, data: bytes) -> bool:
    """Create ``path`` holding ``data``, readable by its owner only, never replacing
    a file: return False when it already holds exactly ``data`` (written before),
    and raise ``FileExistsError`` when it holds anything else.

    The bytes are written to a temporary file first and then linked into place,
    so ``path`` never holds half of them, even after a crash.
    """
    temporary = _write_temporary(path, data, public=False, durable=True)
    try:
        os.link(temporary, path)
    except FileExistsError:
        if path.read_bytes() != data:
            raise FileExistsError(errno.EEXIST, "holds other bytes", str(path)) from None
        return False
    finally:
        os.unlink(temporary)
    return True


@contextlib.contextmanager
def writing_to(root: Path) -> Iterator[None]:
    """Report a failed write under ``root`` as an ``OutputError`` naming the file."""
    try:
        yield
    except OSError as exc:
        where = exc.filename or root
        raise OutputError(f"cannot write {where}: {exc.strerror or exc}") from None


def _plain_relative(entry: object) -> bool:
    """Whether ``entry`` names a file inside the folder, spelled one way only."""
    if not isinstance(entry, str) or "\0" in entry or entry in (".", MANIFEST_NAME):
        return False
    path = PurePosixPath(entry)
    return path.as_posix() == entry and not path.is_absolute() and ".." not in path.parts


@dataclass(frozen=True, slots=True)
class Manifest:
    """What the last build left in the feed folder: its files, as paths relative
    to the folder, and each term feed's folder with the term's name as the feeds
    name it (what the preferences page offers)."""

    files: frozenset[str] = frozenset()
    terms: Mapping[str, str] = field(default_factory=dict)


def read_manifest(root: Path) -> Manifest:
    """``root``'s manifest: empty when it is missing, unreadable or damaged. A
    plain list (feedpub before term names were kept) gives its files."""
    try:
        found = json.loads((root / MANIFEST_NAME).read_bytes())
    except (OSError, ValueError):
        return Manifest()
    if isinstance(found, list):
        found = {"files": found, "terms": {}}
    if not isinstance(found, dict):
        return Manifest()
    files, terms = found.get("files"), found.get("terms")
    if not isinstance(files, list) or not all(map(_plain_relative, files)):
        return Manifest()
    if not isinstance(terms, dict) or not all(isinstance(name, str) for name in terms.values()):
        terms = {}
    return Manifest(frozenset(files), terms)


def write_manifest(root: Path, files: Collection[str], terms: Mapping[str, str]) -> None:
    """Write ``root``'s manifest: the files sorted, the terms by folder."""
    listed = {"files": sorted(files), "terms": dict(sorted(terms.items()))}
    data = json.dumps(listed, ensure_ascii=False, indent=0) + "\n"
    write_atomic(root / MANIFEST_NAME, data.encode(), public=True)


class ManifestReader:
    """A feed folder's manifest, read again only when the file changed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._manifest = Manifest()
        self._stamp: tuple[int, int] | None = None

    def current(self) -> Manifest:
        try:
            stat = (self.root / MANIFEST_NAME).stat()
            stamp: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            stamp = None
        if stamp != self._stamp:
            self._manifest = read_manifest(self.root) if stamp else Manifest()
            self._stamp = stamp
        return self._manifest


def remove_stale(root: Path, stale: Iterable[str]) -> list[str]:
    """Remove the files under ``root`` that ``stale`` names (feeds an earlier build
    wrote and this one did not: a tag that lost its posts), and the folders
    they leave empty."""
    removed: list[str] = []
    for rel in sorted(stale):
        path = root / rel
        if path.is_file():
            path.unlink()
            removed.append(rel)
            _remove_empty_parents(path.parent, root)
    return removed


def _remove_empty_parents(folder: Path, root: Path) -> None:
    while folder != root and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent
