"""The status page: how each issue fared and the list's size, for the operator
alone. It opens with the token in web.status_token_env as the password of HTTP
Basic authentication; while that variable is unset there is no page."""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from collections.abc import Mapping

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from feedpub.config import Config
from feedpub.stats import ATTRIBUTION_WINDOW, COLUMNS, ListStats, cells, summarise
from feedpub.store import StateDatabase, Store
from feedpub.web.chart import rate_chart, size_chart
from feedpub.web.pages import Pages

STATUS_PATH = "/status"
# The page shows the latest issues, this many at most.
STATUS_ISSUES = 60


def basic_password(authorization: str | None) -> bytes | None:
    """The password of an HTTP Basic Authorization header, or None."""
    scheme, _, encoded = (authorization or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        credentials = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    _, colon, password = credentials.partition(b":")
    return password if colon else None


class StatusPage:
    def __init__(
        self,
        config: Config,
        state: StateDatabase,
        pages: Pages,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self.config = config
        self.state = state
        self.pages = pages
        self.environ = environ

    def _stats(self) -> ListStats:
        with Store(self.state) as store:
            return summarise(store.stats_rows())

    async def show(self, request: Request) -> Response:
        pages = self.pages
        token = self.environ.get(self.config.web.status_token_env, "")
        if not token:
            return pages.notice(
                request,
                pages.gettext("Page not found"),
                pages.gettext("There is nothing at this address."),
                404,
            )
        given = basic_password(request.headers.get("authorization"))
        if given is None or not hmac.compare_digest(given, token.encode()):
            return PlainTextResponse(
                "The status page needs its token as the password.\n",
                401,
                headers={"WWW-Authenticate": 'Basic realm="feedpub status", charset="UTF-8"'},
            )
        stats = await run_in_threadpool(self._stats)
        shown = stats.issues[-STATUS_ISSUES:]
        zone = self.config.site.timezone
        html = pages.render(
            "status",
            statuses=stats.statuses,
            suppressed=stats.suppressed,
            warnings=stats.warnings,
            columns=COLUMNS,
            rows=[cells(issue, zone) for issue in shown],
            shown=len(shown),
            total=len(stats.issues),
            window_days=ATTRIBUTION_WINDOW.days,
            size_chart=size_chart(shown),
            rate_chart=rate_chart(shown),
        )
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})
