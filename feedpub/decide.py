"""Which road a build takes, told from what the last build left and what the
folders hold now, before any content file is read.

Pure: no I/O, only data in and a decision out (the caller observes the disk).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from feedpub.buildcache import Stamp, Summary
from feedpub.content.files import FileStat


@dataclass(frozen=True, slots=True)
class Observed:
    """What a build sees before reading any content file."""

    files: tuple[FileStat, ...]  # the content files, sorted by path
    outputs: Mapping[str, Stamp | None]  # the last build's outputs as they are now
    manifest: Stamp | None
    covers: Mapping[str, int | None]  # the last build's shown cover files' sizes now
    strict: bool


@dataclass(frozen=True, slots=True)
class Unchanged:
    """Nothing to do: the feeds are what a build would write."""


@dataclass(frozen=True, slots=True)
class Grow:
    """No file was removed or renamed: read the changed and added files, and
    grow the last selection with them where they allow it."""

    changed: tuple[str, ...]
    added: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Full:
    """Collect every post (from the index where it holds them), select and plan."""

    reason: str


Decision = Unchanged | Grow | Full


def decide(previous: Summary | None, observed: Observed, now: datetime) -> Decision:
    """The cheapest road that gives what a build without the cache gives."""
    if previous is None:
        return Full("no cache")
    if previous.valid_until is not None and now >= previous.valid_until:
        return Full("a scheduled post came due")
    if observed.strict and previous.problems:
        return Full("strict: the problems must stop the build")
    if observed.files == previous.stats:
        intact = all(
            observed.outputs.get(rel) == record.stamp for rel, record in previous.outputs.items()
        )
        if intact and observed.manifest == previous.manifest and observed.covers == previous.covers:
            return Unchanged()
        return Grow((), ())
    current = {rel for rel, _, _ in observed.files}
    if any(rel not in current for rel, _, _ in previous.stats):
        return Full("a file was removed or renamed")
    before = {rel: (size, mtime) for rel, size, mtime in previous.stats}
    changed = tuple(
        rel for rel, *stamp in observed.files if rel in before and before[rel] != tuple(stamp)
    )
    added = tuple(rel for rel, _, _ in observed.files if rel not in before)
    return Grow(changed, added)
