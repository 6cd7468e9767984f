"""The state files of the releases before Alembic: the SQL they ran, one script
a schema version (PRAGMA user_version), kept as they were to make such files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE subscribers (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL,
        email_key TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'unsubscribed', 'bounced')),
        token TEXT NOT NULL UNIQUE,
        tags TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE issues (
        number INTEGER PRIMARY KEY,
        created_at TEXT NOT NULL,
        subject TEXT NOT NULL
    );
    CREATE TABLE issue_posts (
        post_id TEXT PRIMARY KEY,
        issue INTEGER NOT NULL REFERENCES issues (number)
    );
    CREATE TABLE issue_variants (
        issue INTEGER NOT NULL REFERENCES issues (number),
        variant TEXT NOT NULL,
        subject TEXT NOT NULL,
        html TEXT NOT NULL,
        text TEXT NOT NULL,
        PRIMARY KEY (issue, variant)
    );
    CREATE TABLE deliveries (
        issue INTEGER NOT NULL REFERENCES issues (number),
        subscriber INTEGER NOT NULL REFERENCES subscribers (id),
        email TEXT NOT NULL,
        name TEXT NOT NULL,
        token TEXT NOT NULL,
        variant TEXT,
        status TEXT NOT NULL
            CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'skipped')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_reply TEXT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (issue, subscriber)
    );
    CREATE INDEX deliveries_open ON deliveries (issue, status);
    """,
    """
    CREATE TABLE runs (
        job TEXT PRIMARY KEY,
        last_started TEXT,
        last_success TEXT,
        last_outcome TEXT
    );
    """,
    """
    ALTER TABLE subscribers ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
    """,
    """
    CREATE TABLE subscribe_requests (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL,
        name TEXT NOT NULL,
        requested_at TEXT NOT NULL,
        status TEXT NOT NULL
            CHECK (status IN ('queued', 'ready', 'sending', 'sent', 'dropped', 'failed')),
        message BLOB,
        recipient TEXT,
        message_name TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt TEXT NOT NULL,
        claimed_at TEXT,
        last_reply TEXT
    );
    CREATE INDEX subscribe_requests_due ON subscribe_requests (status, next_attempt);
    CREATE TABLE confirmations (
        nonce_hash TEXT PRIMARY KEY,
        subscriber INTEGER NOT NULL REFERENCES subscribers (id),
        created_at TEXT NOT NULL,
        used_at TEXT
    );
    CREATE INDEX confirmations_by_subscriber ON confirmations (subscriber, created_at);
    CREATE TABLE retired_tokens (
        token TEXT PRIMARY KEY,
        subscriber INTEGER NOT NULL REFERENCES subscribers (id),
        retired_at TEXT NOT NULL
    );
    """,
    # Open deliveries only, by issue: a send's two status changes a message
    # ('pending' to 'sending', 'sending' to 'sent') moved an entry of the old
    # index each, across its pages; now they touch one entry, or drop it.
    """
    DROP INDEX deliveries_open;
    CREATE INDEX deliveries_open ON deliveries (issue) WHERE status IN ('pending', 'sending');
    """,
    # List health: each bounce, complaint and unsubscribe reported, once; and the
    # addresses never to mail again, kept when their subscriber is deleted. Those
    # who left or bounced before this version are suppressed from the start.
    """
    CREATE TABLE list_events (
        key TEXT PRIMARY KEY,
        provider TEXT NOT NULL,
        email_key TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('hard', 'soft', 'complaint', 'unsubscribe')),
        issue INTEGER,
        detail TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE INDEX list_events_by_address ON list_events (email_key, kind, at);
    CREATE INDEX list_events_by_issue ON list_events (issue, kind);
    CREATE TABLE suppressions (
        email_key TEXT PRIMARY KEY,
        email TEXT NOT NULL,
        reason TEXT NOT NULL CHECK (reason IN ('complained', 'bounced', 'unsubscribed')),
        detail TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    INSERT INTO suppressions (email_key, email, reason, detail, created_at)
        SELECT email_key, email, status, 'before list health was recorded', updated_at
        FROM subscribers WHERE status IN ('bounced', 'unsubscribed');
    """,
    # Webhook replay protection: the token of each signed request taken (Mailgun
    # signs timestamp and token), kept while a replay of it would still be on time.
    """
    CREATE TABLE webhook_tokens (
        token TEXT PRIMARY KEY,
        seen_at TEXT NOT NULL
    );
    CREATE INDEX webhook_tokens_by_age ON webhook_tokens (seen_at);
    """,
)


def legacy_state(path: Path, version: int) -> Path:
    """A SQLite state file as a release before Alembic left it at ``version``."""
    db = sqlite3.connect(path)
    for script in MIGRATIONS[:version]:
        db.executescript(script)
    db.execute(f"PRAGMA user_version = {version}")
    db.commit()
    db.close()
    return path
