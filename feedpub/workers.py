"""Work spread over every core, in forked processes."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar


def worth_forking(count: int, threshold: int, parallel: bool | None = None) -> bool:
    """Whether ``count`` pieces of work repay starting worker processes;
    ``parallel`` True or False says so whatever the count (tests force each road)."""
    if parallel is not None:
        return parallel and count > 0
    return count >= threshold and (os.cpu_count() or 1) > 1


Shared = TypeVar("Shared")
Result = TypeVar("Result")


def forked_map(
    function: Callable[[Shared, int], Result], shared: Shared, count: int
) -> list[Result]:
    """``[function(shared, i) for i in range(count)]`` over every core.

    The workers are forked: they inherit ``shared`` (and ``function``) instead of
    receiving them pickled, and only their results travel back. What they run
    must be imported before this is called: a child forked while another thread
    of the parent (the daemon's web server, say) held the import lock would wait
    forever. An exception in a worker is raised here.
    """
    import multiprocessing  # here: a build with nothing to do need not import it

    context = multiprocessing.get_context("fork")
    workers = max(1, min(os.cpu_count() or 1, 8, count))
    started = []
    try:
        for first in range(workers):
            receiver, sender = context.Pipe(duplex=False)
            indices = range(first, count, workers)
            process = context.Process(
                target=_work, args=(function, shared, indices, sender), daemon=True
            )
            process.start()
            sender.close()
            started.append((receiver, process))
        results: list[Any] = [None] * count
        for first, (receiver, process) in enumerate(started):
            try:
                outcome = receiver.recv()
            except EOFError:
                raise RuntimeError(f"a worker process died ({process.exitcode})") from None
            if isinstance(outcome, BaseException):
                raise outcome
            results[first::workers] = outcome
        return results
    finally:
        for receiver, process in started:
            receiver.close()
            if process.is_alive():
                process.terminate()
            process.join()


def _work(
    function: Callable[[Shared, int], Result], shared: Shared, indices: range, sender: Any
) -> None:
    """A forked worker's whole life: its share of the work, sent back at once."""
    try:
        sender.send([function(shared, i) for i in indices])
    except BaseException as exc:  # reaches forked_map, which raises it
        sender.send(exc)
    finally:
        sender.close()
