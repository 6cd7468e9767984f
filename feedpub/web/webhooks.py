"""The providers' webhooks: a route for each provider set up in ``webhooks``,
which reads a bounded body in bounded time, has ``feedpub.webhooks`` check and
read it, and records its events. The network the checks need (SNS signing
certificates, subscription confirmations) is reached from worker threads, each
GET bounded in time and size."""

from __future__ import annotations

import http.client
import logging
import os
import ssl
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from datetime import datetime
from urllib.parse import urlsplit

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from feedpub.config import Config
from feedpub.errors import FeedpubError, StateError, WebhookRefused
from feedpub.store import StateDatabase, Store
from feedpub.web.forms import Limiter, within_limit
from feedpub.webhooks import (
    SIGNATURE_WINDOW,
    Accepted,
    read_mailgun,
    read_postmark,
    read_sendgrid,
    read_ses,
)

log = logging.getLogger("feedpub")

WEBHOOKS_PATH = "/webhooks/"
# A sender gets this long to send its whole body; then 408.
BODY_SECONDS = 10.0
# A certificate or a confirmation's reply is a few KiB.
MAX_FETCH_BYTES = 64 * 1024
FETCH_SECONDS = 10.0
# A token is kept while a replay of its request would still be on time.
TOKEN_MEMORY = 2 * SIGNATURE_WINDOW

Fetch = Callable[[str], bytes]
Remember = Callable[[str], bool]
Reader = Callable[[bytes, datetime, Remember], Accepted]


class FetchFailed(FeedpubError):
    """A GET that did not give its body: the sender is asked to try again later."""


