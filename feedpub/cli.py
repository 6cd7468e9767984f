"""The ``feedpub`` command: thin wiring from options to the pipeline.

A ``FeedpubError`` becomes its message and exit code 1; anything else is a bug,
shown as one line unless ``-v`` asks for the traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from feedpub import __version__
from feedpub.config import Config, load_config
from feedpub.errors import FeedpubError, ProblemsError
from feedpub.model import SUBSCRIBER_STATUSES, Problem, Severity

# Each command imports the stages it uses, so that 'feedpub build' never loads
# the mail, web or scheduler libraries and 'feedpub --help' starts at once.
if TYPE_CHECKING:
    from email.message import EmailMessage

    from feedpub.collector import ContentCounts
    from feedpub.delivery import Deliverer
    from feedpub.web import WebServer

F = TypeVar("F", bound=Callable[..., Any])


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ProblemsError as exc:
            _report(exc.problems)
            if exc.summary:
                click.echo(f"error: {exc.summary}", err=True)
            ctx.exit(1)
        except FeedpubError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            if ctx.obj:
                raise
            click.echo(f"internal error: {exc!r} (run feedpub -v ... for the traceback)", err=True)
            ctx.exit(1)


def config_option(command: F) -> F:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default="config.yaml",
        show_default=True,
        help="The configuration file; relative paths in it are read from its folder.",
    )(command)


def _load(config_path: Path) -> Config:
    config = load_config(config_path)
    _report(config.warnings)
    return config


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _report(problems: tuple[Problem, ...]) -> None:
    for problem in problems:
        click.echo(str(problem), err=True)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks for unexpected errors.")
@click.version_option(__version__, prog_name="feedpub")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Publish RSS, Atom and JSON feeds and email digests from Markdown posts."""
    ctx.obj = verbose


def now() -> datetime:
    """The clock the stages are given; everything below the CLI takes time as an argument."""
    return datetime.now(UTC)


def _content_summary(counts: ContentCounts) -> str:
    return (
        f"{_count(counts.files, 'content file')}: {_count(counts.posts, 'post')} "
        f"({counts.published} published, {_count(counts.drafts, 'draft')}, "
        f"{counts.scheduled} scheduled, "
        f"{_count(counts.duplicates, 'duplicate story', 'duplicate stories')}), "
        f"{counts.skipped} skipped"
    )


def _tally(problems: tuple[Problem, ...]) -> tuple[int, int]:
    errors = sum(p.severity is Severity.ERROR for p in problems)
    return errors, len(problems) - errors


strict_option = click.option(
    "--strict", is_flag=True, help="Fail on warnings and content errors, not only on config errors."
)


@cli.command()
@config_option
@strict_option
def check(config_path: Path, strict: bool) -> None:
    """Check the configuration and every content file, and list each problem.

    Exits with 1 when there is an error (or, with --strict, a warning).
    """
    from feedpub.collector import collect, content_counts

    config = _load(config_path)
    collection = collect(config.content, config.site)
    _report(collection.problems)
    errors, warnings = _tally((*config.warnings, *collection.problems))
    click.echo(
        f"{_content_summary(content_counts(collection, now()))}; "
        f"{_count(errors, 'error')}, {_count(warnings, 'warning')}"
    )
    if errors or (strict and warnings):
        raise click.exceptions.Exit(1)


