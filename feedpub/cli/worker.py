"""feedpub worker: deliver recorded issues beside any number of other workers."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import click

from feedpub.cli.common import cli, config_option, load_checked, make_deliverer_lazily, now


@cli.command()
@config_option
@click.option("--once", is_flag=True, help="Deliver what is open now, then exit.")
@click.option(
    "--poll",
    type=click.FloatRange(min=0.1),
    metavar="SECONDS",
    default=10.0,
    show_default=True,
    help="Seconds between looks for open deliveries when there are none.",
)
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but problems.")
def worker(config_path: Path, once: bool, poll: float, quiet: bool) -> None:
    """Deliver the digest issues 'feedpub digest send' (or the daemon) recorded,
    sharing the work with every other worker on the same state: with state.url,
    on any number of machines.

    Each worker claims delivery.batch deliveries at a time and holds them for
    delivery.lease_seconds, renewed while it sends; one that dies (even by kill -9)
    loses them at once when its process (or, with PostgreSQL, its connection) is
    gone, at the latest when its leases run out, and the others take them over.
    While a
    worker runs, 'feedpub digest send' records the issue and leaves its delivery
    to the workers. SIGTERM or SIGINT stops it after the messages in flight.
    """
    from feedpub.errors import DeliveryError
    from feedpub.pipeline import work_once
    from feedpub.store import WORKERS, JobLock, StateDatabase
    from feedpub.summaries import send_summary

    config = load_checked(config_path)
    config.require_newsletter()
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with StateDatabase(config.state) as state:
        present = JobLock(state, WORKERS, "worker", shared=True)
        present.take()
        try:
            while not stopping.is_set():
                try:
                    report = work_once(
                        config, make_deliverer_lazily(config), now, stop=stopping.is_set
                    )
                except DeliveryError as error:
                    if once:
                        raise
                    click.echo(f"worker: {error}; trying again in {poll:g} s", err=True)
                else:
                    for failure in report.failures:
                        click.echo(f"failed: {failure}", err=True)
                    if report.issues and not quiet:
                        click.echo(f"worker: {send_summary(report)}", err=True)
                if once or stopping.wait(poll):
                    break
        finally:
            present.release()
