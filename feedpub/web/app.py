"""The application: routes and layers, and the server that runs it beside the
confirmation worker, reloadable in place."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from feedpub.config import Config
from feedpub.confirmations import CONFIRM_PATH, ConfirmationSender, ConfirmationWorker
from feedpub.delivery import Deliverer
from feedpub.errors import FeedpubError
from feedpub.output import ManifestReader
from feedpub.store import StateDatabase
from feedpub.web.archive import Archive
from feedpub.web.confirm import ConfirmLinks
from feedpub.web.edge import BodyLimit, Guard, SecurityHeaders
from feedpub.web.feeds import FeedFiles
from feedpub.web.forms import Csrf, Limiter, RateLimiter, SharedRateLimiter
from feedpub.web.pages import ISSUES_PATH, SUBSCRIBE_PATH, Pages
from feedpub.web.status import STATUS_PATH, StatusPage
from feedpub.web.subscriptions import Subscriptions
from feedpub.web.webhooks import BODY_SECONDS, WEBHOOKS_PATH, Fetch, Webhooks, https_get
from feedpub.webhooks import MAX_WEBHOOK_BYTES

log = logging.getLogger("feedpub")

MIN_SECRET_BYTES = 32
MAKE_SECRET = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


def web_secret(config: Config, environ: Mapping[str, str] = os.environ) -> str:
    """The secret the app signs with, from the environment; refused when short."""
    name = config.web.secret_env
    secret = environ.get(name, "")
    if not secret:
        raise FeedpubError(
            f"the web app signs its links with a secret read from the environment variable "
            f"{name} (web.secret_env), which is not set; make one with {MAKE_SECRET}"
        )
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise FeedpubError(
            f"the secret in {name} (web.secret_env) is {len(secret.encode())} bytes long; "
            f"it needs at least {MIN_SECRET_BYTES}, so that it cannot be guessed: "
            f"make one with {MAKE_SECRET}"
        )
    return secret


def _limiter(state: StateDatabase, bucket: str, limit: int, window: float) -> Limiter:
    """In memory; in the state database with PostgreSQL (state.url), so that a
    client meets one limit however many web processes serve it."""
    if not state.shared:
        return RateLimiter(limit, window)
    return SharedRateLimiter(state, bucket, limit, window)


def subscribe_limiter(state: StateDatabase) -> Limiter:
    """Subscribe attempts from one client: 10 in 10 minutes."""
    return _limiter(state, "subscribe", 10, 600)


def webhook_limiter(state: StateDatabase) -> Limiter:
    """Webhook requests from one client: 1200 a minute (a provider reporting a
    large send's bounces comes from a few addresses)."""
    return _limiter(state, "webhooks", 1200, 60)


def create_app(
    config: Config,
    secret: str,
    *,
    on_queued: Callable[[], None] = lambda: None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    per_client: Limiter | None = None,
    webhook_clients: Limiter | None = None,
    fetch: Fetch = https_get,
    webhook_body_seconds: float = BODY_SECONDS,
    environ: Mapping[str, str] = os.environ,
    state: StateDatabase | None = None,
) -> ASGIApp:
    """The web app for ``config``. ``on_queued`` is called when a subscribe
    request waits for its confirmation email (to wake the worker). ``fetch`` GETs
    what the webhooks need from the network (SNS certificates and confirmations);
    ``environ`` holds the webhooks' secrets and the status page's token. Every
    request borrows a connection of ``state`` (opened here when not given)."""
    state = state or StateDatabase(config.state)
    secure = urlsplit(config.web.public_url).scheme == "https"
    pages = Pages(config, Csrf(secret.encode(), secure))
    manifest = ManifestReader(config.feeds.output_dir)
    subscriptions = Subscriptions(
        config, state, pages, per_client or subscribe_limiter(state), on_queued, clock, manifest
    )
    archive = Archive(config, state, pages)
    paths = pages.paths
    webhooks = Webhooks(
        config,
        state,
        clock,
        webhook_clients or webhook_limiter(state),
        fetch,
        webhook_body_seconds,
        environ,
    )

    async def home(request: Request) -> Response:
        return RedirectResponse(pages.public(SUBSCRIBE_PATH), status_code=303)

    routes = [
        Route("/", home, methods=["GET"]),
        Route(
            paths["feeds"] + "{path:path}",
            FeedFiles(manifest).serve,
            methods=["GET", "HEAD"],
        ),
        Route(SUBSCRIBE_PATH, subscriptions.subscribe, methods=["GET", "POST"]),
        Route(
            f"/{CONFIRM_PATH}{{nonce}}",
            ConfirmLinks(config, state, pages, clock).confirm,
            methods=["GET", "POST"],
        ),
        Route(paths["unsubscribe"], subscriptions.unsubscribe, methods=["GET", "POST"]),
        Route(paths["manage"], subscriptions.manage, methods=["GET", "POST"]),
        Route(ISSUES_PATH, archive.issues, methods=["GET"]),
        Route(ISSUES_PATH + "{number:int}/", archive.issue, methods=["GET"]),
        Route(STATUS_PATH, StatusPage(config, state, pages, environ).show, methods=["GET"]),
        *webhooks.routes(),
    ]

    _ = pages.gettext

    async def not_found(request: Request, exc: Exception) -> Response:
        return pages.notice(
            request, _("Page not found"), _("There is nothing at this address."), 404
        )

    async def server_error(request: Request, exc: Exception) -> Response:
        text = _("Something went wrong on our side. Please try again later.")
        return PlainTextResponse(text + "\n", 500)

    app = Starlette(
        routes=routes,
        middleware=[Middleware(GZipMiddleware, minimum_size=500)],
        exception_handlers={404: not_found, 500: server_error},
    )
    # A path without its slash is not found, rather than redirected to an
    # address built from the request's Host header.
    app.router.redirect_slashes = False
    return Guard(SecurityHeaders(BodyLimit(app, wider={WEBHOOKS_PATH: MAX_WEBHOOK_BYTES})))


class Reloadable:
    """Hands each request to the current app; a reload swaps it between requests."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class WebServer:
    """uvicorn serving the app, in the foreground or beside the daemon, with the
    worker that sends the confirmation emails it queues."""

    def __init__(
        self,
        config: Config,
        secret: str,
        make_deliverer: Callable[[Config], Deliverer],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        import uvicorn

        self.config = config
        self.secret = secret
        self.make_deliverer = make_deliverer
        self.clock = clock
        # One pool of connections for the server's life (the state's place is
        # read at the start only), and the rate limits kept across reloads.
        self.state = StateDatabase(config.state)
        self.per_client = subscribe_limiter(self.state)
        self.webhook_clients = webhook_limiter(self.state)
        self.worker = ConfirmationWorker(ConfirmationSender(config, make_deliverer, clock))
        self.app = Reloadable(self._app(config))
        self.server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                host=config.web.host,
                port=config.web.port,
                log_level="warning",
                # Clients are named by web.trusted_proxies alone (forms.client_key).
                proxy_headers=False,
                lifespan="off",
            )
        )
        self.thread: threading.Thread | None = None

    def _app(self, config: Config) -> ASGIApp:
        return create_app(
            config,
            self.secret,
            on_queued=self.worker.wake.set,
            clock=self.clock,
            per_client=self.per_client,
            webhook_clients=self.webhook_clients,
            state=self.state,
        )

    def run(self) -> None:
        """Serve until SIGINT or SIGTERM."""
        self.worker.start()
        try:
            self.server.run()
        finally:
            self.worker.stop()
            self.state.close()

    def start(self) -> None:
        """Serve from a background thread (the daemon's signals stay with the daemon)."""
        self.thread = threading.Thread(target=self.run, name="web", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)

    def reload(self, config: Config) -> None:
        """Serve with ``config`` from the next request on; the address it listens
        on changes only with a restart."""
        self.app.app = self._app(config)
        self.worker.sender = ConfirmationSender(config, self.make_deliverer, self.clock)
        old, new = self.config.web, config.web
        if (old.host, old.port) != (new.host, new.port):
            log.warning(
                f"web.host and web.port take effect at the next start; still serving on "
                f"{old.host}:{old.port}"
            )
        self.config = config