@cli.command()
@config_option
@strict_option
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but problems.")
def build(config_path: Path, strict: bool, quiet: bool) -> None:
    """Build the RSS, Atom and JSON feeds into feeds.output_dir.

    Writes the site feeds and one set per tag and category; files whose bytes
    would not change are left alone, and feeds for terms without posts are removed.
    A post that cannot be read is reported and skipped; --strict makes that fatal.
    A cache beside the state file (build-*.pickle) lets the next build redo only
    what changed; it never changes the output, and may be deleted at any time.
    """
    from feedpub.build import build_feeds
    from feedpub.buildcache import BuildCache

    config = _load(config_path)
    now = datetime.now(UTC)
    report = build_feeds(config, now, BuildCache(), strict=strict)  # loaded from disk
    _report(report.problems)
    if not quiet:
        click.echo(
            f"{_content_summary(report.counts)}; feeds: {report.feeds}, "
            f"in {config.feeds.output_dir} ({report.seconds:.2f} s)"
        )
    errors, warnings = _tally(report.problems)
    if strict and (errors or warnings):
        raise click.exceptions.Exit(1)


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
    from feedpub.mail import build_message
    from feedpub.model import Recipient
    from feedpub.output import write_atomic
    from feedpub.pipeline import preview_digest

    config = _load(config_path)
    newsletter = config.require_newsletter()
    draft = preview_digest(config, now())
    _report(draft.problems)
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
        f"issue #{issue.number}: {_count(len(plan.posts), 'post')} shown, {plan.more} more; "
        f"subject: {issue.subject}; wrote {', '.join(str(out_dir / n) for n in files)}"
    )


def _deliverer(config: Config) -> Deliverer:
    """delivery.make_deliverer, imported only by the commands that send."""
    from feedpub.delivery import make_deliverer

    return make_deliverer(config)


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
    from feedpub.pipeline import send_digest
    from feedpub.store import exclusive_lock

    config = _load(config_path)
    config.require_newsletter()
    progress = _ProgressLine(not quiet and sys.stderr.isatty())
    with exclusive_lock(config.state_path, "digest send"):
        report = send_digest(config, _deliverer(config), now, dry_run=dry_run, progress=progress)
    _report(report.problems)
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
    click.echo(
        f"issue {issues}: {report.sent} sent{where}, {report.failed} failed, "
        f"{report.skipped} skipped (no matching posts, or left the list), "
        f"{report.deferred} deferred"
    )


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
def subscribers_add(config_path: Path, email: str, name: str, tags: str, status: str) -> None:
    """Add EMAIL to the list."""
    from feedpub.store import Store
    from feedpub.subscribers import check_email, parse_tags

    config = _load(config_path)
    try:
        address = check_email(email)
    except ValueError as exc:
        raise FeedpubError(str(exc)) from None
    with Store(config.state_path) as store:
        added = store.add_subscriber(
            address, name.strip(), parse_tags(tags), status, datetime.now(UTC)
        )
    click.echo(f"added {added.email} ({added.status})")


@subscribers.command("remove")
@config_option
@click.argument("email")
def subscribers_remove(config_path: Path, email: str) -> None:
    """Unsubscribe EMAIL. The record stays, marked unsubscribed, with its history."""
    from feedpub.store import Store

    config = _load(config_path)
    with Store(config.state_path) as store:
        if store.subscriber(email) is None:
            raise FeedpubError(f"{email} is not on the list")
        store.set_status(email, "unsubscribed", datetime.now(UTC))
    click.echo(f"unsubscribed {email}")


@subscribers.command("list")
@config_option
@click.option("--status", type=click.Choice(SUBSCRIBER_STATUSES), help="Only this status.")
def subscribers_list(config_path: Path, status: str | None) -> None:
    """List subscribers: address, status, name and tags."""
    from feedpub.store import Store

    config = _load(config_path)
    with Store(config.state_path) as store:
        listed = store.subscribers(status)
    for s in listed:
        tags = f"  [{'; '.join(s.tags)}]" if s.tags else ""
        click.echo(f"{s.email}  {s.status}  {s.name}{tags}".rstrip())
    click.echo(f"{_count(len(listed), 'subscriber')}", err=True)


