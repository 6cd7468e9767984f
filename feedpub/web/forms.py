"""What guards the forms: CSRF tokens tied to a cookie the server issued, and
rate limits per client, with the client named only by trusted proxies."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from feedpub.store import StateDatabase, Store

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class Csrf:
    """The cookie is a random value with the server's signature, so a value the
    client picked is never honoured; each form carries a second signature of it."""

    def __init__(self, secret: bytes, secure: bool) -> None:
        self.secret = secret
        self.secure = secure
        # __Host-: the browser takes it only over https, for this host alone, path /.
        self.cookie_name = "__Host-feedpub_csrf" if secure else "feedpub_csrf"

    def _sign(self, purpose: str, value: str) -> str:
        return hmac.new(self.secret, f"{purpose}\0{value}".encode(), hashlib.sha256).hexdigest()

    def _issued(self, cookie: str) -> bool:
        value, _, signature = cookie.partition(".")
        return bool(value) and hmac.compare_digest(signature, self._sign("cookie", value))

    def cookie(self, request: Request) -> str:
        """The visitor's cookie if this server issued it, else a new one."""
        cookie = request.cookies.get(self.cookie_name, "")
        if self._issued(cookie):
            return cookie
        value = secrets.token_urlsafe(24)
        return f"{value}.{self._sign('cookie', value)}"

    def field(self, cookie: str) -> str:
        """The hidden form field that goes with ``cookie``."""
        return self._sign("field", cookie)

    def valid(self, request: Request, form: FormData) -> bool:
        cookie = request.cookies.get(self.cookie_name, "")
        field = form.get("csrf")
        if not self._issued(cookie) or not isinstance(field, str):
            return False
        return hmac.compare_digest(self.field(cookie), field)

    def set_cookie(self, response: Response, cookie: str) -> None:
        response.set_cookie(
            self.cookie_name, cookie, httponly=True, samesite="lax", secure=self.secure, path="/"
        )


def _address(text: str | None) -> Address | None:
    try:
        return ipaddress.ip_address((text or "").strip().strip("[]"))
    except ValueError:
        return None


def client_key(peer: str | None, forwarded: str | None, trusted: Sequence[Network]) -> str:
    """Whom a rate limit counts: the connecting address, unless that is a trusted
    proxy; then the nearest address in X-Forwarded-For that is not one. IPv6
    clients count by their /64, the block one subscriber line gets."""
    address = _address(peer)
    if address is None:
        return "unknown"

    def is_trusted(candidate: Address) -> bool:
        return any(candidate in network for network in trusted)

    if forwarded and is_trusted(address):
        for hop in reversed(forwarded.split(",")):
            hop_address = _address(hop)
            if hop_address is None:  # a malformed entry: trust nothing further left
                break
            address = hop_address
            if not is_trusted(hop_address):
                break
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class RateLimiter:
    """At most ``limit`` events per key in any ``window`` seconds, in memory.

    Keys whose events have all expired are dropped as others arrive, and at most
    ``max_keys`` are kept (the least recently seen go first), so a flood of new
    addresses cannot grow it without bound.
    """

    def __init__(
        self,
        limit: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        self.events: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()  # asked from the web app's threads

    def allow(self, key: str) -> bool:
        with self._lock:
            return self._allow(key)

    def _allow(self, key: str) -> bool:
        now = self.clock()
        horizon = now - self.window
        events = self.events.pop(key, None) or deque()
        while events and events[0] <= horizon:
            events.popleft()
        allowed = len(events) < self.limit
        if allowed:
            events.append(now)
        self.events[key] = events  # now the most recently seen
        while self.events:
            oldest = next(iter(self.events.values()))
            if len(self.events) <= self.max_keys and oldest and oldest[-1] > horizon:
                break
            self.events.popitem(last=False)
        return allowed


class SharedRateLimiter:
    """At most ``limit`` events per key in a window of ``window`` seconds begun
    by the key's first event, counted in the state database, so that every web
    process behind a load balancer, on any machine, keeps to one limit. Windows
    that are over are dropped once a window."""

    def __init__(
        self,
        state: StateDatabase,
        bucket: str,
        limit: int,
        window: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.bucket = bucket
        self.limit = limit
        self.window = window
        self.clock = clock
        self._swept = clock()

    def allow(self, key: str) -> bool:
        now = self.clock()
        with Store(self.state) as store:
            if now - self._swept > self.window:
                self._swept = now
                store.forget_counts(self.bucket, now - self.window)
            return store.count_event(self.bucket, key, now, self.window) <= self.limit


Limiter = RateLimiter | SharedRateLimiter


async def within_limit(limiter: Limiter, request: Request, trusted: Sequence[Network]) -> bool:
    """Whether ``limiter`` lets ``request``'s client (``client_key``) go on; asked
    off the event loop, since a shared limit is a write to the database."""
    client = client_key(
        request.client.host if request.client else None,
        request.headers.get("x-forwarded-for"),
        trusted,
    )
    return await run_in_threadpool(limiter.allow, client)
