"""Post URLs as Hugo makes them: slugs from file and folder names, ``url:``,
and permalink patterns in Hugo's syntax or feedpub's ``{slug}`` form."""

from __future__ import annotations

import posixpath
from datetime import datetime
from urllib.parse import unquote_plus
from zoneinfo import ZoneInfo

from feedpub.config_schema import HUGO_ATTRIBUTE, hugo_pattern
from feedpub.content.text import hugo_path, short_digest, url_path

# A page bundle's content file: its folder names the page (Hugo's leaf and branch bundles).
BUNDLE_INDEX = ("index", "_index")
# The suffixes of Markdown content files, which a reference to a page may leave out.
CONTENT_SUFFIXES = (".md", ".markdown")

_MONTH_NAMES = (
    "January February March April May June July August September October November December"
).split()
_DAY_NAMES = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()


def file_names(rel_path: str) -> tuple[str, str, str]:
    """The post's file name, content base name and section, as Hugo's
    ``:filename``, ``:contentbasename`` and ``:section`` take them: a bundle
    goes by its folder's name, and a leaf bundle's folder is no section."""
    folder, file_name = posixpath.split(rel_path)
    stem = posixpath.splitext(file_name)[0]
    folders = folder.split("/") if folder else []
    base = folders[-1] if stem in BUNDLE_INDEX and folders else stem
    if stem == "index":
        folders = folders[:-1]
    section = path_name(folders[0]) if folders else ""
    return ("" if stem == "_index" else base), base, section


def page_folder(rel_path: str) -> str:
    """The folders above the post (above a leaf bundle's folder) as Hugo writes
    them in its default URLs, each followed by ``/``: ``post/tech/`` for
    ``post/Tech/a.md``, "" at the top of the content folder."""
    folder, file_name = posixpath.split(rel_path)
    folders = folder.split("/") if folder else []
    if posixpath.splitext(file_name)[0] == "index":
        folders = folders[:-1]
    return "".join(path_name(name) + "/" for name in folders)


def path_name(name: str) -> str:
    """A file or folder name as Hugo puts it in a page's path: lower-cased, each
    space a dash (NormalizePathStringBasic), then sanitised."""
    return hugo_path(name.lower().replace(" ", "-"))


def post_slug(meta_slug: str | None, rel_path: str) -> str:
    """The last part of the post's path: its ``slug:`` or its file's (or
    bundle's) name, as Hugo writes either in a URL."""
    candidate = hugo_path(meta_slug) if meta_slug else path_name(file_names(rel_path)[1])
    return candidate or "post-" + short_digest(rel_path)


def hugo_expand(pattern: str, slug: str | None, title: str, rel_path: str, when: datetime) -> str:
    """``pattern``'s Hugo attributes replaced as Hugo's PermalinkExpander replaces
    them (each text value urlized), then unescaped as Hugo unescapes the result."""
    filename, base, section = file_names(rel_path)

    def urlize(text: str) -> str:
        return url_path(hugo_path(text))

    named = urlize(slug) if slug else ""
    values = {
        "slug": named or urlize(title),
        "title": urlize(title),
        "filename": urlize(filename),
        "slugorfilename": named or urlize(filename),
        "contentbasename": urlize(base),
        "slugorcontentbasename": named or urlize(base),
        "section": section,
        "year": str(when.year),
        "month": f"{when.month:02d}",
        "monthname": _MONTH_NAMES[when.month - 1],
        "day": f"{when.day:02d}",
        "weekday": str(when.isoweekday() % 7),
        "weekdayname": _DAY_NAMES[when.weekday()],
        "yearday": str(when.timetuple().tm_yday),
    }
    # content.permalink holds known attributes only; a url: may hold any word.
    expanded = HUGO_ATTRIBUTE.sub(lambda m: values.get(m[1], m[0]), pattern)
    return unquote_plus(expanded.replace("\\:", ":"))


def relative_url(
    permalink: str,
    written: str | None,
    meta_slug: str | None,
    slug: str,
    title: str,
    rel_path: str,
    when: datetime,
    zone: ZoneInfo,
) -> str:
    """The post's URL relative to the site: its ``url:`` (``written``) as Hugo
    keeps it (not sanitised; a folder unless it has a dot), else the permalink
    pattern: Hugo's, sanitised and always a folder (its dates in the date's own
    zone, as Hugo's), or feedpub's ``{slug}`` form (its dates in ``zone``)."""
    if written is not None:
        if ":" in written:
            written = hugo_expand(written, meta_slug, title, rel_path, when)
        if ".." in written:
            written = posixpath.normpath("/" + written)
        if written.endswith("/") or "." not in written:
            written = written.rstrip("/") + "/"
        return url_path(written.lstrip("/"))
    if hugo_pattern(permalink):
        path = hugo_path(hugo_expand(permalink, meta_slug, title, rel_path, when))
        return url_path(path) + "/" if path else ""
    local = when.astimezone(zone)
    return permalink.format(
        folder=url_path(page_folder(rel_path)) if "{folder}" in permalink else "",
        slug=url_path(slug),
        year=f"{local.year:04d}",
        month=f"{local.month:02d}",
        day=f"{local.day:02d}",
    )
