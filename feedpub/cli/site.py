"""The commands that build and run: check, build, run, daemon, serve."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
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
    strict_option,
    tally,
)
from feedpub.config import Config
from feedpub.model import Post, Problem, Severity
from feedpub.summaries import build_summary, content_summary, plural, send_summary

if TYPE_CHECKING:
    from feedpub.web import WebServer


@cli.command()
@config_option
@strict_option
def check(config_path: Path, strict: bool) -> None:
    """Check the configuration and every content file, and list each problem.

    Exits with 1 when there is an error (or, with --strict, a warning).
    """
    from feedpub.collector import collect, content_counts

    config = load_checked(config_path)
    collection = collect(config.content, config.site)
    problems = (*collection.problems, *_shortcode_problems(config, collection.posts))
    print_problems(problems)
    errors, warnings = tally((*config.warnings, *problems))
    click.echo(
        f"{content_summary(content_counts(collection, now()))}; "
        f"{plural(errors, 'error')}, {plural(warnings, 'warning')}"
    )
    if errors or (strict and warnings):
        raise click.exceptions.Exit(1)


def _shortcode_problems(config: Config, posts: Sequence[Post]) -> list[Problem]:
    """What expanding each post's shortcodes meets, at its file's line; a
    shortcode without a template is named once, with the template to add."""
    from feedpub.content.links import PostNames
    from feedpub.content.render import expand_post, render_context
    from feedpub.theme import shortcode_template

    context = render_context(config, PostNames(post.rel_path for post in posts))
    problems: list[Problem] = []
    unknown: set[str] = set()
    for post in posts:
        notes = expand_post(post, context).notes
        if not notes:
            continue
        text = Path(post.path).read_text(encoding="utf-8", errors="replace")
        before_body = text.count("\n") - post.body.count("\n")
        for note in notes:
            line = before_body + note.line
            if note.unknown is None:
                severity = Severity.ERROR if note.error else Severity.WARNING
                problems.append(Problem(post.path, note.message, line, severity))
            elif note.unknown not in unknown:
                unknown.add(note.unknown)
                template = config.templates_dir / shortcode_template(note.unknown)
                message = (
                    f"shortcode {note.unknown!r} has no template: add {template} to show it"
                    " (until then its tags are left out and what they enclose is kept)"
                )
                problems.append(Problem(post.path, message, line, Severity.WARNING))
    return problems


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

    config = load_checked(config_path)
    now = datetime.now(UTC)
    report = build_feeds(config, now, BuildCache(), strict=strict)  # loaded from disk
    print_problems(report.problems)
    if not quiet:
        click.echo(
            f"{build_summary(report)}, in {config.feeds.output_dir} ({report.seconds:.2f} s)"
        )
    errors, warnings = tally(report.problems)
    if strict and (errors or warnings):
        raise click.exceptions.Exit(1)


@cli.command("run")
@config_option
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but problems.")
def run_command(config_path: Path, quiet: bool) -> None:
    """Build the feeds, then send the digest if one is due: for cron or systemd timers.

    A digest is due when a time of newsletter.schedule has passed since the last
    successful send (or none was ever sent).
    """
    from feedpub.pipeline import BUILD_JOB, DIGEST_JOB, holding_jobs, run_once
    from feedpub.scheduler import digest_due, next_fire

    config = load_checked(config_path)
    with holding_jobs(config, (BUILD_JOB, DIGEST_JOB), "feedpub run"):
        build, send = run_once(config, make_deliverer_lazily, now, digest_due)
    print_problems(build.problems)
    if send is not None:
        print_problems(send.problems)
        for failure in send.failures:
            click.echo(f"failed: {failure}", err=True)
    if quiet:
        return
    click.echo(build_summary(build))
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

    config = load_checked(config_path)
    configure_logging(log_format, verbose=bool(ctx.obj))
    companions = [_web_server(config)] if serve else []
    Daemon(config, make_deliverer_lazily, companions=companions).run()


def _web_server(config: Config) -> WebServer:
    from feedpub.web import WebServer, web_secret

    return WebServer(config, web_secret(config), make_deliverer_lazily)


@cli.command()
@config_option
def serve(config_path: Path) -> None:
    """Serve the web app: the feeds (with ETag, Last-Modified and gzip), the
    subscribe form with double opt-in, unsubscribe (one-click too), preferences,
    and the archive of past issues, on web.host:web.port. A worker in the same
    process sends the confirmation emails the form queues, with retries.
    """
    config = load_checked(config_path)
    config.require_newsletter()
    server = _web_server(config)
    click.echo(f"serving on http://{config.web.host}:{config.web.port}/ (Ctrl-C stops)", err=True)
    server.run()
