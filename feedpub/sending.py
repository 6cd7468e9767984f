"""Messages in flight on several connections at once (``smtp.connections``).

Only the sending runs in worker threads, each on a deliverer of its own; every
result comes back to the thread that submitted it, so the ledger (SQLite) is
written from one thread, in the same steps as with one connection: committed
before a message leaves and after its answer.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from types import TracebackType
from typing import Generic, TypeVar

from feedpub.delivery import Deliverer, Outcome

T = TypeVar("T")


class Connections(Generic[T]):
    """Up to ``size`` sends at once. The first deliverer is the caller's (it
    closes it); the others are made by ``connect`` when first needed and closed
    here. A send that raises gives its exception back as its result."""

    def __init__(self, first: Deliverer, connect: Callable[[], Deliverer], size: int) -> None:
        self.size = max(1, size)
        self._connect = connect
        self._idle: queue.SimpleQueue[Deliverer] = queue.SimpleQueue()
        self._idle.put(first)
        self._made: list[Deliverer] = []
        self._pool = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="feedpub-smtp")
        self._in_flight: dict[Future[Outcome], T] = {}

    def __len__(self) -> int:
        return len(self._in_flight)

    @property
    def full(self) -> bool:
        return len(self._in_flight) >= self.size

    def submit(self, key: T, data: bytes, sender: str, recipient: str, name: str) -> None:
        """Send ``data`` on an idle connection; ``key`` comes back with the result."""
        deliverers = 1 + len(self._made)
        if len(self._in_flight) >= deliverers and deliverers < self.size:  # all busy
            made = self._connect()  # connects when it first sends, in its worker
            self._made.append(made)
            self._idle.put(made)
        self._in_flight[self._pool.submit(self._send, data, sender, recipient, name)] = key

    def _send(self, data: bytes, sender: str, recipient: str, name: str) -> Outcome:
        deliverer = self._idle.get()
        try:
            return deliverer.send(data, sender, recipient, name)
        finally:
            self._idle.put(deliverer)

    def next_done(self) -> tuple[T, Outcome | Exception]:
        """Wait for one send to finish: its key, and its outcome or exception."""
        done, _ = wait(self._in_flight, return_when=FIRST_COMPLETED)
        future = next(iter(done))
        key = self._in_flight.pop(future)
        error = future.exception()
        if error is not None:
            return key, error if isinstance(error, Exception) else RuntimeError(str(error))
        return key, future.result()

    def __enter__(self) -> Connections[T]:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._pool.shutdown(wait=True)
        for made in self._made:
            made.close()
