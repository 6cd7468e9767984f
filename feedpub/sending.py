"""Messages in flight on several connections at once (``smtp.connections``).

One thread takes every connection in turns: each send goes one step at a time
(SMTPDeliverer.steps), and while the servers answer, the caller makes the next
message and writes the ledger (SQLite), in the same steps as with one
connection. No thread hands the interpreter to another, which cost more than
making a message.
"""

from __future__ import annotations

import math
import select
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, TypeVar

from feedpub.delivery import Deliverer, Outcome, Room, SMTPDeliverer, Steps

T = TypeVar("T")


@dataclass(slots=True)
class _Transfer(Generic[T]):
    """A send under way: the socket it waits on (to read, or to write when
    ``room``), and until when (a wait that lasts past then times out as the
    socket's own read or write would)."""

    key: T
    deliverer: Deliverer
    steps: Steps
    sock: socket.socket | None = None
    room: bool = False
    until: float = 0.0


def _after(delay: float, steps: Steps) -> Steps:
    """``steps``, ``delay`` seconds from now."""
    yield delay
    return (yield from steps)


class Connections(Generic[T]):
    """Up to ``size`` sends at once. The first deliverer is the caller's (it
    closes it); the others are made by ``connect`` when first needed and closed
    here. A send that raises gives its exception back as its result. A
    deliverer that is not an SMTPDeliverer sends at once, when submitted.

    A message is written as far as the connection's buffer takes it, then
    waits its turn for room like the others wait for replies (one over TLS
    is written whole)."""

    def __init__(self, first: Deliverer, connect: Callable[[], Deliverer], size: int) -> None:
        self.size = max(1, size)
        self._connect = connect
        self._idle: list[Deliverer] = [first]
        self._made: list[Deliverer] = []
        self._waiting: list[_Transfer[T]] = []
        self._done: deque[tuple[T, Outcome | Exception]] = deque()
        self._in_flight = 0  # submitted, and not yet given back by next_done

    def __len__(self) -> int:
        return self._in_flight

    @property
    def full(self) -> bool:
        return self._in_flight >= self.size

    def submit(
        self, key: T, data: bytes, sender: str, recipient: str, name: str, *, after: float = 0.0
    ) -> None:
        """Start sending ``data`` on an idle connection, ``after`` seconds from now
        (the other connections go on meanwhile); ``key`` comes back with the result."""
        if self._idle:
            deliverer = self._idle.pop()
        else:  # all busy: one more, which connects when it first sends
            deliverer = self._connect()
            self._made.append(deliverer)
        self._in_flight += 1
        if isinstance(deliverer, SMTPDeliverer):
            steps = deliverer.steps(data, sender, recipient)
            self._step(_Transfer(key, deliverer, _after(after, steps) if after else steps))
            return
        if after:
            time.sleep(after)
        result: Outcome | Exception
        try:
            result = deliverer.send(data, sender, recipient, name)
        except Exception as error:
            result = error
        self._end(key, deliverer, result)

    def _step(self, transfer: _Transfer[T], error: Exception | None = None) -> None:
        """Take the next step of ``transfer`` (``error`` raised where it waited)."""
        try:
            wait = transfer.steps.throw(error) if error else next(transfer.steps)
        except StopIteration as done:
            self._end(transfer.key, transfer.deliverer, done.value)
            return
        except Exception as failure:
            self._end(transfer.key, transfer.deliverer, failure)
            return
        if isinstance(wait, socket.socket | Room):
            transfer.room = isinstance(wait, Room)
            transfer.sock = wait.sock if isinstance(wait, Room) else wait
            timeout = transfer.sock.gettimeout()
            transfer.until = time.monotonic() + (math.inf if timeout is None else timeout)
        else:
            transfer.sock, transfer.until = None, time.monotonic() + wait
        self._waiting.append(transfer)

    def _end(self, key: T, deliverer: Deliverer, result: Outcome | Exception) -> None:
        self._idle.append(deliverer)
        self._done.append((key, result))

    def next_done(self) -> tuple[T, Outcome | Exception]:
        """Wait for one send to finish: its key, and its outcome or exception."""
        while not self._done:
            self._poll()
        self._in_flight -= 1
        return self._done.popleft()

    def _poll(self) -> None:
        """Wait until a server answers or a wait is over, and take those sends'
        next steps."""
        waiting = self._waiting
        if len(waiting) == 1 and waiting[0].sock is not None:
            # One socket to wait on: its own read or write waits, and times out,
            # as the poll below would.
            self._step(waiting.pop())
            return
        poller = select.poll()
        for transfer in waiting:
            if transfer.sock is not None:
                poller.register(transfer.sock, select.POLLOUT if transfer.room else select.POLLIN)
        wait = min(t.until for t in waiting) - time.monotonic()
        ready = {
            fd
            for fd, _ in poller.poll(None if wait == math.inf else max(0, math.ceil(wait * 1000)))
        }
        now = time.monotonic()
        for transfer in list(waiting):
            if transfer.sock is not None and transfer.sock.fileno() in ready:
                waiting.remove(transfer)
                self._step(transfer)
            elif transfer.until <= now:
                waiting.remove(transfer)
                timed_out = TimeoutError("timed out") if transfer.sock is not None else None
                self._step(transfer, timed_out)

    def __enter__(self) -> Connections[T]:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        """Let the sends in flight finish, then close the connections made here.
        A send still waiting to begin (a retry's delay, the rate limit's) is
        dropped: nothing of it has left."""
        try:
            for transfer in [t for t in self._waiting if t.sock is None]:
                self._waiting.remove(transfer)
                transfer.steps.close()
            while self._waiting:
                self._poll()
        finally:
            for made in self._made:
                made.close()
