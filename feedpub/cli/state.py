"""feedpub state: move the state database to PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import click

from feedpub.cli.common import cli, config_option, load_checked


@cli.group()
def state() -> None:
    """The state database: subscribers, issues, deliveries, runs."""


@state.command("migrate")
@config_option
@click.option(
    "--to",
    "url",
    required=True,
    metavar="URL",
    help="The PostgreSQL database to copy into: postgresql://user@host:5432/db "
    "(its password in the variable state.password_env names).",
)
def state_migrate(config_path: Path, url: str) -> None:
    """Copy the SQLite state file (state.path) into an empty PostgreSQL database:
    subscribers, suppressions, issues, deliveries, runs and the confirmation
    queue, in one transaction, with the rows of each table counted afterwards.

    A database that already holds data is refused. Stop the daemon and the web
    app first; then set state.url to URL and start them again.
    """
    from dataclasses import replace

    from feedpub.config_schema import ServerUrl
    from feedpub.errors import FeedpubError
    from feedpub.options import Invalid
    from feedpub.pipeline import BOUNCES_JOB, BUILD_JOB, DIGEST_JOB, holding_jobs
    from feedpub.store import StateDatabase
    from feedpub.store.copy import copy_state

    config = load_checked(config_path)
    source = replace(config.state, url=None)
    if not source.path.exists():
        raise FeedpubError(f"there is no state file at {source.path} (state.path) to migrate")
    try:
        target_url = ServerUrl(doc="").convert(url)
    except Invalid as error:
        raise click.BadParameter("; ".join(error.messages), param_hint="--to") from None
    assert target_url is not None
    target = replace(config.state, url=target_url)
    local = replace(config, state=source)
    with (
        holding_jobs(local, (BUILD_JOB, DIGEST_JOB, BOUNCES_JOB), "state migrate"),
        StateDatabase(source) as reading,
        StateDatabase(target) as writing,
    ):
        counts = copy_state(
            reading, writing, lambda table, rows: click.echo(f"{table}: {rows} row(s)", err=True)
        )
    click.echo(
        f"copied {sum(counts.values())} row(s) from {source.path} to {writing.name}; "
        f"set state.url to {target_url} in {config_path.name} and restart feedpub"
    )
