"""Messages in flight on several connections at once (``smtp.connections``).

Only the sending runs in worker threads, one a connection, each on a deliverer
of its own; every result comes back to the thread that submitted it, so the
ledger (SQLite) is written from one thread, in the same steps as with one
connection.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Generic, TypeVar

from feedpub.delivery import Deliverer, Outcome

T = TypeVar("T")

# A message to send: its key, data, sender, recipient and name.
_Job = tuple[T, bytes, str, str, str]


class Connections(Generic[T]):
    """Up to ``size`` sends at once. The first deliverer is the caller's (it
    closes it); the others are made by ``connect`` when first needed and closed
    here. A send that raises gives its exception back as its result.

    Each connection is a thread that takes the next message from one queue and
    puts its result on another: two queue operations a message, no more."""

    def __init__(self, first: Deliverer, connect: Callable[[], Deliverer], size: int) -> None:
        self.size = max(1, size)
        self._first = first
        self._connect = connect
        self._jobs: queue.SimpleQueue[_Job[T] | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[tuple[T, Outcome | Exception]] = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        self._made: list[Deliverer] = []
        self._in_flight = 0

    def __len__(self) -> int:
        return self._in_flight

    @property
    def full(self) -> bool:
        return self._in_flight >= self.size

    def submit(self, key: T, data: bytes, sender: str, recipient: str, name: str) -> None:
        """Send ``data`` on an idle connection; ``key`` comes back with the result."""
        if self._in_flight >= len(self._workers) < self.size:  # all busy: one more
            deliverer = self._first
            if self._workers:
                deliverer = self._connect()  # connects when it first sends, in its worker
                self._made.append(deliverer)
            worker = threading.Thread(
                target=self._work,
                args=(deliverer,),
                name=f"feedpub-smtp-{len(self._workers) + 1}",
                daemon=True,
            )
            worker.start()
            self._workers.append(worker)
        self._in_flight += 1
        self._jobs.put((key, data, sender, recipient, name))

    def _work(self, deliverer: Deliverer) -> None:
        while (job := self._jobs.get()) is not None:
            key, data, sender, recipient, name = job
            result: Outcome | Exception
            try:
                result = deliverer.send(data, sender, recipient, name)
            except Exception as error:
                result = error
            except BaseException as error:  # not to be lost in a worker thread
                result = RuntimeError(str(error))
            self._done.put((key, result))

    def next_done(self) -> tuple[T, Outcome | Exception]:
        """Wait for one send to finish: its key, and its outcome or exception."""
        done = self._done.get()
        self._in_flight -= 1
        return done

    def __enter__(self) -> Connections[T]:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        """Let the sends in flight finish, then close the connections made here."""
        for _ in self._workers:
            self._jobs.put(None)
        for worker in self._workers:
            worker.join()
        for made in self._made:
            made.close()