@subscribers.command("import")
@config_option
@click.argument("csv_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
def subscribers_import(config_path: Path, csv_file: Path) -> None:
    """Add the subscribers in CSV_FILE (columns: email, and optionally name, tags,
    status). Bad rows are reported with their line numbers; the good ones are kept."""
    from feedpub.store import Store
    from feedpub.subscribers import read_csv

    config = _load(config_path)
    try:
        text = csv_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FeedpubError(f"cannot read {csv_file}: {exc}") from None
    rows, problems = read_csv(text, str(csv_file))
    with Store(config.state_path) as store:
        entries = [(row.email, row.name, row.tags, row.status) for row in rows]
        added = store.add_subscribers(entries, datetime.now(UTC))
    _report(tuple(problems))
    click.echo(
        f"imported {added}, {len(rows) - added} already on the list, "
        f"{_count(len(problems), 'bad row')}"
    )
    if problems:
        raise click.exceptions.Exit(1)


@subscribers.command("export")
@config_option
def subscribers_export(config_path: Path) -> None:
    """Write every subscriber as CSV to standard output (without tokens)."""
    from feedpub.store import Store
    from feedpub.subscribers import write_csv

    config = _load(config_path)
    with Store(config.state_path) as store:
        click.echo(write_csv(store.subscribers()), nl=False)


@cli.command("run")
@config_option
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but problems.")
def run_command(config_path: Path, quiet: bool) -> None:
    """Build the feeds, then send the digest if one is due: for cron or systemd timers.

    A digest is due when a time of newsletter.schedule has passed since the last
    successful send (or none was ever sent).
    """
    from feedpub.pipeline import run_once, send_summary
    from feedpub.scheduler import digest_due, next_fire
    from feedpub.store import exclusive_lock

    config = _load(config_path)
    with exclusive_lock(config.state_path, "run"):
        build, send = run_once(config, _deliverer, now, digest_due)
    _report(build.problems)
    if send is not None:
        _report(send.problems)
        for failure in send.failures:
            click.echo(f"failed: {failure}", err=True)
    if quiet:
        return
    click.echo(f"{_content_summary(build.counts)}; feeds: {build.feeds}")
    if config.newsletter is None:
        click.echo("digest: no newsletter section in the config")
    elif send is None:
        nxt = next_fire(config.newsletter.schedule, config.site.timezone, now())
        click.echo(f"digest: not due; next at {nxt.isoformat()}")
    else:
        where = f" (to {config.outbox_dir})" if config.smtp is None else ""
        click.echo(f"digest: {send_summary(send)}{where}")


@cli.command()
@config_option
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json writes one JSON object per line, for log collectors.",
)
@click.option("--serve", is_flag=True, help="Also run the web app (feedpub serve) in this process.")
@click.pass_context
def daemon(ctx: click.Context, config_path: Path, log_format: str, serve: bool) -> None:
    """Run until stopped: build the feeds on schedule.build and send the digest on
    newsletter.schedule, both in site.timezone, and the confirmation emails the
    web app queued every minute.

    A digest whose time passed while the daemon was down is sent once at start.
    SIGTERM or SIGINT stops it after the message being sent; SIGHUP reloads the
    config (a bad one is reported and the old one kept). Logs go to stderr.
    """
    from feedpub.scheduler import Daemon, configure_logging
    from feedpub.store import exclusive_lock

    config = _load(config_path)
    configure_logging(log_format, verbose=bool(ctx.obj))
    companions = [_web_server(config)] if serve else []
    with exclusive_lock(config.state_path, "daemon"):
        Daemon(config, _deliverer, companions=companions).run()


def _web_server(config: Config) -> WebServer:
    from feedpub.web import WebServer, web_secret

    return WebServer(config, web_secret(config), _deliverer)


@cli.command()
@config_option
def serve(config_path: Path) -> None:
    """Serve the web app: the feeds (with ETag, Last-Modified and gzip), the
    subscribe form with double opt-in, unsubscribe (one-click too), preferences,
    and the archive of past issues, on web.host:web.port. A worker in the same
    process sends the confirmation emails the form queues, with retries.
    """
    config = _load(config_path)
    config.require_newsletter()
    server = _web_server(config)
    click.echo(f"serving on http://{config.web.host}:{config.web.port}/ (Ctrl-C stops)", err=True)
    server.run()


def main() -> None:
    cli(prog_name="feedpub")
