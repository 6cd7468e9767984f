"""The state database (SQLite): subscribers, the issues sent, the posts each
issue covered, every delivery, and the confirmation queue. The only package that
imports sqlite3.

Every change is one short transaction, committed before the next step, so a
process killed at any point leaves a state that the next run can finish.
"""

from __future__ import annotations

from feedpub.store.health import EventOutcome, ListHealth
from feedpub.store.ledger import Ledger
from feedpub.store.lock import exclusive_lock
from feedpub.store.queue import SubscribeQueue
from feedpub.store.records import (
    CLAIM_LEASE,
    INACTIVE,
    Confirmation,
    Delivery,
    SubscribeRequest,
)
from feedpub.store.schema import MIGRATIONS
from feedpub.store.stats import ListStatistics
from feedpub.store.subscribers import email_key
from feedpub.store.webhook_tokens import WebhookMemory


class Store(SubscribeQueue, Ledger, ListHealth, WebhookMemory, ListStatistics):
    """The state database: subscribers and their queue, the ledger, the list's
    health, what webhooks have seen, and the list's statistics, over one connection."""

    def __enter__(self) -> Store:
        return self


__all__ = [
    "CLAIM_LEASE",
    "INACTIVE",
    "MIGRATIONS",
    "Confirmation",
    "Delivery",
    "EventOutcome",
    "Store",
    "SubscribeRequest",
    "email_key",
    "exclusive_lock",
]
