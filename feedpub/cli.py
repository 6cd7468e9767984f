"""The ``feedpub`` command: thin wiring from options to the pipeline.

A ``FeedpubError`` becomes its message and exit code 1; anything else is a bug,
shown as one line unless ``-v`` asks for the traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import click

from feedpub import __version__
from feedpub.collector import Collection, collect, select
from feedpub.config import Config, load_config
from feedpub.errors import FeedpubError, ProblemsError
from feedpub.mail import build_message
from feedpub.model import Problem, Recipient, Severity
from feedpub.output import write_atomic
from feedpub.pipeline import build_feeds, compose_digest

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


def _content_summary(collection: Collection, now: datetime) -> str:
    posts = collection.posts
    drafts = sum(p.draft for p in posts)
    scheduled = sum(not p.draft and p.date > now for p in posts)
    published = len(select(posts, now))
    duplicates = len(posts) - drafts - scheduled - published
    return (
        f"{_count(collection.files, 'content file')}: {_count(len(posts), 'post')} "
        f"({published} published, {_count(drafts, 'draft')}, {scheduled} scheduled, "
        f"{_count(duplicates, 'duplicate story', 'duplicate stories')}), "
        f"{collection.files - len(posts)} skipped"
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
    config = _load(config_path)
    collection = collect(config.content, config.site)
    _report(collection.problems)
    errors, warnings = _tally((*config.warnings, *collection.problems))
    click.echo(
        f"{_content_summary(collection, datetime.now(UTC))}; "
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
    """
    config = _load(config_path)
    now = datetime.now(UTC)
    report = build_feeds(config, now, strict=strict)
    _report(report.problems)
    feeds = report.feeds
    if not quiet:
        click.echo(
            f"{_content_summary(report.collection, now)}; "
            f"feeds: {len(feeds.written)} written, {len(feeds.unchanged)} unchanged, "
            f"{len(feeds.removed)} removed, in {config.feeds.output_dir} ({report.seconds:.2f} s)"
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
    config = _load(config_path)
    newsletter = config.require_newsletter()
    now = datetime.now(UTC)
    draft = compose_digest(config, now, frozenset(), 1)
    _report(draft.collection.problems)
    if draft.issue is None:
        click.echo("no new posts: there is no next issue to preview")
        return
    message = build_message(draft.issue, Recipient(to_address, to_name, "preview"), newsletter)
    files = {
        "issue.html": _decoded_part(message, "html"),
        "issue.txt": _decoded_part(message, "plain"),
        "issue.eml": message.as_bytes(),
    }
    for name, data in files.items():
        write_atomic(out_dir / name, data)
    issue = draft.issue
    click.echo(
        f"issue #{issue.number}: {_count(len(issue.posts), 'post')} shown, {issue.more} more; "
        f"subject: {issue.subject}; wrote {', '.join(str(out_dir / n) for n in files)}"
    )


def main() -> None:
    cli(prog_name="feedpub")
