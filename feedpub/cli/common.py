"""The ``feedpub`` group, its options, and the helpers every command shares."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from feedpub import __version__
from feedpub.config import Config, load_config
from feedpub.errors import FeedpubError, ProblemsError
from feedpub.model import Problem, Severity

# Each command imports the stages it uses, so that 'feedpub build' never loads
# the mail, web or scheduler libraries and 'feedpub --help' starts at once.
if TYPE_CHECKING:
    from feedpub.delivery import Deliverer

F = TypeVar("F", bound=Callable[..., Any])


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ProblemsError as exc:
            print_problems(exc.problems)
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


def load_checked(config_path: Path) -> Config:
    config = load_config(config_path)
    print_problems(config.warnings)
    return config


def print_problems(problems: tuple[Problem, ...]) -> None:
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


def tally(problems: tuple[Problem, ...]) -> tuple[int, int]:
    errors = sum(p.severity is Severity.ERROR for p in problems)
    return errors, len(problems) - errors


strict_option = click.option(
    "--strict", is_flag=True, help="Fail on warnings and content errors, not only on config errors."
)


def make_deliverer_lazily(config: Config) -> Deliverer:
    """delivery.make_deliverer, imported only by the commands that send."""
    from feedpub.delivery import make_deliverer

    return make_deliverer(config)
