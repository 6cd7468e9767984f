"""Links between posts: the permalink that a Markdown link or a Hugo
``ref``/``relref`` names, found by Hugo's own rules.

Hugo resolves a reference (hugolib/pagecollections.go, getContentNodeForRef)
by trying, in order:

1. a path that does not start with ``/``, relative to the current page: to the
   folder that holds it, which for a page bundle (``post/index.md``) is the
   folder around the bundle; and to the file's own folder;
2. a path starting with ``.`` stops there;
3. the path from the content folder;
4. a bare name (no ``/`` in it): the one page of that base name anywhere in the
   content folder, none when two share it.

A path names a page with or without its ``.md``; a bundle by its folder. The
target is read by the same reader as every post, so that the link and the
target's own feed item agree on its permalink.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

from feedpub.config import ContentConfig, SiteConfig
from feedpub.content.files import is_content_file
from feedpub.content.post import read_post
from feedpub.content.urls import BUNDLE_INDEX, CONTENT_SUFFIXES
from feedpub.errors import ContentError


class PostNames:
    """Content files by their base name, lower-cased (a bundle goes by its
    folder's name): what a bare-name reference needs. Made from the file list the
    build has anyway, and indexed on the first bare-name lookup, so that builds
    whose posts make none (most) pay nothing and no lookup scans the folder."""

    def __init__(self, rels: Iterable[str]) -> None:
        self._rels = tuple(rels)
        self._files: dict[str, tuple[str, ...]] | None = None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PostNames) and other._rels == self._rels

    def __hash__(self) -> int:
        return hash(self._rels)

    def get(self, name: str) -> tuple[str, ...]:
        """The files whose base name is ``name``."""
        if self._files is None:
            found: dict[str, list[str]] = {}
            for rel in self._rels:
                found.setdefault(_base_name(rel), []).append(rel)
            self._files = {base: tuple(files) for base, files in found.items()}
        return self._files.get(name, ())


def _stem(file_name: str) -> str:
    """A file name without its content suffix (``post.md`` -> ``post``)."""
    for suffix in CONTENT_SUFFIXES:
        if file_name.lower().endswith(suffix):
            return file_name[: -len(suffix)]
    return file_name


def _base_name(rel: str) -> str:
    folder, file_name = posixpath.split(rel)
    stem = _stem(file_name)
    return (posixpath.basename(folder) if stem in BUNDLE_INDEX and folder else stem).lower()


def _page_path(path: str) -> str:
    """The page a path names, as a path without suffix: ``a/b.md``, ``a/b/``,
    ``a/b/index.md`` and ``a/b`` all name ``a/b``."""
    folder, file_name = posixpath.split(path.rstrip("/"))
    stem = _stem(file_name)
    return folder if stem in BUNDLE_INDEX else posixpath.join(folder, stem)


def _file_of(content: ContentConfig, page: str) -> str | None:
    """The content file of the page at ``page`` (relative to ``content.dir``):
    ``page.md``, or a bundle's ``page/index.md``; None when there is none."""
    page = posixpath.normpath(page)
    if page in (".", "..") or page.startswith("../"):
        return None
    candidates = [page + suffix for suffix in CONTENT_SUFFIXES]
    candidates += [f"{page}/{stem}{suffix}" for stem in BUNDLE_INDEX for suffix in CONTENT_SUFFIXES]
    for rel in candidates:
        if (content.dir / rel).is_file() and is_content_file(content, rel):
            return rel
    return None


def _find(content: ContentConfig, from_rel: str, path: str, names: PostNames | None) -> str | None:
    page = _page_path(path)
    if not path.startswith("/"):
        folder, file_name = posixpath.split(from_rel)
        bundle = _stem(file_name) == "index"
        container = posixpath.dirname(folder) if bundle else folder
        for base in dict.fromkeys((container, folder)):
            found = _file_of(content, posixpath.join(base, page))
            if found is not None:
                return found
        if path.startswith("."):
            return None
    found = _file_of(content, page.lstrip("/"))
    if found is not None or names is None or "/" in path.rstrip("/"):
        return found
    matches = names.get(_base_name(page))
    return matches[0] if len(matches) == 1 else None


def resolve_post_link(
    content: ContentConfig,
    site: SiteConfig,
    from_rel: str,
    target: str,
    names: PostNames | None = None,
) -> str | None:
    """The absolute permalink of the post that ``target`` names from the post at
    ``from_rel`` (relative to ``content.dir``), with ``target``'s ``#fragment``;
    None when it names no post (a draft, or a file that is not a usable post).

    A bare name found nowhere near the current page is looked up in ``names``
    (see ``PostNames``); without it, such a name resolves to nothing.
    """
    path, hash_mark, fragment = target.strip().partition("#")
    path = unquote(path)
    if urlsplit(path).scheme or path.startswith("//"):
        return None
    if not path:  # a fragment alone names the current post
        path = "/" + from_rel if hash_mark else ""
    rel = _find(content, from_rel, path, names) if path else None
    if rel is None:
        return None
    try:
        post, _ = read_post(
            content.dir / rel,
            rel,
            site,
            content.permalink,
            keep_body=False,
            cover_fields=content.cover_fields,
        )
    except (ContentError, OSError):
        return None
    if post.draft:
        return None
    return post.url + (f"#{fragment}" if fragment else "")
