"""The state database (SQLite, or PostgreSQL for several machines): subscribers,
the issues sent, the posts each issue covered, every delivery, the confirmation
queue, the list's health and the web app's rate limits. The only package that
imports SQLAlchemy, Alembic or a database driver.

Every change is one short transaction, committed before the next step, so a
process killed at any point leaves a state that the next run can finish.
"""

from __future__ import annotations

from feedpub.store.database import HEAD, StateDatabase
from feedpub.store.health import EventOutcome, ListHealth
from feedpub.store.ledger import TAKEN_OVER, JobRun, Ledger, Tally
from feedpub.store.locks import (
    WORKERS,
    JobLock,
    announced,
    holder_name,
    job_lock,
    worker_alive,
    workers_running,
)
from feedpub.store.queue import SubscribeQueue
from feedpub.store.rates import RateCounts
from feedpub.store.records import (
    CLAIM_LEASE,
    INACTIVE,
    Confirmation,
    Delivery,
    SubscribeRequest,
)
from feedpub.store.stats import ListStatistics
from feedpub.store.subscribers import email_key
from feedpub.store.webhook_tokens import WebhookMemory


class Store(SubscribeQueue, Ledger, ListHealth, WebhookMemory, ListStatistics, RateCounts):
    """The state database: subscribers and their queue, the ledger, the list's
    health, what webhooks have seen, the list's statistics and the web app's rate
    counts, over one connection."""

    def __enter__(self) -> Store:
        return self


__all__ = [
    "CLAIM_LEASE",
    "HEAD",
    "INACTIVE",
    "TAKEN_OVER",
    "WORKERS",
    "Confirmation",
    "Delivery",
    "EventOutcome",
    "JobLock",
    "JobRun",
    "StateDatabase",
    "Store",
    "SubscribeRequest",
    "Tally",
    "announced",
    "email_key",
    "holder_name",
    "job_lock",
    "worker_alive",
    "workers_running",
]
