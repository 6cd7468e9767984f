"""The vocabulary every stage shares: frozen, typed, timezone-aware.

This module imports nothing from feedpub.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class Author:
    """A person: ``uri`` is their page (Atom's author ``<uri>``, JSON Feed's ``url``)."""

    name: str
    email: str | None = None
    uri: str | None = None


@dataclass(frozen=True, slots=True)
class Image:
    """An image with an absolute URL, its alternative text, and, where known,
    its MIME type and size in bytes. ``file`` is the local file the size is read
    from (None for remote images), so that a replaced image can be measured again."""

    url: str
    alt: str
    type: str | None = None
    length: int | None = None
    file: str | None = None


@dataclass(frozen=True, slots=True)
class Post:
    """One post as its front matter describes it; the body is still Markdown.

    Rendering the body is a separate, later step (see ``RenderedPost``), so that
    only posts some feed or email actually shows pay for it. ``path`` is where the
    file is, as text: a build cache holds a hundred thousand of them, and pathlib
    objects cost more to rebuild than everything else in a post together.
    A post that is not ``listed`` still has a page (a link may point at it).
    """

    path: str
    rel_path: str
    id: str
    slug: str
    url: str
    title: str
    date: datetime
    updated: datetime
    draft: bool
    tags: tuple[str, ...]
    categories: tuple[str, ...]
    author: Author
    summary: str | None
    cover: Image | None
    source_url: str | None
    body: str
    word_count: int | None
    reading_time: int | None
    extra: Mapping[str, Any]
    # When the post leaves the feeds (Hugo's expiryDate); None: never.
    expires: datetime | None = None
    # False for a post Hugo lists nowhere (build.list never or local, headless).
    listed: bool = True


@dataclass(frozen=True, slots=True)
class RenderedPost:
    """A post with its body rendered to sanitised HTML and its summary decided."""

    post: Post
    html: str
    summary: str
    word_count: int
    reading_time: int
    media_links: int = 0  # videos, sounds and frames shown as links (feeds cannot play them)


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with an input file, said as a sentence a person can act on."""

    path: str
    message: str
    line: int | None = None
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        label = "" if self.severity is Severity.ERROR else "warning: "
        return f"{where}: {label}{self.message}"


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who one copy of an issue goes to; ``token`` makes their unsubscribe link."""

    email: str
    name: str
    token: str


@dataclass(frozen=True, slots=True)
class Issue:
    """One rendered issue as it is stored and mailed: one per variant (the posts
    for one set of subscriber tags), the same for every recipient until
    personalised. Which posts it shows and covers is its plan's business
    (digest.IssuePlan), decided before it is rendered."""

    number: int
    date: datetime
    subject: str
    html: str
    text: str


SUBSCRIBER_STATUSES = ("pending", "active", "unsubscribed", "bounced")


@dataclass(frozen=True, slots=True)
class Subscriber:
    """Someone on the list. ``tags`` empty means every post; otherwise only posts
    with one of these tags or categories."""

    id: int
    email: str
    name: str
    status: str
    token: str
    tags: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    paused: bool = False


# What a bounce, a complaint or an unsubscribe says of an address: ``hard`` (it is
# gone), ``soft`` (it failed for now), ``complaint`` (marked as spam) or
# ``unsubscribe`` (asked to leave, at the sending service).
ListEventKind = Literal["hard", "soft", "complaint", "unsubscribe"]


@dataclass(frozen=True, slots=True)
class ListEvent:
    """Something reported about one address that bears on the list. ``provider``
    says who reported it: a sending service (``ses``, ``postmark``, ``mailgun``,
    ``sendgrid``), the bounce ``mailbox``, or the ``smtp`` server's reply."""

    provider: str
    event_id: str  # the reporter's own id, for the store to apply each event once
    address: str  # lower-cased
    kind: ListEventKind
    detail: str  # one readable line: the bounce type and the server's diagnostic


@dataclass(frozen=True, slots=True)
class StateLocation:
    """Where the state lives: the SQLite file ``path``, or, with ``url``, the
    PostgreSQL database it names (its password in the environment variable
    ``password_env``). ``path``'s folder holds this machine's caches either way."""

    path: Path
    url: str | None = None
    password_env: str = "FEEDPUB_STATE_PASSWORD"
