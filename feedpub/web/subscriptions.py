"""Subscribing with double opt-in, one-click unsubscribe, and preferences.

A subscribe form only queues a request (one write, the same for every address,
in the same time); the confirmation email is composed and sent by
``feedpub.confirmations`` outside the request. Store calls run in a worker
thread, so a busy database never holds up other requests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from feedpub.config import Config
from feedpub.content.text import term_slug
from feedpub.errors import StateError
from feedpub.model import Subscriber
from feedpub.output import Manifest, ManifestReader
from feedpub.store import INACTIVE, StateDatabase, Store
from feedpub.subscribers import check_email
from feedpub.web.forms import Limiter, within_limit
from feedpub.web.pages import Pages

log = logging.getLogger("feedpub")


def offered_terms(manifest: Manifest) -> list[str]:
    """The terms the last build wrote feeds for, named as the feeds name them
    (the most used spelling), one per term, for the preferences page."""
    named = {term_slug(name): name for name in manifest.terms.values()}
    return sorted(named.values(), key=str.casefold)


class Subscriptions:
    """The subscribe, unsubscribe and manage endpoints."""

    def __init__(
        self,
        config: Config,
        state: StateDatabase,
        pages: Pages,
        per_client: Limiter,
        on_queued: Callable[[], None],
        clock: Callable[[], datetime],
        manifest: ManifestReader,
    ) -> None:
        self.config = config
        self.state = state
        self.pages = pages
        self.per_client = per_client
        self.on_queued = on_queued
        self.clock = clock
        self.manifest = manifest

    async def subscribe(self, request: Request) -> Response:
        pages = self.pages
        if request.method == "GET":
            return pages.page(request, "subscribe")
        form = await request.form()
        if not pages.csrf.valid(request, form):
            return pages.expired_form(request)
        if not await within_limit(self.per_client, request, self.config.web.trusted_proxies):
            return pages.notice(
                request,
                pages.gettext("Too many requests"),
                pages.gettext("Please try again in a few minutes."),
                429,
            )
        try:
            address = check_email(str(form.get("email", "")))
        except ValueError:
            return pages.page(
                request,
                "subscribe",
                400,
                error=pages.gettext("That is not an email address."),
                email=str(form.get("email", ""))[:320],
            )
        name = " ".join(str(form.get("name", "")).split())[:100]
        try:
            await run_in_threadpool(self._queue, address, name)
        except StateError as exc:  # the database is unusable: the same for every address
            log.error(f"subscribe: {exc}")
            return pages.notice(
                request,
                pages.gettext("We could not take your request"),
                pages.gettext("Something went wrong on our side. Please try again later."),
                503,
            )
        self.on_queued()
        # The same answer, in the same time, whether or not the address is known:
        # no one can learn who subscribes by trying addresses here.
        return pages.page(request, "check_inbox", email=address)

    def _queue(self, address: str, name: str) -> None:
        with Store(self.state) as store:
            store.queue_subscribe_request(address, name, self.clock())

    # Unsubscribing and preferences.

    def _holder(self, token: str) -> tuple[Subscriber | None, bool]:
        """The subscriber ``token`` opens, and whether it is a retired token of
        someone who has since left (their old links still say 'unsubscribed')."""
        with Store(self.state) as store:
            subscriber = store.subscriber_by_token(token)
            if subscriber is not None:
                return subscriber, False
            former = store.retired_token_owner(token)
        if former is not None and former.status in INACTIVE:
            return former, True
        return None, False

    def _unsubscribe(self, token: str) -> None:
        with Store(self.state) as store:
            store.set_status_by_token(token, "unsubscribed", self.clock())

    async def unsubscribe(self, request: Request) -> Response:
        pages = self.pages
        token = request.path_params["token"]
        subscriber, retired = await run_in_threadpool(self._holder, token)
        if subscriber is None:
            return pages.unknown_link(request)
        done = retired or subscriber.status in INACTIVE
        if request.method == "GET":
            return pages.page(request, "unsubscribe", email=subscriber.email, done=done)
        form = await request.form()
        one_click = form.get("List-Unsubscribe") == "One-Click"
        if not one_click and not pages.csrf.valid(request, form):
            return pages.expired_form(request)
        if not done:
            await run_in_threadpool(self._unsubscribe, token)
        if one_click:  # RFC 8058: a mail provider's POST; no page needed
            return PlainTextResponse("unsubscribed\n")
        return pages.page(request, "unsubscribe", email=subscriber.email, done=True)

    def _subscriber(self, token: str) -> Subscriber | None:
        with Store(self.state) as store:
            return store.subscriber_by_token(token)

    def _save_preferences(self, token: str, tags: list[str], paused: bool) -> Subscriber | None:
        with Store(self.state) as store:
            store.set_preferences(token, tags, paused, self.clock())
            return store.subscriber_by_token(token)

    async def manage(self, request: Request) -> Response:
        pages = self.pages
        token = request.path_params["token"]
        subscriber = await run_in_threadpool(self._subscriber, token)
        if subscriber is None:
            return pages.unknown_link(request)
        terms = offered_terms(self.manifest.current())
        saved = False
        if request.method == "POST":
            form = await request.form()
            if not pages.csrf.valid(request, form):
                return pages.expired_form(request)
            known = {term_slug(t): t for t in terms}
            chosen = [
                known[term_slug(str(t))] for t in form.getlist("tags") if term_slug(str(t)) in known
            ]
            paused = form.get("paused") == "on"
            subscriber = (
                await run_in_threadpool(self._save_preferences, token, chosen, paused) or subscriber
            )
            saved = True
        wanted = {term_slug(t) for t in subscriber.tags}
        return pages.page(
            request,
            "manage",
            subscriber=subscriber,
            saved=saved,
            terms=[(t, term_slug(t) in wanted) for t in terms],
            unsubscribe=pages.link("unsubscribe", token),
        )
