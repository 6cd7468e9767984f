"""Per-domain pacing (``smtp.domains``): how fast, and how many at once, messages
may go to one recipient domain, and a domain that asks to slow down slowed
alone. Pure: the clock is passed in, and nothing here sends.
"""

from __future__ import annotations

import math
import re
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

# A temporary refusal that says "too many" or "too fast" rather than anything
# about the message: Gmail's 421-4.7.28, Yahoo's 421 4.7.0 [TS0x], "too many
# connections", "rate limit". A bare "try again later" is not one: greylisting
# says it to every new sender, about that one recipient.
_SLOW_DOWN = re.compile(r"4\.7\.(?:0|28)\b|too many|rate.?limit|throttl|slow down", re.I)
# The rate a domain that asked to slow down, and had no limit, is given.
FIRST_SLOWED_RATE = 1.0
# The slowest a domain is made to go (one message a minute), and how long after
# one slow-down the next counts: the replies to the messages already on their
# way, and their retries, say the same thing once more each.
SLOWEST_RATE = 1 / 60
SLOW_DOWN_SPACING = 30.0


@dataclass(frozen=True, slots=True)
class DomainPace:
    """At most ``rate`` messages a second to the domain (0: no limit), and at
    most ``connections`` on their way at once (0: as many as ``smtp.connections``)."""

    rate: float = 0.0
    connections: int = 0


def asks_to_slow_down(reply: str) -> bool:
    """Whether a temporary refusal is the server pacing us, not judging the message."""
    return reply[:1] == "4" and _SLOW_DOWN.search(reply) is not None


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


class DomainPacer:
    """When the next message to each paced domain may leave. Every domain is
    paced by its own entry in ``limits`` (or its parent domain's:
    ``mail.example.org`` by ``example.org``), or not at all; one that asks to
    slow down (``slow_down``) has its rate halved, or set to one a second."""

    def __init__(self, limits: Mapping[str, DomainPace], clock: Callable[[], float]) -> None:
        self.limits = {domain.lower(): pace for domain, pace in limits.items()}
        self.clock = clock
        self.next_at: dict[str, float] = {}
        self.on_the_way: Counter[str] = Counter()
        self.slowed_at: dict[str, float] = {}

    def key(self, address: str) -> str | None:
        """The paced domain ``address`` counts against, or None."""
        if not self.limits:  # the usual case: nothing to look up for each message
            return None
        domain = domain_of(address)
        while domain:
            if domain in self.limits:
                return domain
            domain = domain.partition(".")[2]
        return None

    def wait(self, address: str) -> float:
        """Seconds until a message to ``address`` may leave: 0 now, ``inf`` until
        one to its domain on its way is answered."""
        key = self.key(address)
        if key is None:
            return 0.0
        pace = self.limits[key]
        if pace.connections and self.on_the_way[key] >= pace.connections:
            return math.inf
        return max(0.0, self.next_at.get(key, 0.0) - self.clock())

    def leaving(self, address: str) -> None:
        """A message to ``address`` leaves now."""
        key = self.key(address)
        if key is None:
            return
        self.on_the_way[key] += 1
        rate = self.limits[key].rate
        if rate:
            self.next_at[key] = max(self.clock(), self.next_at.get(key, 0.0)) + 1 / rate

    def answered(self, address: str) -> None:
        """A message to ``address`` has its answer."""
        key = self.key(address)
        if key is not None and self.on_the_way[key]:
            self.on_the_way[key] -= 1

    def slow_down(self, address: str) -> None:
        """The domain of ``address`` asked to slow down: half its rate from now on
        (never below SLOWEST_RATE); asked again within SLOW_DOWN_SPACING, once."""
        key = self.key(address) or domain_of(address)
        now = self.clock()
        if now - self.slowed_at.get(key, -math.inf) < SLOW_DOWN_SPACING:
            return
        self.slowed_at[key] = now
        pace = self.limits.get(key, DomainPace())
        rate = max(pace.rate / 2, SLOWEST_RATE) if pace.rate else FIRST_SLOWED_RATE
        self.limits[key] = DomainPace(rate, pace.connections)
        self.next_at[key] = now + 1 / rate


class PacedQueue(Generic[T]):
    """Items in their order, except that one whose domain must wait is held back
    while items for other domains go on; held ones go first once their domain may."""

    def __init__(self, items: Iterable[T], address: Callable[[T], str], pacer: DomainPacer) -> None:
        self._fresh = deque(items)
        self._held: dict[str, deque[T]] = {}
        self._address = address
        self._pacer = pacer

    def __bool__(self) -> bool:
        return bool(self._fresh) or any(self._held.values())

    def take(self) -> T | float:
        """The next item that may go now, or the seconds until one may (``inf``:
        once a message on its way is answered)."""
        soonest = math.inf
        for items in self._held.values():
            if items:
                wait = self._pacer.wait(self._address(items[0]))
                if wait == 0:
                    return items.popleft()
                soonest = min(soonest, wait)
        while self._fresh:
            item = self._fresh.popleft()
            address = self._address(item)
            key = self._pacer.key(address)
            if key is None:  # an unpaced domain never waits
                return item
            wait = self._pacer.wait(address)
            if wait == 0 and not self._held.get(key):
                return item
            self._held.setdefault(key, deque()).append(item)
            soonest = min(soonest, wait)
        return soonest