def https_get(
    url: str,
    *,
    timeout: float = FETCH_SECONDS,
    max_bytes: int = MAX_FETCH_BYTES,
    context: ssl.SSLContext | None = None,
) -> bytes:
    """The body of ``url``, fetched over HTTPS with the server's certificate
    checked, no redirect followed, in at most ``timeout`` seconds in all and at
    most ``max_bytes`` bytes; anything else raises FetchFailed."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise FetchFailed(f"{url} is not an https address")
    deadline = time.monotonic() + timeout

    late = f"{parts.hostname} did not answer within {timeout:g} seconds"

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise FetchFailed(late)
        return left

    connection = http.client.HTTPSConnection(
        parts.hostname,
        parts.port,
        timeout=timeout,
        context=context or ssl.create_default_context(),
    )
    try:
        target = parts.path or "/"
        connection.request("GET", f"{target}?{parts.query}" if parts.query else target)
        sock = connection.sock  # the response takes it over when the server closes
        assert sock is not None
        sock.settimeout(remaining())
        response = connection.getresponse()
        if response.status != 200:
            raise FetchFailed(f"{parts.hostname} answered {response.status} {response.reason}")
        declared = response.getheader("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise FetchFailed(f"{parts.hostname} sent more than {max_bytes} bytes")
        body = b""
        while chunk := response.read1(max_bytes + 1 - len(body)):
            body += chunk
            if len(body) > max_bytes:
                raise FetchFailed(f"{parts.hostname} sent more than {max_bytes} bytes")
            sock.settimeout(remaining())
        return body
    except TimeoutError:
        raise FetchFailed(late) from None
    except (OSError, http.client.HTTPException) as exc:
        raise FetchFailed(f"{parts.hostname}: {exc}") from None
    finally:
        connection.close()


class CertificateCache:
    """The SNS signing certificates fetched, by URL, for ``max_age`` seconds:
    SNS signs with one certificate for months, so few notifications wait on a
    fetch. At most ``max_entries`` are kept, the least recently used go first."""

    def __init__(
        self,
        fetch: Fetch,
        max_entries: int = 8,
        max_age: float = 86400,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fetch = fetch
        self.max_entries = max_entries
        self.max_age = max_age
        self.clock = clock
        self.entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, url: str) -> bytes:
        with self.lock:
            found = self.entries.get(url)
            if found is not None and self.clock() - found[0] < self.max_age:
                self.entries.move_to_end(url)
                return found[1]
        pem = self.fetch(url)
        with self.lock:
            self.entries[url] = (self.clock(), pem)
            self.entries.move_to_end(url)
            while len(self.entries) > self.max_entries:
                self.entries.popitem(last=False)
        return pem


class SnsConfirmer:
    """Confirms SNS subscriptions by a GET of their SubscribeURL, from a thread of
    its own (started when one waits, gone when none does), at most ``max_waiting``
    waiting."""

    def __init__(self, fetch: Fetch, max_waiting: int = 16) -> None:
        self.fetch = fetch
        self.max_waiting = max_waiting
        self.waiting: deque[str] = deque()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def submit(self, url: str) -> bool:
        """Queue ``url``; False when too many wait already."""
        with self.lock:
            if len(self.waiting) >= self.max_waiting:
                return False
            self.waiting.append(url)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="sns-confirm", daemon=True)
                self.thread.start()
        return True

    def _run(self) -> None:
        while True:
            with self.lock:
                if not self.waiting:
                    self.thread = None
                    return
                url = self.waiting.popleft()
            try:
                self.fetch(url)
            except Exception as exc:  # this thread confirms the next ones all the same
                log.error(
                    f"webhooks: SES: could not confirm the SNS subscription ({exc}); "
                    "request the confirmation again in the SNS console"
                )
            else:
                log.info("webhooks: SES: confirmed an SNS subscription")


def _refusal(status: int, reason: str, **headers: str) -> Response:
    return PlainTextResponse(reason + "\n", status, headers=headers or None)


class Webhooks:
    """The webhook endpoints; secrets are read from the environment per request,
    so one set later is taken without a restart."""

    def __init__(
        self,
        config: Config,
        state: StateDatabase,
        clock: Callable[[], datetime],
        clients: Limiter,
        fetch: Fetch = https_get,
        body_seconds: float = BODY_SECONDS,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self.config = config
        self.state = state
        self.clock = clock
        self.clients = clients
        self.body_seconds = body_seconds
        self.environ = environ
        self.certificates = CertificateCache(fetch)
        self.confirmer = SnsConfirmer(fetch)
        self.policy = config.delivery

    def routes(self) -> list[Route]:
        """A route for each provider set up; the others are not found."""
        hooks = self.config.webhooks
        chosen = {
            "ses": hooks.ses_topics is not None,
            "postmark": hooks.postmark is not None,
            "mailgun": hooks.mailgun_key_env is not None,
            "sendgrid": hooks.sendgrid_key is not None,
        }
        return [
            Route(WEBHOOKS_PATH + name, getattr(self, name), methods=["POST"])
            for name, configured in chosen.items()
            if configured
        ]

    def _secret(self, provider: str, variable: str) -> str | None:
        secret = self.environ.get(variable)
        if not secret:
            log.error(
                f"webhooks: {provider} is set up, but the environment variable {variable} "
                "that holds its secret is not set; its requests are refused with 503"
            )
        return secret or None

    async def ses(self, request: Request) -> Response:
        topics = self.config.webhooks.ses_topics or frozenset()

        def read(body: bytes, now: datetime, remember: Remember) -> Accepted:
            return read_ses(
                body, fetch_certificate=self.certificates.get, now=now, allowed_topics=topics
            )

        return await self._take(request, "SES", read)

    async def postmark(self, request: Request) -> Response:
        assert self.config.webhooks.postmark is not None
        user, variable = self.config.webhooks.postmark
        password = self._secret("Postmark", variable)
        if password is None:
            return _refusal(503, "Postmark: this server has no password for its webhook yet")
        authorization = request.headers.get("authorization")

        def read(body: bytes, now: datetime, remember: Remember) -> Accepted:
            return read_postmark(body, authorization, user=user, password=password)

        return await self._take(request, "Postmark", read)

    async def mailgun(self, request: Request) -> Response:
        assert self.config.webhooks.mailgun_key_env is not None
        key = self._secret("Mailgun", self.config.webhooks.mailgun_key_env)
        if key is None:
            return _refusal(503, "Mailgun: this server has no signing key for its webhook yet")

        def read(body: bytes, now: datetime, remember: Remember) -> Accepted:
            return read_mailgun(body, signing_key=key, now=now, remember_token=remember)

        return await self._take(request, "Mailgun", read)

    async def sendgrid(self, request: Request) -> Response:
        public_key = self.config.webhooks.sendgrid_key or ""
        signature = request.headers.get("x-twilio-email-event-webhook-signature")
        timestamp = request.headers.get("x-twilio-email-event-webhook-timestamp")

        def read(body: bytes, now: datetime, remember: Remember) -> Accepted:
            return read_sendgrid(body, signature, timestamp, public_key=public_key, now=now)

        return await self._take(request, "SendGrid", read)

    async def _take(self, request: Request, provider: str, read: Reader) -> Response:
        if not await within_limit(self.clients, request, self.config.web.trusted_proxies):
            return _refusal(
                429, f"{provider}: too many requests from one client", **{"Retry-After": "60"}
            )
        try:
            with anyio.fail_after(self.body_seconds):
                body = await request.body()
        except TimeoutError:
            return _refusal(
                408,
                f"{provider}: the body did not arrive within {self.body_seconds:g} seconds",
                Connection="close",
            )
        try:
            accepted, recorded, seen = await run_in_threadpool(self._record, body, read)
        except WebhookRefused as exc:
            log.warning(f"webhooks: refused ({exc.status}): {exc.reason}")
            return _refusal(exc.status, exc.reason)
        except FetchFailed as exc:
            log.error(f"webhooks: {provider}: the signing certificate could not be fetched: {exc}")
            return _refusal(503, f"{provider}: the signing certificate could not be fetched")
        except StateError as exc:
            log.error(f"webhooks: {provider}: {exc}")
            return _refusal(503, f"{provider}: the events could not be recorded; try again")
        if accepted.confirm_url is not None and not self.confirmer.submit(accepted.confirm_url):
            return _refusal(503, f"{provider}: too many subscriptions wait to be confirmed")
        return JSONResponse({"recorded": recorded, "seen_before": seen})

    def _record(self, body: bytes, read: Reader) -> tuple[Accepted, int, int]:
        """Check and read ``body``, then record its events: how many were new, and
        how many recorded before. A token remembered for a request whose events
        could not be recorded is forgotten, so that the provider's retry is taken."""
        now = self.clock()
        taken: list[str] = []
        with Store(self.state) as store:

            def remember(token: str) -> bool:
                new = store.remember_webhook_token(token, now, now - TOKEN_MEMORY)
                if new:
                    taken.append(token)
                return new

            accepted = read(body, now, remember)
            recorded = seen = 0
            try:
                for event in accepted.events:
                    if store.record_event(event, None, now, self.policy).seen_before:
                        seen += 1
                    else:
                        recorded += 1
            except StateError:
                for token in taken:
                    store.forget_webhook_token(token)
                raise
        return accepted, recorded, seen
