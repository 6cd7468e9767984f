"""What the state database hands out: frozen records, and the statuses' rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

# Statuses a subscribe request moves through: 'queued' (as the web form left it),
# then 'ready' (message composed) or 'dropped' (nothing to send), then 'sending'
# (claimed by one sender), then 'sent' or 'failed'.
CLAIM_LEASE = timedelta(minutes=10)
# Statuses off the list: entering or leaving them retires the subscriber's token.
INACTIVE = frozenset({"unsubscribed", "bounced"})


@dataclass(frozen=True, slots=True)
class Delivery:
    """One issue for one subscriber; address, name and token as they were when
    the issue was recorded, so a resumed send addresses the same message."""

    issue: int
    subscriber: int
    email: str
    name: str
    token: str
    variant: str | None
    status: str
    attempts: int
    last_reply: str | None


@dataclass(frozen=True, slots=True)
class SubscribeRequest:
    """A subscribe form's request, claimed by one sender; ``message`` is the
    confirmation once composed, kept until it is sent."""

    id: int
    email: str
    name: str
    message: bytes | None
    recipient: str | None
    message_name: str | None
    attempts: int


@dataclass(frozen=True, slots=True)
class Confirmation:
    subscriber: int
    created_at: datetime
    used_at: datetime | None
