"""The confirmation link: GET shows a button (link scanners that fetch every link
confirm nothing); its POST spends the single-use nonce."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from feedpub.config import Config
from feedpub.model import Subscriber
from feedpub.store import StateDatabase, Store
from feedpub.web.pages import Pages


class ConfirmLinks:
    """The endpoint of the links in confirmation emails."""

    def __init__(
        self, config: Config, state: StateDatabase, pages: Pages, clock: Callable[[], datetime]
    ) -> None:
        self.config = config
        self.state = state
        self.pages = pages
        self.clock = clock

    def _confirm_hours(self) -> timedelta:
        return timedelta(hours=self.config.web.confirm_hours)

    def _confirmation_state(self, nonce: str) -> str:
        """'valid', 'used', 'expired' or 'unknown'."""
        with Store(self.state) as store:
            confirmation = store.confirmation(nonce)
        if confirmation is None:
            return "unknown"
        if confirmation.used_at is not None:
            return "used"
        if confirmation.created_at <= self.clock() - self._confirm_hours():
            return "expired"
        return "valid"

    def _use(self, nonce: str) -> Subscriber | None:
        now = self.clock()
        with Store(self.state) as store:
            return store.use_confirmation(nonce, now, now - self._confirm_hours())

    async def confirm(self, request: Request) -> Response:
        """GET shows a button (link scanners that fetch every link confirm nothing);
        its POST spends the single-use nonce."""
        pages = self.pages
        nonce = request.path_params["nonce"]
        if request.method == "POST":
            form = await request.form()
            if not pages.csrf.valid(request, form):
                return pages.expired_form(request)
            subscriber = await run_in_threadpool(self._use, nonce)
            if subscriber is not None:
                return pages.page(
                    request,
                    "confirmed",
                    manage=pages.link("manage", subscriber.token),
                    unsubscribe=pages.link("unsubscribe", subscriber.token),
                )
        state = await run_in_threadpool(self._confirmation_state, nonce)
        if state == "valid":
            return pages.page(request, "confirm")
        if state == "used":
            return pages.notice(
                request,
                pages.gettext("Already confirmed"),
                pages.gettext(
                    "This link has been used. The newsletter comes to the address it was sent to."
                ),
            )
        if state == "expired":
            return pages.notice(
                request,
                pages.gettext("This link has expired"),
                pages.gettext(
                    "Confirmation links work for a limited time. Subscribe again to get a new one."
                ),
                400,
                subscribe_again=True,
            )
        return pages.notice(
            request,
            pages.gettext("This link is not valid"),
            pages.gettext("Please copy the whole link from the email, or subscribe again."),
            400,
            subscribe_again=True,
        )
