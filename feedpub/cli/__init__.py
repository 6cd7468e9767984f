"""The ``feedpub`` command: thin wiring from options to the pipeline.

A ``FeedpubError`` becomes its message and exit code 1; anything else is a bug,
shown as one line unless ``-v`` asks for the traceback.
"""

from __future__ import annotations

from feedpub.cli import bounces, digest, site, state, stats, subscribers, worker
from feedpub.cli.common import cli

__all__ = ["bounces", "cli", "digest", "main", "site", "state", "stats", "subscribers", "worker"]


def main() -> None:
    cli(prog_name="feedpub")
