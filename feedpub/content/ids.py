"""Stable ids for posts and feeds."""

from __future__ import annotations

import functools
import uuid
from pathlib import PurePosixPath


@functools.cache
def _namespace(site_id: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_DNS, site_id)


def post_id(site_id: str, rel_path: str) -> str:
    """An id that survives a move to another domain, scheme or permalink pattern:
    a name-based UUID of the site's ``id`` and the file's path without extension."""
    namespace = _namespace(site_id)
    return f"urn:uuid:{uuid.uuid5(namespace, str(PurePosixPath(rel_path).with_suffix('')))}"
