"""The ``feedpub`` command: thin wiring from options to the pipeline.

A ``FeedpubError`` becomes its message and exit code 1; anything else is a bug,
shown as one line unless ``-v`` asks for the traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from feedpub import __version__
from feedpub.collector import collect, select
from feedpub.config import Config, load_config
from feedpub.errors import ConfigError, FeedpubError
from feedpub.model import Problem, Severity

F = TypeVar("F", bound=Callable[..., Any])


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FeedpubError as exc:
            for line in str(exc).splitlines():
                click.echo(line if isinstance(exc, ConfigError) else f"error: {line}", err=True)
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


def _report(problems: tuple[Problem, ...] | list[Problem]) -> None:
    for problem in problems:
        click.echo(str(problem), err=True)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks for unexpected errors.")
@click.version_option(__version__, prog_name="feedpub")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Publish RSS, Atom and JSON feeds and email digests from Markdown posts."""
    ctx.obj = verbose


@cli.command()
@config_option
@click.option("--strict", is_flag=True, help="Fail on warnings too, not only on errors.")
def check(config_path: Path, strict: bool) -> None:
    """Check the configuration and every content file, and list each problem.

    Exits with 1 when there is an error (or, with --strict, a warning).
    """
    config = _load(config_path)
    collection = collect(config.content, config.site)
    _report(collection.problems)
    now = datetime.now(UTC)
    posts = collection.posts
    drafts = sum(p.draft for p in posts)
    scheduled = sum(not p.draft and p.date > now for p in posts)
    published = len(select(posts, now))
    duplicates = len(posts) - drafts - scheduled - published
    problems = (*config.warnings, *collection.problems)
    errors = sum(p.severity is Severity.ERROR for p in problems)
    warnings = len(problems) - errors
    click.echo(
        f"{_count(collection.files, 'content file')}: {_count(len(posts), 'post')} "
        f"({published} published, {_count(drafts, 'draft')}, {scheduled} scheduled, "
        f"{_count(duplicates, 'duplicate story', 'duplicate stories')}), "
        f"{collection.files - len(posts)} skipped; "
        f"{_count(errors, 'error')}, {_count(warnings, 'warning')}"
    )
    if errors or (strict and warnings):
        raise click.exceptions.Exit(1)


def main() -> None:
    cli(prog_name="feedpub")
