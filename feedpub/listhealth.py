"""Keeping the list healthy: the bounces and complaints in the bounce mailbox, and
the SMTP server's refusals, recorded against the subscribers they are about.

Each message is recorded before it is marked processed: a run stopped in
between reads it again next time, and the store counts it once.
"""

from __future__ import annotations

import os
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, cast

from feedpub.config import BouncesConfig, Config
from feedpub.errors import ConfigError
from feedpub.listpolicy import SoftBouncePolicy
from feedpub.mailbox import BounceSource, ImapSource, MaildirSource, MboxSource
from feedpub.model import ListEvent, ListEventKind, Problem
from feedpub.store import Store

if TYPE_CHECKING:
    from feedpub.bounces import Reading


@dataclass(slots=True)
class FetchReport:
    """What one ``bounces fetch`` did: a line per message, and the counts."""

    lines: list[str] = field(default_factory=list)
    read: int = 0
    applied: int = 0
    ignored: int = 0
    set_aside: int = 0

    def __str__(self) -> str:
        return (
            f"{self.read} messages read: {self.applied} changed the list, "
            f"{self.ignored} changed nothing, {self.set_aside} set aside unread"
        )


def open_source(config: Config) -> BounceSource:
    """The bounce mailbox ``config.bounces`` names."""
    bounces = config.bounces
    if bounces is None:
        raise ConfigError(
            [Problem(str(config.path), "bounces: section missing; it names the bounce mailbox")]
        )
    if bounces.source == "maildir":
        assert bounces.path is not None
        return MaildirSource(bounces.path)
    if bounces.source == "mbox":
        assert bounces.path is not None
        return MboxSource(bounces.path)
    return ImapSource(
        bounces.host,
        bounces.port,
        bounces.username,
        _password(config, bounces),
        bounces.folder,
        bounces.security,  # type: ignore[arg-type]
        bounces.processed_folder,
        timeout=bounces.timeout,
        ca_file=bounces.ca_file,
    )


def _password(config: Config, bounces: BouncesConfig) -> str:
    password = os.environ.get(bounces.password_env)
    if not password:
        raise ConfigError(
            [
                Problem(
                    str(config.path),
                    f"bounces.password_env: the environment variable {bounces.password_env} "
                    "is not set; it holds the IMAP password",
                )
            ]
        )
    return password


def fetch_bounces(config: Config, now: datetime, source: BounceSource) -> FetchReport:
    """Read every message in ``source``, record what each says, mark it processed."""
    from feedpub.bounces import read_report  # here: flufl.bounce only when reading bounces

    newsletter = config.newsletter
    template = None if newsletter is None else newsletter.bounce_address
    policy = config.delivery
    report = FetchReport()
    with Store(config.state) as store, closing(source):
        for incoming in source.messages(config.bounces.max_bytes if config.bounces else 0):
            report.read += 1
            if incoming.data is None:
                report.set_aside += 1
                report.lines.append(f"{incoming.key}: {incoming.reason}; set aside unread")
                source.mark_processed(incoming.key)
                continue
            reading = read_report(incoming.data, template)
            changed, says = False, reading.reason
            if reading.kind == "ignored":
                says = f"{reading.reason}; nothing changed"
            else:
                changed, says = _record(store, reading, now, policy)
            report.applied += changed
            report.ignored += not changed
            report.lines.append(f"{incoming.key}: {says}")
            source.mark_processed(incoming.key)
    return report


def _record(
    store: Store, reading: Reading, now: datetime, policy: SoftBouncePolicy
) -> tuple[bool, str]:
    """Record a bounce or complaint against the delivery its VERP token names, or
    else against the addresses it names."""
    issue = None
    addresses = reading.recipients
    if reading.token is not None:
        delivery = store.delivery_for_token(reading.token)
        if delivery is None:
            return False, (
                f"{reading.reason}; its token {reading.token} names no delivery of this list, "
                "nothing changed"
            )
        issue, addresses = delivery.issue, (delivery.email.lower(),)
    said: list[str] = []
    changed = False
    for address in addresses:
        kind = cast(ListEventKind, reading.kind)  # hard, soft or complaint here
        event = ListEvent("mailbox", f"{reading.key}:{address}", address, kind, reading.reason)
        outcome = store.record_event(event, issue, now, policy)
        changed = changed or outcome.applied
        said.append(f"{address}: {outcome.says}")
    return changed, f"{reading.reason} ({'; '.join(said)})"
