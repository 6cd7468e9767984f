"""feedpub bounces: read the bounce mailbox into the list's health."""

from __future__ import annotations

from pathlib import Path

import click

from feedpub.cli.common import cli, config_option, load_checked, now


@cli.group()
def bounces() -> None:
    """Read bounces and complaints that came back by mail."""


@bounces.command("fetch")
@config_option
@click.option("-q", "--quiet", is_flag=True, help="Print only the summary line.")
def bounces_fetch(config_path: Path, quiet: bool) -> None:
    """Read the bounce mailbox (the bounces section) and record what each message says.

    A hard bounce marks its subscriber bounced, soft ones count towards
    delivery.soft_bounce_limit, a complaint unsubscribes; each address so marked is
    suppressed. Every message read is marked processed (or moved aside), and one
    read twice counts once.
    """
    from feedpub.listhealth import fetch_bounces, open_source
    from feedpub.pipeline import BOUNCES_JOB, holding_jobs

    config = load_checked(config_path)
    with holding_jobs(config, (BOUNCES_JOB,), "bounces fetch"):
        report = fetch_bounces(config, now(), open_source(config))
    if not quiet:
        for line in report.lines:
            click.echo(line)
    click.echo(str(report))
