"""feedpub subscribers: add, remove, list, import, export."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from feedpub.cli.common import (
    cli,
    config_option,
    load_checked,
    print_problems,
)
from feedpub.errors import FeedpubError
from feedpub.model import SUBSCRIBER_STATUSES
from feedpub.summaries import plural

_FORCE = click.option(
    "--force",
    is_flag=True,
    help="Add addresses that bounced or unsubscribed back (never those that complained).",
)
_WHY = {
    "bounced": "bounced",
    "unsubscribed": "unsubscribed",
    "complained": "complained (marked a message as spam)",
}


def _suppressed(found: dict[str, str], force: bool) -> list[tuple[str, str]]:
    """The suppressed addresses that may not be added, each with why: all of them
    without ``force``, those that complained even with it."""
    refused = []
    for address, reason in sorted(found.items()):
        if reason == "complained":
            refused.append(
                (
                    address,
                    f"is suppressed: it {_WHY[reason]}; it cannot be added back, only signed "
                    "up again by its owner through the subscribe form",
                )
            )
        elif not force:
            refused.append(
                (address, f"is suppressed: it {_WHY[reason]}; add --force to add it back")
            )
    return refused


@cli.group()
def subscribers() -> None:
    """Add, remove, list, import and export subscribers."""


@subscribers.command("add")
@config_option
@click.argument("email")
@click.option("--name", default="", help="The subscriber's name, used in the greeting.")
@click.option("--tags", default="", help="Only posts with these tags or categories: 'AI; LLM'.")
@click.option(
    "--status",
    type=click.Choice(SUBSCRIBER_STATUSES),
    default="active",
    show_default=True,
    help="pending waits for confirmation; only active ones get mail.",
)
@_FORCE
def subscribers_add(
    config_path: Path, email: str, name: str, tags: str, status: str, force: bool
) -> None:
    """Add EMAIL to the list. An address that bounced or unsubscribed is suppressed
    and needs --force; one that complained cannot be added back."""
    from feedpub.store import Store
    from feedpub.subscribers import check_email, parse_tags

    config = load_checked(config_path)
    try:
        address = check_email(email)
    except ValueError as exc:
        raise FeedpubError(str(exc)) from None
    with Store(config.state) as store:
        refused = _suppressed(store.suppressions([address]), force)
        if refused:
            raise FeedpubError(f"{address} {refused[0][1]}")
        store.lift_suppressions([address], complaints=False)
        added = store.add_subscriber(
            address, name.strip(), parse_tags(tags), status, datetime.now(UTC)
        )
    click.echo(f"added {added.email} ({added.status})")


@subscribers.command("remove")
@config_option
@click.argument("email")
@click.option(
    "--erase",
    is_flag=True,
    help="Delete the record and its history too (a request to be forgotten); the "
    "address stays suppressed, so it is never mailed again.",
)
def subscribers_remove(config_path: Path, email: str, erase: bool) -> None:
    """Unsubscribe EMAIL. The record stays, marked unsubscribed, with its history,
    unless --erase."""
    from feedpub.store import Store

    config = load_checked(config_path)
    with Store(config.state) as store:
        if store.subscriber(email) is None:
            raise FeedpubError(f"{email} is not on the list")
        if erase:
            store.delete_subscriber(email, datetime.now(UTC))
        else:
            store.set_status(email, "unsubscribed", datetime.now(UTC))
    click.echo(f"{'erased' if erase else 'unsubscribed'} {email}")


@subscribers.command("list")
@config_option
@click.option("--status", type=click.Choice(SUBSCRIBER_STATUSES), help="Only this status.")
def subscribers_list(config_path: Path, status: str | None) -> None:
    """List subscribers: address, status, name and tags."""
    from feedpub.store import Store

    config = load_checked(config_path)
    with Store(config.state) as store:
        listed = store.subscribers(status)
    for s in listed:
        tags = f"  [{'; '.join(s.tags)}]" if s.tags else ""
        click.echo(f"{s.email}  {s.status}  {s.name}{tags}".rstrip())
    click.echo(f"{plural(len(listed), 'subscriber')}", err=True)


@subscribers.command("import")
@config_option
@click.argument("csv_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@_FORCE
def subscribers_import(config_path: Path, csv_file: Path, force: bool) -> None:
    """Add the subscribers in CSV_FILE (columns: email, and optionally name, tags,
    status). Bad rows are reported with their line numbers; the good ones are kept.
    Suppressed addresses are reported and left out, unless --force (never one
    that complained)."""
    from feedpub.store import Store, email_key
    from feedpub.subscribers import read_csv

    config = load_checked(config_path)
    try:
        text = csv_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FeedpubError(f"cannot read {csv_file}: {exc}") from None
    rows, problems = read_csv(text, str(csv_file))
    with Store(config.state) as store:
        refused = dict(_suppressed(store.suppressions(row.email for row in rows), force))
        kept = [row for row in rows if email_key(row.email) not in refused]
        store.lift_suppressions([row.email for row in kept], complaints=False)
        entries = [(row.email, row.name, row.tags, row.status) for row in kept]
        added = store.add_subscribers(entries, datetime.now(UTC))
    print_problems(tuple(problems))
    for address, why in refused.items():
        click.echo(f"{csv_file}: {address} {why}", err=True)
    click.echo(
        f"imported {added}, {len(kept) - added} already on the list, "
        f"{len(refused)} suppressed, {plural(len(problems), 'bad row')}"
    )
    if problems:
        raise click.exceptions.Exit(1)


@subscribers.command("export")
@config_option
def subscribers_export(config_path: Path) -> None:
    """Write every subscriber as CSV to standard output (without tokens)."""
    from feedpub.store import Store
    from feedpub.subscribers import write_csv

    config = load_checked(config_path)
    with Store(config.state) as store:
        click.echo(write_csv(store.subscribers()), nl=False)
