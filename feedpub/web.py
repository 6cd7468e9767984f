"""The web application: feeds served right, double opt-in subscription,
one-click unsubscribe, preferences, and the archive of past issues.

The only module that imports Starlette. Pages come from templates/web/*.html.j2.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import mimetypes
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import nh3
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from feedpub import templating
from feedpub.collector import collect
from feedpub.config import Config
from feedpub.content.body import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, URL_SCHEMES
from feedpub.content.text import term_slug
from feedpub.delivery import Deliverer
from feedpub.errors import FeedpubError
from feedpub.feeds import FILE_NAMES, MEDIA_TYPES
from feedpub.mail import build_confirmation, message_name, personalise
from feedpub.store import Store
from feedpub.subscribers import check_email

log = logging.getLogger("feedpub")
MEDIA_BY_NAME = {FILE_NAMES[kind]: media for kind, media in MEDIA_TYPES.items()} | {
    "feed.xsl": "text/xsl"
}
FEED_POLICY = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'"
CSRF_COOKIE = "feedpub_csrf"
# The web version of an issue keeps the email's table layout and inline styles.
ARCHIVE_TAGS = ALLOWED_TAGS | {"table", "tbody", "tr", "td"}
ARCHIVE_ATTRIBUTES = {
    **ALLOWED_ATTRIBUTES,
    "*": ALLOWED_ATTRIBUTES["*"] | {"style"},
    "table": {"width", "cellpadding", "cellspacing", "border", "role"},
}
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


class SecurityHeaders:
    """Adds the security headers to every response."""

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


class RateLimiter:
    """At most ``limit`` events per key in any ``window`` seconds (kept in memory)."""

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.events: dict[str, deque[float]] = defaultdict(deque)

    def allow(self, key: str) -> bool:
        now = self.clock()
        events = self.events[key]
        while events and events[0] <= now - self.window:
            events.popleft()
        if len(events) >= self.limit:
            return False
        events.append(now)
        return True


def _etag(path: Path) -> tuple[str, str, float]:
    stat = path.stat()
    return (
        f'W/"{stat.st_mtime_ns:x}-{stat.st_size:x}"',
        formatdate(stat.st_mtime, usegmt=True),
        stat.st_mtime,
    )


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


class WebApp:
    """The routes, with the config, the secret and a way to send mail."""

    def __init__(
        self,
        config: Config,
        secret: str,
        make_deliverer: Callable[[Config], Deliverer],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        limits: tuple[RateLimiter, RateLimiter] | None = None,
    ) -> None:
        self.config = config
        self.newsletter = config.require_newsletter()
        self.secret = secret.encode()
        self.make_deliverer = make_deliverer
        self.clock = clock
        self.serializer = URLSafeTimedSerializer(secret, salt="feedpub-confirm")
        self.env = templating.environment(config.templates_dir)
        self.per_client, self.per_address = limits or (
            RateLimiter(10, 600),  # subscribe attempts from one address in 10 minutes
            RateLimiter(3, 86400),  # confirmation emails to one mailbox in a day
        )
        self.terms = self._site_terms()

    def _site_terms(self) -> list[str]:
        """Every tag and category on the site, for the preferences page."""
        names: dict[str, str] = {}
        for post in collect(self.config.content, self.config.site).posts:
            for name in (*post.tags, *post.categories):
                names.setdefault(term_slug(name), name)
        return sorted(names.values(), key=str.casefold)

    # Pages.

    def _csrf_pair(self, request: Request) -> tuple[str, str]:
        cookie = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
        field = hmac.new(self.secret, cookie.encode(), hashlib.sha256).hexdigest()
        return cookie, field

    def _csrf_ok(self, request: Request, form: FormData) -> bool:
        cookie = request.cookies.get(CSRF_COOKIE)
        field = form.get("csrf")
        if not cookie or not isinstance(field, str):
            return False
        expected = hmac.new(self.secret, cookie.encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, field)

    def page(self, request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        cookie, field = self._csrf_pair(request)
        html = templating.render(
            self.env,
            f"web/{name}.html.j2",
            {
                "site": self.config.site,
                "newsletter": self.newsletter,
                "csrf": field,
                "language": self.config.site.language.lower(),
                "paths": self.paths,
                **context,
            },
        )
        response = HTMLResponse(html, status_code=status)
        secure = urlsplit(self.config.web.public_url).scheme == "https"
        response.set_cookie(CSRF_COOKIE, cookie, httponly=True, samesite="lax", secure=secure)
        return response

    def notice(
        self, request: Request, title: str, text: str, status: int = 200, **extra: Any
    ) -> HTMLResponse:
        return self.page(request, "notice", status, title=title, text=text, **extra)

    def _unknown_link(self, request: Request) -> HTMLResponse:
        return self.notice(
            request,
            "This link is not valid",
            "We could not find that subscription. It may have been removed.",
            404,
        )

    def _expired_form(self, request: Request) -> HTMLResponse:
        return self.notice(request, "Form expired", "Please reload the page and try again.", 403)

    @property
    def paths(self) -> dict[str, str]:
        return {
            "subscribe": "/newsletter/subscribe",
            "issues": "/issues/",
            "unsubscribe": urlsplit(self.newsletter.unsubscribe_url).path,
            "manage": urlsplit(self.newsletter.manage_url).path,
            "feeds": urlsplit(self.config.feeds.base_url).path,
        }

    def link(self, pattern: str, token: str) -> str:
        return pattern.replace("{token}", token)

    def _store(self) -> Store:
        return Store(self.config.state_path)

    # Feeds.

    async def feed_file(self, request: Request) -> Response:
        root = self.config.feeds.output_dir.resolve()
        path = (root / request.path_params["path"]).resolve()
        if root not in path.parents or not path.is_file():
            return PlainTextResponse("not found\n", status_code=404)
        etag, modified, mtime = _etag(path)
        headers = {"ETag": etag, "Last-Modified": modified, "Cache-Control": "public, max-age=300"}
        if _not_modified(request, etag, mtime):
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
        return Response(path.read_bytes(), headers=headers, media_type=media)

    # Subscribing.

    async def subscribe(self, request: Request) -> Response:
        if request.method == "GET":
            return self.page(request, "subscribe")
        form = await request.form()
        if not self._csrf_ok(request, form):
            return self._expired_form(request)
        client = request.client.host if request.client else "unknown"
        if not self.per_client.allow(client):
            return self.notice(
                request, "Too many requests", "Please try again in a few minutes.", 429
            )
        try:
            address = check_email(str(form.get("email", "")))
        except ValueError:
            return self.page(
                request,
                "subscribe",
                400,
                error="That is not an email address.",
                email=str(form.get("email", "")),
            )
        name = " ".join(str(form.get("name", "")).split())[:100]
        if self.per_address.allow(address.casefold()):
            try:
                self._request_confirmation(address, name)
            except FeedpubError as exc:  # the mail server is down: say so, do not pretend
                log.error(f"subscribe: {exc}")
                return self.notice(
                    request,
                    "We could not send the email",
                    "Sending the confirmation email failed on our side. Please try again later.",
                    503,
                )
        # The same answer whether or not the address is known: no one can learn
        # who subscribes by trying addresses here.
        return self.page(request, "check_inbox", email=address)

    def _request_confirmation(self, address: str, name: str) -> None:
        now = self.clock()
        with self._store() as store:
            subscriber = store.subscriber(address)
            if subscriber is None:
                subscriber = store.add_subscriber(address, name, (), "pending", now)
            elif subscriber.status in ("unsubscribed", "bounced"):
                subscriber = store.set_status(address, "pending", now) or subscriber
        if subscriber.status != "pending":
            return  # already active: nothing to confirm, and no mail to annoy them
        signed = self.serializer.dumps({"t": subscriber.token})
        link = urljoin(self.config.web.public_url, f"newsletter/confirm/{signed}")
        context = {
            "site": self.config.site,
            "newsletter": self.newsletter,
            "link": link,
            "hours": self.config.web.confirm_hours,
            "language": self.config.site.language.lower(),
        }
        message = build_confirmation(
            self.newsletter,
            address,
            name,
            link,
            now,
            templating.render(self.env, "confirm.txt.j2", context),
            templating.render(self.env, "confirm.html.j2", context),
        )
        self._send(message, address)

    def _send(self, message: EmailMessage, address: str) -> None:
        deliverer = self.make_deliverer(self.config)
        try:
            name = message_name(message)
            outcome = deliverer.send(
                message.as_bytes(), self.newsletter.sender_email, address, name
            )
        finally:
            deliverer.close()
        if outcome.result != "sent":
            raise FeedpubError(f"confirmation to {address} not sent: {outcome.reply}")

    async def confirm(self, request: Request) -> Response:
        try:
            data = self.serializer.loads(
                request.path_params["signed"], max_age=self.config.web.confirm_hours * 3600
            )
        except SignatureExpired:
            return self.notice(
                request,
                "This link has expired",
                "Confirmation links work for a limited time. Subscribe again to get a new one.",
                400,
                subscribe_again=True,
            )
        except BadSignature:
            return self.notice(
                request,
                "This link is not valid",
                "Please copy the whole link from the email, or subscribe again.",
                400,
                subscribe_again=True,
            )
        token = str(data.get("t", "")) if isinstance(data, dict) else ""
        with self._store() as store:
            subscriber = store.subscriber_by_token(token)
            if subscriber is None or subscriber.status not in ("pending", "active"):
                return self.notice(
                    request,
                    "This link is no longer valid",
                    "Subscribe again if you would like the newsletter.",
                    400,
                    subscribe_again=True,
                )
            if subscriber.status == "pending":
                store.set_status_by_token(token, "active", self.clock())
        return self.page(
            request,
            "confirmed",
            manage=self.link(self.paths["manage"], token),
            unsubscribe=self.link(self.paths["unsubscribe"], token),
        )

    # Unsubscribing and preferences.

    async def unsubscribe(self, request: Request) -> Response:
        token = request.path_params["token"]
        with self._store() as store:
            subscriber = store.subscriber_by_token(token)
        if subscriber is None:
            return self._unknown_link(request)
        if request.method == "GET":
            return self.page(
                request,
                "unsubscribe",
                email=subscriber.email,
                done=subscriber.status == "unsubscribed",
            )
        form = await request.form()
        one_click = form.get("List-Unsubscribe") == "One-Click"
        if not one_click and not self._csrf_ok(request, form):
            return self._expired_form(request)
        with self._store() as store:
            store.set_status_by_token(token, "unsubscribed", self.clock())
        if one_click:  # RFC 8058: a mail provider's POST; no page needed
            return PlainTextResponse("unsubscribed\n")
        return self.page(request, "unsubscribe", email=subscriber.email, done=True)

    async def manage(self, request: Request) -> Response:
        token = request.path_params["token"]
        with self._store() as store:
            subscriber = store.subscriber_by_token(token)
        if subscriber is None:
            return self._unknown_link(request)
        saved = False
        if request.method == "POST":
            form = await request.form()
            if not self._csrf_ok(request, form):
                return self._expired_form(request)
            known = {term_slug(t): t for t in self.terms}
            chosen = [
                known[term_slug(str(t))] for t in form.getlist("tags") if term_slug(str(t)) in known
            ]
            with self._store() as store:
                store.set_preferences(token, chosen, form.get("paused") == "on", self.clock())
                subscriber = store.subscriber_by_token(token) or subscriber
            saved = True
        wanted = {term_slug(t) for t in subscriber.tags}
        return self.page(
            request,
            "manage",
            subscriber=subscriber,
            saved=saved,
            terms=[(t, term_slug(t) in wanted) for t in self.terms],
            unsubscribe=self.link(self.paths["unsubscribe"], token),
        )

    # The archive.

    async def issues(self, request: Request) -> Response:
        with self._store() as store:
            issues = store.issues()
        zone = self.config.site.timezone
        listed = [
            (n, when.astimezone(zone).strftime("%Y-%m-%d"), subject) for n, when, subject in issues
        ]
        return self.page(request, "issues", issues=listed)

    async def issue(self, request: Request) -> Response:
        number = request.path_params["number"]
        with self._store() as store:
            known = [n for n, _, _ in store.issues()]
            if number not in known:
                return self.notice(
                    request, "No such issue", "That issue does not exist (yet).", 404
                )
            variant = store.variant(number, "")
        public = {
            "name": self.newsletter.default_name,
            "email": "",
            "unsubscribe_url": urljoin(
                self.config.web.public_url, self.paths["subscribe"].lstrip("/")
            ),
            "manage_url": urljoin(self.config.web.public_url, self.paths["subscribe"].lstrip("/")),
        }
        html = personalise(variant.html, public, markup=True)
        body = html.split("<body", 1)[-1].split(">", 1)[-1].rsplit("</body>", 1)[0]
        clean = nh3.clean(
            body,
            tags=set(ARCHIVE_TAGS),
            attributes={tag: set(names) for tag, names in ARCHIVE_ATTRIBUTES.items()},
            url_schemes=set(URL_SCHEMES),
            link_rel=None,
        )
        return self.page(request, "issue", number=number, subject=variant.subject, body=clean)

    async def home(self, request: Request) -> Response:
        return RedirectResponse(self.paths["subscribe"], status_code=303)


def create_app(
    config: Config,
    secret: str,
    make_deliverer: Callable[[Config], Deliverer],
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    limits: tuple[RateLimiter, RateLimiter] | None = None,
) -> Starlette:
    web = WebApp(config, secret, make_deliverer, clock, limits)
    paths = web.paths

    def route(
        path: str, endpoint: Callable[[Request], Awaitable[Response]], methods: list[str]
    ) -> Route:
        return Route(path, endpoint, methods=methods)

    routes = [
        route("/", web.home, ["GET"]),
        route(paths["feeds"] + "{path:path}", web.feed_file, ["GET", "HEAD"]),
        route(paths["subscribe"], web.subscribe, ["GET", "POST"]),
        route("/newsletter/confirm/{signed}", web.confirm, ["GET"]),
        route(paths["unsubscribe"], web.unsubscribe, ["GET", "POST"]),
        route(paths["manage"], web.manage, ["GET", "POST"]),
        route("/issues/", web.issues, ["GET"]),
        route("/issues/{number:int}/", web.issue, ["GET"]),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        return web.notice(request, "Page not found", "There is nothing at this address.", 404)

    async def server_error(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("Something went wrong on our side. Please try again later.\n", 500)

    return Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders), Middleware(GZipMiddleware, minimum_size=500)],
        exception_handlers={404: not_found, 500: server_error},
    )


class WebServer:
    """uvicorn serving the app, in the foreground or beside the daemon."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        import uvicorn

        self.server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, log_level="warning", proxy_headers=True)
        )
        self.thread: threading.Thread | None = None

    def run(self) -> None:
        """Serve until SIGINT or SIGTERM."""
        self.server.run()

    def start(self) -> None:
        """Serve from a background thread (the daemon's signals stay with the daemon)."""
        self.thread = threading.Thread(target=self.server.run, name="web", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)
