"""feedpub digest: preview and send."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from feedpub.cli.common import (
    cli,
    config_option,
    load_checked,
    make_deliverer_lazily,
    now,
    print_problems,
)
from feedpub.summaries import plural

if TYPE_CHECKING:
    from email.message import EmailMessage


def _decoded_part(message: EmailMessage, subtype: str) -> bytes:
    """One part as a file a person opens: decoded, with plain newlines."""
    part = message.get_body((subtype,))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n").encode()


@cli.group()
def digest() -> None:
    """Compose, preview and send the digest newsletter."""


@digest.command()
@config_option
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Folder for issue.html, issue.txt and issue.eml (created if missing).",
)
@click.option(
    "--to",
    "to_address",
    default="reader@example.org",
    show_default=True,
    help="The recipient address shown in the preview.",
)
@click.option("--name", "to_name", default="", help="The recipient name shown in the preview.")
def preview(config_path: Path, out_dir: Path, to_address: str, to_name: str) -> None:
    """Write the next issue as issue.html, issue.txt and issue.eml, recording nothing.

    Open issue.html in a browser and issue.eml in a mail client to see what
    subscribers will get.
    """
    from feedpub.mail import build_message, with_default_name
    from feedpub.model import Recipient
    from feedpub.output import write_atomic
    from feedpub.pipeline import preview_digest

    config = load_checked(config_path)
    newsletter = with_default_name(config.require_newsletter(), config.site.language)
    draft = preview_digest(config, now())
    print_problems(draft.problems)
    if draft.issue is None or draft.plan is None:
        click.echo("no new posts: there is no next issue to preview")
        return
    issue, plan = draft.issue, draft.plan
    message = build_message(issue, Recipient(to_address, to_name, "preview"), newsletter)
    files = {
        "issue.html": _decoded_part(message, "html"),
        "issue.txt": _decoded_part(message, "plain"),
        "issue.eml": message.as_bytes(),
    }
    for name, data in files.items():
        write_atomic(out_dir / name, data)
    click.echo(
        f"issue #{issue.number}: {plural(len(plan.posts), 'post')} shown, {plan.more} more; "
        f"subject: {issue.subject}; wrote {', '.join(str(out_dir / n) for n in files)}"
    )


class _ProgressLine:
    """'sending 120/1000' on one line of a terminal; silent when not a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, done: int, total: int) -> None:
        if self.enabled and total >= 20:
            end = "\n" if done == total else ""
            click.echo(f"\rsending {done}/{total}", err=True, nl=False)
            if end:
                click.echo("", err=True)


@digest.command()
@config_option
@click.option("--dry-run", is_flag=True, help="Show who would get what; send and record nothing.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but problems.")
def send(config_path: Path, dry_run: bool, quiet: bool) -> None:
    """Send the digest: finish any issue an earlier run left unsent, then send the
    next issue to every active subscriber if there are new posts.

    Without an smtp section, each message is written to outbox_dir as an .eml
    file. A recipient the server refuses for good is recorded and the others go
    on; if the server cannot be reached, the run stops and the next one resumes.
    """
    from feedpub.pipeline import DIGEST_JOB, holding_jobs, send_digest

    config = load_checked(config_path)
    config.require_newsletter()
    progress = _ProgressLine(not quiet and sys.stderr.isatty())
    with holding_jobs(config, (DIGEST_JOB,), "digest send"):
        report = send_digest(
            config, make_deliverer_lazily(config), now, dry_run=dry_run, progress=progress
        )
    print_problems(report.problems)
    for failure in report.failures:
        click.echo(f"failed: {failure}", err=True)
    if quiet:
        return
    if dry_run:
        if not report.planned:
            click.echo("no new posts and nothing left unsent: nothing would be sent")
        for copy in report.planned:
            click.echo(f"issue #{copy.issue} to {copy.email}: {copy.what}")
        return
    if not report.issues:
        click.echo("no new posts and nothing left unsent: nothing to send")
        return
    issues = ", ".join(f"#{n}" for n in report.issues)
    where = f" to {config.outbox_dir}" if config.smtp is None else ""
    suppressed = (
        f"{report.suppressed} suppressed (bounced, complained or unsubscribed), "
        if report.suppressed
        else ""
    )
    click.echo(
        f"issue {issues}: {report.sent} sent{where}, {report.failed} failed, "
        f"{report.skipped} skipped (no matching posts, or left the list), {suppressed}"
        f"{report.deferred} deferred"
    )
