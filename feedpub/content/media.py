"""Local media files a post points at: where they are, and their size.

Kept apart from reading posts: a build that reads no post still measures the
cover images its feeds show (see build._measure_covers).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from urllib.parse import unquote, urlsplit


def local_file(source: str, local_dirs: tuple[Path, Path] | None) -> str | None:
    """Where a cover image lives when it is local: beside the post (``cover.png``)
    or in the static folder (``/images/cover.png``); None for remote images."""
    parts = urlsplit(source)
    if local_dirs is None or parts.scheme or parts.netloc or not parts.path:
        return None
    post_dir, static_dir = local_dirs
    relative = unquote(parts.path)
    if relative.startswith("/"):
        return str(static_dir / relative.lstrip("/"))
    return str(post_dir / relative)


def local_size(file: str | None) -> int | None:
    """The size of a local image file; None when there is none."""
    if file is None:
        return None
    try:
        found = os.stat(file)
    except (OSError, ValueError):
        return None
    return found.st_size if stat.S_ISREG(found.st_mode) else None
