"""Which files in the content folder are posts: the include and exclude globs,
hidden entries left out, and Hugo's leaf bundles (a folder with an ``index.md``
is one page: the other files in it and below it, Markdown too, are that page's
resources, not pages of their own).
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Sequence
from pathlib import Path

from feedpub.config import ContentConfig

# A content file's path relative to the content folder, size and modification
# time (nanoseconds): what tells that it changed. A plain tuple, since every
# build makes one for every file (a site may hold 100,000 posts).
FileStat = tuple[str, int, int]

# A leaf bundle's page file is named index.<extension> (Hugo's branch bundles,
# _index.<extension>, hold pages of their own and are left to the globs).
LEAF_INDEX = "index."


def glob_pattern(pattern: str) -> re.Pattern[str]:
    """A glob over POSIX relative paths: ``**/`` spans folders, ``*`` and ``?`` do not."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def _any_of(patterns: Sequence[str]) -> re.Pattern[str] | None:
    """One expression matching what any of the globs matches; None for no globs."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{glob_pattern(p).pattern})" for p in patterns))


class _Globs:
    """The include and exclude globs, compiled once."""

    def __init__(self, include: Sequence[str], exclude: Sequence[str]) -> None:
        self.wanted = _any_of(include)
        self.unwanted = _any_of(exclude)

    def match(self, rel: str) -> bool:
        return (
            self.wanted is not None
            and self.wanted.fullmatch(rel) is not None
            and (self.unwanted is None or self.unwanted.fullmatch(rel) is None)
        )

    def leaf_index(self, prefix: str, names: Sequence[str]) -> str | None:
        """The page file of the folder at ``prefix`` (not the content folder
        itself) when that folder is a leaf bundle, else None."""
        if not prefix:
            return None
        pages = sorted(n for n in names if n.startswith(LEAF_INDEX) and self.match(prefix + n))
        return pages[0] if pages else None


def _walk(directory: Path, include: Sequence[str], exclude: Sequence[str]) -> list[FileStat]:
    """Matching files with their size and modification time (nanoseconds), sorted
    by path; one stat call each, no pathlib objects (a site may hold 100,000 posts)."""
    globs = _Globs(include, exclude)
    found: list[FileStat] = []

    def walk(folder: str, prefix: str) -> None:
        try:
            entries = [e for e in os.scandir(folder) if not e.name.startswith(".")]
        except OSError:
            return
        index = globs.leaf_index(prefix, [e.name for e in entries])
        for entry in entries:
            rel = prefix + entry.name
            if entry.is_dir(follow_symlinks=False):  # as os.walk: no loops through links
                if index is None:
                    walk(entry.path, rel + "/")
            elif (entry.name == index) if index is not None else globs.match(rel):
                try:
                    stat = entry.stat()
                except OSError:
                    continue  # gone since the folder was listed
                found.append((rel, stat.st_size, stat.st_mtime_ns))

    walk(str(directory), "")
    found.sort()
    return found


def find_files(directory: Path, include: Sequence[str], exclude: Sequence[str]) -> list[str]:
    """Relative POSIX paths under ``directory`` that are posts, sorted."""
    return [rel for rel, _, _ in _walk(directory, include, exclude)]


def scan(content: ContentConfig) -> tuple[FileStat, ...]:
    """Every content file with its size and modification time, sorted by path."""
    return tuple(_walk(content.dir, content.include, content.exclude))


def is_content_file(content: ContentConfig, rel: str) -> bool:
    """Whether ``scan`` lists the file at POSIX path ``rel`` (when it exists):
    a few directory listings, for the folders above it, instead of a scan."""
    if any(part.startswith(".") for part in rel.split("/")):
        return False
    globs = _Globs(content.include, content.exclude)
    if not globs.match(rel):
        return False
    folder, name = posixpath.split(rel)
    parts = folder.split("/") if folder else []
    for depth in range(len(parts), 0, -1):
        prefix = "/".join(parts[:depth]) + "/"
        try:
            names = os.listdir(content.dir / prefix)
        except OSError:
            return False
        index = globs.leaf_index(prefix, names)
        if index is not None:
            return depth == len(parts) and name == index
    return True
