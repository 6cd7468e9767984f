"""The web application: feeds served right, double opt-in subscription,
one-click unsubscribe, preferences, and the archive of past issues.

The only package that imports Starlette. Pages come from templates/web/*.html.j2.
"""

from feedpub.web.app import WebServer, create_app, web_secret
from feedpub.web.forms import RateLimiter

__all__ = ["RateLimiter", "WebServer", "create_app", "web_secret"]
