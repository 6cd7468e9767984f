"""The double opt-in emails: the web form only queues a request in the state
database; this sends them, outside any web request, with retries.

Each request is claimed by one process at a time (the web server's worker, the
daemon, or both), so a confirmation goes out once however many work the queue.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import urljoin

from feedpub import templating
from feedpub.config import Config
from feedpub.delivery import Deliverer
from feedpub.errors import FeedpubError
from feedpub.locale import load_catalog
from feedpub.mail import build_confirmation, message_name
from feedpub.store import Store, SubscribeRequest

log = logging.getLogger("feedpub")

CONFIRM_PATH = "newsletter/confirm/"
# At most this many confirmation emails to one address in a day, whoever asks.
CONFIRMATIONS_PER_DAY = 3
MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)
KEEP_FINISHED = timedelta(days=7)
# How often finished requests are swept away: a worker runs for every subscribe.
SWEEP_EVERY = timedelta(hours=1)


def retry_delay(attempts: int) -> timedelta:
    """30 s after the first failed attempt, doubling, at most an hour."""
    return min(FIRST_RETRY * (1 << max(attempts - 1, 0)), LONGEST_RETRY)


@dataclass
class ConfirmationReport:
    sent: int = 0
    dropped: int = 0
    retrying: int = 0
    failed: int = 0


class ConfirmationSender:
    """Works the queue until nothing is due: composes each request's message once,
    keeps it in the state database, and sends it."""

    def __init__(
        self,
        config: Config,
        make_deliverer: Callable[[Config], Deliverer],
        clock: Callable[[], datetime],
    ) -> None:
        self.config = config
        self.newsletter = config.require_newsletter()
        self.make_deliverer = make_deliverer
        self.clock = clock
        self.env = templating.environment(config.templates_dir)
        self.gettext = load_catalog(config.site.language).gettext
        self._swept: datetime | None = None

    def run(self) -> ConfirmationReport:
        report = ConfirmationReport()
        deliverer = self.make_deliverer(self.config)  # connects only when it first sends
        try:
            with Store(self.config.state) as store:
                self._sweep(store)
                while (request := store.claim_subscribe_request(self.clock())) is not None:
                    composed = request if request.message else self._compose(store, request)
                    if composed is None:
                        report.dropped += 1
                        continue
                    if not self._send(store, deliverer, composed, report):
                        break  # the server is down: the rest wait for their retry
        finally:
            deliverer.close()
        return report

    def _sweep(self, store: Store) -> None:
        """Forget requests finished KEEP_FINISHED ago, at most every SWEEP_EVERY."""
        now = self.clock()
        if self._swept is None or now - self._swept >= SWEEP_EVERY:
            store.forget_subscribe_requests(now - KEEP_FINISHED)
            self._swept = now

    def _compose(self, store: Store, request: SubscribeRequest) -> SubscribeRequest | None:
        """The request with its message, kept in the store; None when no mail goes."""
        now = self.clock()
        prepared = store.prepare_confirmation(
            request.email, request.name, now, now - timedelta(days=1), CONFIRMATIONS_PER_DAY
        )
        if prepared is None:  # already active, or asked too often today
            store.finish_subscribe_request(request.id, "dropped", "no confirmation needed")
            return None
        subscriber, nonce = prepared
        link = urljoin(self.config.web.public_url, CONFIRM_PATH + nonce)
        context = {
            "site": self.config.site,
            "newsletter": self.newsletter,
            "link": link,
            "hours": self.config.web.confirm_hours,
            "language": self.config.site.language.lower(),
        }
        message = build_confirmation(
            self.newsletter,
            subscriber.email,
            request.name,
            link,
            now,
            self.gettext("Confirm your subscription: %(title)s") % {"title": self.newsletter.title},
            templating.render(self.env, "confirm.txt.j2", context),
            templating.render(self.env, "confirm.html.j2", context),
        )
        composed = replace(
            request,
            message=message.as_bytes(),
            recipient=subscriber.email,
            message_name=message_name(message),
        )
        store.compose_subscribe_request(composed)
        return composed

    def _send(
        self,
        store: Store,
        deliverer: Deliverer,
        request: SubscribeRequest,
        report: ConfirmationReport,
    ) -> bool:
        """Send one composed message and record what became of it; False when the
        server itself cannot be used."""
        assert request.message and request.recipient and request.message_name
        recipient = request.recipient
        try:
            outcome = deliverer.send(
                request.message, self.newsletter.sender_email, recipient, request.message_name
            )
        except FeedpubError as exc:
            self._retry(store, request, str(exc), report)
            return False
        if outcome.result == "sent":
            store.finish_subscribe_request(request.id, "sent", outcome.reply)
            report.sent += 1
        elif outcome.result == "permanent":
            log.warning(f"confirmation to {recipient} refused: {outcome.reply}")
            store.finish_subscribe_request(request.id, "failed", outcome.reply)
            report.failed += 1
        else:
            self._retry(store, request, outcome.reply, report)
        return not outcome.connection

    def _retry(
        self, store: Store, request: SubscribeRequest, reply: str, report: ConfirmationReport
    ) -> None:
        if request.attempts >= MAX_ATTEMPTS:
            log.error(f"confirmation to {request.email} given up: {reply}")
            store.finish_subscribe_request(request.id, "failed", reply)
            report.failed += 1
            return
        log.warning(f"confirmation to {request.email} not sent yet: {reply}")
        store.finish_subscribe_request(
            request.id, "ready", reply, self.clock() + retry_delay(request.attempts)
        )
        report.retrying += 1


class ConfirmationWorker:
    """A thread that works the queue whenever it is woken (a form was sent) and
    once a ``poll`` in any case, for retries and for requests other processes queued."""

    def __init__(self, sender: ConfirmationSender, poll: float = 30.0) -> None:
        self.sender = sender
        self.poll = poll
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, name="confirmations", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        if self.thread is not None:
            self.thread.join(timeout=30)

    def _loop(self) -> None:
        while not self.stopping.is_set():
            self.wake.clear()
            try:
                self.sender.run()
            except FeedpubError as exc:
                log.error(f"confirmations: {exc}")
            except Exception as exc:  # a bug must not end the worker
                log.error(f"confirmations: internal error {exc!r}")
            self.wake.wait(self.poll)
