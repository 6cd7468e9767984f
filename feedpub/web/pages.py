"""Rendering the web pages (templates/web/*.html.j2), each with its CSRF cookie."""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse

from feedpub import templating
from feedpub.config import Config
from feedpub.locale import load_catalog
from feedpub.mail import with_default_name
from feedpub.web.forms import Csrf

SUBSCRIBE_PATH = "/newsletter/subscribe"
ISSUES_PATH = "/issues/"


class Pages:
    """The site's page templates, and the paths every page links to."""

    def __init__(self, config: Config, csrf: Csrf) -> None:
        self.config = config
        self.newsletter = with_default_name(config.require_newsletter(), config.site.language)
        self.csrf = csrf
        self.env = templating.environment(config.templates_dir)
        # Notices and form errors, in the language of the pages.
        self.gettext = load_catalog(config.site.language).gettext
        self.paths = {
            "subscribe": SUBSCRIBE_PATH,
            "issues": ISSUES_PATH,
            "unsubscribe": urlsplit(self.newsletter.unsubscribe_url).path,
            "manage": urlsplit(self.newsletter.manage_url).path,
            "feeds": urlsplit(config.feeds.base_url).path,
        }

    def public(self, path: str) -> str:
        """``path`` on web.public_url: redirects never trust the request's Host."""
        return urljoin(self.config.web.public_url, path.lstrip("/"))

    def link(self, name: str, token: str) -> str:
        return self.paths[name].replace("{token}", token)

    def render(self, name: str, **context: Any) -> str:
        """Page ``name`` as HTML, with what every page is given."""
        return templating.render(
            self.env,
            f"web/{name}.html.j2",
            {
                "site": self.config.site,
                "newsletter": self.newsletter,
                "language": self.config.site.language.lower(),
                "paths": self.paths,
                **context,
            },
        )

    def page(self, request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        cookie = self.csrf.cookie(request)
        html = self.render(name, csrf=self.csrf.field(cookie), **context)
        response = HTMLResponse(html, status_code=status)
        self.csrf.set_cookie(response, cookie)
        return response

    def notice(
        self, request: Request, title: str, text: str, status: int = 200, **extra: Any
    ) -> HTMLResponse:
        return self.page(request, "notice", status, title=title, text=text, **extra)

    def unknown_link(self, request: Request) -> HTMLResponse:
        return self.notice(
            request,
            self.gettext("This link is not valid"),
            self.gettext("We could not find that subscription. It may have been removed."),
            404,
        )

    def expired_form(self, request: Request) -> HTMLResponse:
        return self.notice(
            request,
            self.gettext("Form expired"),
            self.gettext("Please reload the page and try again."),
            403,
        )
