"""The archive of past issues: the list, and each issue as its public copy."""

from __future__ import annotations

from datetime import date

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from feedpub.config import Config
from feedpub.content.sanitise import sanitise_issue
from feedpub.mail import personalise
from feedpub.model import Issue
from feedpub.store import StateDatabase, Store
from feedpub.web.pages import Pages


class Archive:
    def __init__(self, config: Config, state: StateDatabase, pages: Pages) -> None:
        self.config = config
        self.state = state
        self.pages = pages

    def _listing(self) -> list[tuple[int, date, str]]:
        zone = self.config.site.timezone
        with Store(self.state) as store:
            return [
                (n, when.astimezone(zone).date(), subject) for n, when, subject in store.issues()
            ]

    async def issues(self, request: Request) -> Response:
        listed = await run_in_threadpool(self._listing)
        return self.pages.page(request, "issues", issues=listed)

    def _issue(self, number: int) -> Issue | None:
        with Store(self.state) as store:
            return store.issue(number, "")

    async def issue(self, request: Request) -> Response:
        pages = self.pages
        number = request.path_params["number"]
        issue = await run_in_threadpool(self._issue, number)
        if issue is None:
            return pages.notice(
                request,
                pages.gettext("No such issue"),
                pages.gettext("That issue does not exist (yet)."),
                404,
            )
        subscribe = pages.public(pages.paths["subscribe"])
        public = {
            "name": pages.newsletter.default_name or "",
            "email": "",
            "unsubscribe_url": subscribe,
            "manage_url": subscribe,
        }
        html = personalise(issue.html, public, markup=True)
        body = html.split("<body", 1)[-1].split(">", 1)[-1].rsplit("</body>", 1)[0]
        return pages.page(
            request, "issue", number=number, subject=issue.subject, body=sanitise_issue(body)
        )
