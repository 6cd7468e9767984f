"""feedpub stats: how each issue fared, and the list's size over time."""

from __future__ import annotations

import json
from pathlib import Path

import click

from feedpub.cli.common import cli, config_option, load_checked


@cli.command()
@config_option
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the same report as one JSON object, for scripts (rates as fractions).",
)
def stats(config_path: Path, as_json: bool) -> None:
    """Show each issue's recipients, sent and failed messages, hard and soft
    bounces, complaints and unsubscribes (each with its rate per message sent),
    then the subscribers by status and the suppressed addresses by reason.

    A bounce, complaint or unsubscribe reported without its issue counts for the
    latest issue sent to that address in the 7 days before it. A warning follows
    for each issue whose complaint rate is over 0.1% or bounce rate over 2%.
    """
    from feedpub import stats as report
    from feedpub.store import Store

    config = load_checked(config_path)
    with Store(config.state) as store:
        summary = report.summarise(store.stats_rows())
    zone = config.site.timezone
    if as_json:
        click.echo(json.dumps(report.as_json(summary, zone), ensure_ascii=False, indent=2))
        return
    for line in report.table(summary, zone):
        click.echo(line)
