"""What every request and response passes through: security headers, a cap on
request bodies, and one log line (never a traceback) for a request that fails."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("feedpub")

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'self' 'unsafe-inline'; img-src https: data:; "
        b"form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
# A subscribe or preferences form is a few hundred bytes.
FORM_BODY_LIMIT = 64 * 1024


async def _plain(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Guard:
    """The outermost layer: a request that fails inside is logged as one line,
    and answered 500 if nothing was sent yet."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            path = scope.get("path", "").encode("unicode_escape").decode()
            log.error(f"internal error on {scope.get('method', '')} {path}: {exc!r}")
            if scope["type"] == "http" and not started:
                await _plain(send, 500, "Something went wrong on our side.\n")


class SecurityHeaders:
    """Adds the security headers to every response, error pages included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in SECURITY_HEADERS if n not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


class BodyLimit:
    """Refuses a request body over ``limit`` bytes with 413, without reading the
    rest: at once when Content-Length says so, else as soon as the count passes it.
    Paths under a prefix of ``wider`` have the limit given there instead."""

    def __init__(
        self, app: ASGIApp, limit: int = FORM_BODY_LIMIT, wider: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.limit = limit
        self.wider = wider or {}

    def _limit(self, path: str) -> int:
        return next((n for prefix, n in self.wider.items() if path.startswith(prefix)), self.limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _plain(send, 400, "Content-Length is not a number.\n")
                return
            if int(declared) > limit:
                await _plain(send, 413, f"The request body is over {limit} bytes.\n")
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # Connection: close makes the server drop the rest unread.
                    raise HTTPException(
                        413,
                        f"The request body is over {limit} bytes.\n",
                        headers={"Connection": "close"},
                    )
            return message

        await self.app(scope, counted, send)
