"""Serving the feed folder: only the files the last build listed in its
manifest, with ETag and Last-Modified for conditional requests."""

from __future__ import annotations

import mimetypes
import os
from email.utils import formatdate, parsedate_to_datetime

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from feedpub.feeds import FILE_NAMES, MEDIA_TYPES
from feedpub.output import ManifestReader

MEDIA_BY_NAME = {FILE_NAMES[kind]: media for kind, media in MEDIA_TYPES.items()} | {
    "feed.xsl": "text/xsl"
}
FEED_POLICY = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'"


def _not_modified(request: Request, etag: str, mtime: float) -> bool:
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        wanted = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in wanted or etag.removeprefix("W/") in wanted
    if_modified_since = request.headers.get("if-modified-since")
    if if_modified_since:
        try:
            return int(mtime) <= parsedate_to_datetime(if_modified_since).timestamp()
        except (TypeError, ValueError):
            return False
    return False


class FeedFiles:
    """The endpoint for ``feeds.base_url``: a path not in the manifest is 404,
    whatever else the folder holds, so nothing but feeds can leak from it."""

    def __init__(self, manifest: ManifestReader) -> None:
        self.root = manifest.root
        self.manifest = manifest

    async def serve(self, request: Request) -> Response:
        name = request.path_params["path"]
        if name not in self.manifest.current().files:
            return PlainTextResponse("not found\n", status_code=404)
        path = self.root / name
        try:
            with path.open("rb") as stream:
                stat = os.fstat(stream.fileno())
                data = stream.read()
        except OSError:  # removed since the manifest was read
            return PlainTextResponse("not found\n", status_code=404)
        etag = f'W/"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
        headers = {
            "ETag": etag,
            "Last-Modified": formatdate(stat.st_mtime, usegmt=True),
            "Cache-Control": "public, max-age=300",
        }
        if _not_modified(request, etag, stat.st_mtime):
            return Response(status_code=304, headers=headers)
        media = (
            MEDIA_BY_NAME.get(path.name)
            or mimetypes.guess_type(path.name)[0]
            or "application/octet-stream"
        )
        if path.suffix == ".xml":
            # Feed readers get application/rss+xml or atom+xml. Browsers show those as
            # raw text and apply feed.xsl only to application/xml, so a page load
            # (which asks for text/html) gets that, with a policy that lets the XSLT run.
            headers["Vary"] = "Accept"
            headers["Content-Security-Policy"] = FEED_POLICY
            if "text/html" in request.headers.get("accept", ""):
                media = "application/xml"
        if media.startswith(("text/", "application/")) and not media.endswith("octet-stream"):
            media += "; charset=utf-8"
        return Response(data, headers=headers, media_type=media)
