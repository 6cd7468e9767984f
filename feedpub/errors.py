"""feedpub's own exceptions; third-party errors are wrapped into these at the edges."""

from __future__ import annotations

from collections.abc import Sequence

from feedpub.model import Problem


class FeedpubError(Exception):
    """An error meant for a person: its message is shown as it is, without a traceback."""


class ProblemsError(FeedpubError):
    """Stopped because of ``problems`` (each already a full sentence); ``summary``
    says what was not done."""

    def __init__(self, problems: Sequence[Problem], summary: str = "") -> None:
        self.problems = tuple(problems)
        self.summary = summary
        super().__init__(
            "\n".join([*(str(p) for p in self.problems), *([summary] if summary else [])])
        )


class ConfigError(ProblemsError):
    """The configuration file is unusable; ``problems`` lists every reason at once."""


class ContentError(FeedpubError):
    """One content file cannot be used."""

    def __init__(self, path: str, reason: str, line: int | None = None) -> None:
        self.path = path
        self.reason = reason
        self.line = line
        super().__init__(str(self.problem))

    @property
    def problem(self) -> Problem:
        return Problem(self.path, self.reason, self.line)


class OutputError(FeedpubError):
    """An output file could not be written or removed."""


class RenderError(FeedpubError):
    """A template could not be rendered."""


class StateError(FeedpubError):
    """The state database cannot be used, or a change to it conflicts with what it holds."""


class DeliveryError(FeedpubError):
    """The mail server cannot be reached or used at all (not one recipient's refusal)."""


class WebhookRefused(FeedpubError):
    """A provider's webhook request was refused; nothing it carried was applied.

    ``status`` is the HTTP status to answer with (400 malformed, 401 missing or wrong
    credentials or signature, 403 wrong topic or certificate host, 409 replay, 413 too
    large); ``reason`` is one line, safe to log: it never repeats a secret.
    """

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(reason)


class MailboxError(FeedpubError):
    """A bounce mailbox (Maildir, mbox or IMAP folder) cannot be read or changed."""
