"""Compose the stages: the CLI and the scheduler call these, nothing else.

The digest is planned once for every audience (``plan_digest``), whether it is
previewed, listed by a dry run or sent; each variant is rendered once, recorded,
and mailed from the record. ``run_once`` builds the feeds and sends a due digest.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from feedpub.build import BuildReport, build_feeds
from feedpub.buildcache import BuildCache
from feedpub.collector import collect, folded_terms, select
from feedpub.config import Config
from feedpub.content.files import find_files
from feedpub.content.links import PostNames
from feedpub.content.render import render_context
from feedpub.cron import CronSchedule
from feedpub.delivery import Deliverer, make_deliverer
from feedpub.digest import EVERY_POST, IssuePlan, IssueTemplates, plan_issue, render_issue
from feedpub.errors import DeliveryError, StateError
from feedpub.mail import MessageMaker, with_default_name
from feedpub.model import Issue, ListEvent, Problem, Recipient
from feedpub.pacing import DomainPacer, PacedQueue, asks_to_slow_down
from feedpub.sending import Connections
from feedpub.smtpstatus import smtp_verdict
from feedpub.store import (
    Delivery,
    StateDatabase,
    Store,
    announced,
    job_lock,
    worker_alive,
    workers_running,
)
from feedpub.summaries import send_summary
from feedpub.verp import bounce_address, delivery_token

# The jobs, each run by one process at a time (see holding_jobs), and the name
# the ledger records its runs under.
BUILD_JOB = "build"
DIGEST_JOB = "digest"
BOUNCES_JOB = "bounces"
# How often a sender looks again at what other workers hold, seconds.
OTHERS_POLL = 0.5


@contextmanager
def holding_jobs(config: Config, jobs: Sequence[str], purpose: str) -> Iterator[None]:
    """Hold the locks of ``jobs`` for the block (StateError at once when another
    process, on any machine that shares the state, holds one)."""
    with StateDatabase(config.state) as state, ExitStack() as held:
        for job in jobs:
            held.enter_context(job_lock(state, job, purpose))
        yield


def worker_name() -> str:
    """A worker's name in the ledger, unique to one run of one process."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True)
class DigestPlan:
    """The next issue as planned from the content: a plan per audience (the folded
    terms its readers want, EVERY_POST for the whole issue), None for an audience
    with nothing new; and what reading the content met."""

    plans: Mapping[frozenset[str], IssuePlan | None]
    problems: tuple[Problem, ...]

    @property
    def whole(self) -> IssuePlan | None:
        """The issue of every new post; None when no post is new."""
        return self.plans[EVERY_POST]


def variant_key(audience: AbstractSet[str]) -> str:
    """How the ledger names the variant for an audience ("" for the whole issue)."""
    return ",".join(sorted(audience))


def plan_digest(
    config: Config,
    now: datetime,
    included: AbstractSet[str],
    audiences: Iterable[frozenset[str]] = (),
) -> DigestPlan:
    """Collect and select the posts, and plan the next issue for the whole list and
    each of ``audiences`` from the posts not in ``included``."""
    max_posts = config.require_newsletter().max_posts
    collection = collect(config.content, config.site)
    published = select(collection.posts, now)
    plans = {
        audience: plan_issue(published, included, max_posts, audience)
        for audience in sorted({EVERY_POST, *audiences}, key=variant_key)
    }
    return DigestPlan(plans, collection.problems)


IssueRenderer = Callable[[IssuePlan, int, datetime], Issue]


def issue_renderer(config: Config) -> IssueRenderer:
    """Renders issues of ``plan``s with this site's settings and templates: the
    templates compiled and the content files listed once for all variants."""
    content, newsletter = config.content, config.require_newsletter()
    templates = IssueTemplates(config.templates_dir, newsletter.template)
    names = PostNames(find_files(content.dir, content.include, content.exclude))
    rendering = render_context(config, names)

    def render(plan: IssuePlan, number: int, now: datetime) -> Issue:
        return render_issue(
            plan,
            number,
            now,
            config.site,
            newsletter,
            templates,
            config.feeds.summary_length,
            rendering,
        )

    return render


@dataclass(frozen=True, slots=True)
class DigestDraft:
    """The whole next issue, rendered, with the plan it was rendered from (both
    None when no post is new), and what reading the content met."""

    issue: Issue | None
    plan: IssuePlan | None
    problems: tuple[Problem, ...]


def compose_digest(
    config: Config, now: datetime, included: AbstractSet[str], number: int
) -> DigestDraft:
    """Issue ``number`` for every reader, of the posts not in ``included``."""
    planned = plan_digest(config, now, included)
    plan = planned.whole
    issue = None if plan is None else issue_renderer(config)(plan, number, now)
    return DigestDraft(issue, plan, planned.problems)


def preview_digest(config: Config, now: datetime) -> DigestDraft:
    """The issue the next send would record for every reader; records nothing."""
    included: AbstractSet[str] = frozenset()
    number = 1
    if config.state.url is not None or config.state.path.exists():
        with Store(config.state) as store:
            included, number = store.included_post_ids(), store.next_issue_number()
    return compose_digest(config, now, included, number)


@dataclass(frozen=True, slots=True)
class PlannedCopy:
    """What --dry-run shows: who would get which issue, and what is in it."""

    email: str
    issue: int
    what: str


@dataclass
class SendReport:
    issues: list[int] = field(default_factory=list)
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    suppressed: int = 0  # subscribers not mailed: they bounced, complained or unsubscribed
    deferred: int = 0
    failures: list[str] = field(default_factory=list)
    planned: list[PlannedCopy] = field(default_factory=list)
    problems: tuple[Problem, ...] = ()
    stopped: bool = False


Progress = Callable[[int, int], None]


def _contents(plan: IssuePlan | None) -> str:
    """What one subscriber's copy holds, for --dry-run."""
    return f"{len(plan.posts)} post(s)" if plan else "nothing: no post has their tags"


class DigestSender:
    """Sends the digest: first whatever an earlier run left unsent, then the next
    issue if there are new posts. Every step is committed before the next, so a
    run stopped at any point is finished by the next one."""

    def __init__(
        self,
        config: Config,
        store: Store,
        deliverer: Deliverer,
        *,
        clock: Callable[[], datetime],
        progress: Progress | None = None,
        stop: Callable[[], bool] = lambda: False,
        connect: Callable[[], Deliverer] | None = None,
    ) -> None:
        """``connect`` makes a deliverer for each further connection that
        ``smtp.connections`` allows (by default from the config, as the first)."""
        self.config = config
        self.newsletter = with_default_name(config.require_newsletter(), config.site.language)
        self.store = store
        self.deliverer = deliverer
        self.clock = clock
        self.progress = progress
        self.stop = stop
        smtp = config.smtp
        self.max_attempts = smtp.max_attempts if smtp else 1
        self.retry_delay = smtp.retry_delay if smtp else 0.0
        self.connections = smtp.connections if smtp else 1
        self.domains = smtp.domains if smtp else {}
        self.connect = connect or (lambda: make_deliverer(config))
        self.policy = config.delivery
        self.lease, self.batch = config.lease, config.claim_batch
        self.worker = worker_name()

    def run(self, *, dry_run: bool = False) -> SendReport:
        report = SendReport()
        for number in self.store.unfinished_issues():
            report.issues.append(number)
            if dry_run:
                report.planned.extend(
                    PlannedCopy(d.email, number, "left unsent by an earlier run")
                    for d in self.store.open_deliveries(number)
                )
            else:
                self._deliver(number, report)
        if report.stopped:
            return report
        new_number = self._compose(report, dry_run)
        if new_number is not None and not dry_run:
            self._deliver(new_number, report)
        return report

    def work(self) -> SendReport:
        """What 'feedpub worker' does each time it looks: deliver its share of
        every issue with deliveries open, beside the other workers; compose none."""
        report = SendReport()
        for number in self.store.unfinished_issues():
            report.issues.append(number)
            self._deliver(number, report, wait_for_others=False)
            if report.stopped:
                break
        return report

    def _compose(self, report: SendReport, dry_run: bool) -> int | None:
        """Plan the next issue for each subscriber's tags and record it, each
        variant rendered once (with ``dry_run``, list who would get what instead);
        its number, or None when no post is new."""
        now = self.clock()
        subscribers = self.store.recipients()
        report.suppressed = self.store.suppressed_subscribers()
        audience = {s.id: folded_terms(s.tags) for s in subscribers}
        planned = plan_digest(self.config, now, self.store.included_post_ids(), audience.values())
        report.problems = planned.problems
        if planned.whole is None:
            return None
        number = self.store.next_issue_number()
        plans = planned.plans
        if dry_run:
            report.planned.extend(
                PlannedCopy(s.email, number, _contents(plans[audience[s.id]])) for s in subscribers
            )
            return number
        keys = {terms: variant_key(terms) for terms, plan in plans.items() if plan is not None}
        render = issue_renderer(self.config)
        issues = {
            keys[terms]: render(plan, number, now)
            for terms, plan in plans.items()
            if plan is not None
        }
        recipients = [(s, keys.get(audience[s.id])) for s in subscribers]
        self.store.record_issue(
            number,
            now,
            issues[variant_key(EVERY_POST)].subject,
            planned.whole.covered,
            issues,
            recipients,
        )
        report.issues.append(number)
        report.skipped += sum(key is None for _, key in recipients)
        return number

    def _deliver(self, number: int, report: SendReport, *, wait_for_others: bool = True) -> None:
        """Send issue ``number``'s open deliveries, claimed a batch at a time
        (``delivery.batch``, held for ``delivery.lease_seconds``) beside any other
        workers, up to ``smtp.connections`` at once; each is checked against the
        subscriber right before it goes, and committed before it leaves and
        after its answer. A server that cannot be reached stops the run once the
        messages in flight have their answers. With ``wait_for_others``, what
        other workers hold is waited for (and taken over if they die), and the
        report counts their work too.

        An answer is committed with the next message's 'sending' mark, in one
        transaction, before that message leaves (or, for the last ones, when the
        run ends): no message leaves while an answer waits to be recorded, so a
        crash can at most make the messages in flight and those answered but not
        yet recorded, together no more than ``smtp.connections``, go again.

        Deliveries go in order, but one to a domain ``smtp.domains`` paces goes
        only when that domain may take it; meanwhile the others go on."""
        before = self.store.tally(number)
        makers: dict[str, MessageMaker] = {}  # one per variant, read once from the ledger
        run = _Run(before.open, DomainPacer(self.domains, time.monotonic))
        with announced(self.store.state, self.worker):
            try:
                with Connections[_Sending](self.deliverer, self.connect, self.connections) as pool:
                    try:
                        self._claim_and_send(
                            number, pool, run, report, makers, wait_for_others, before.done
                        )
                        while pool:
                            self._settle(pool, run, report)
                    finally:
                        if run.unrecorded:
                            self.store.record_settled(run.unrecorded, self.clock())
            finally:
                self.store.release_deliveries(self.worker)
        after = self.store.tally(number)
        report.sent += after.sent - before.sent
        report.failed += after.failed - before.failed
        report.skipped += after.skipped - before.skipped
        failed_before = set(before.failures)
        report.failures.extend(f for f in after.failures if f not in failed_before)
        if run.error is not None:  # not the server's doing: shown as it is
            raise run.error
        if run.failure is not None:
            raise DeliveryError(
                f"{run.failure}; issue #{number} is recorded and "
                f"{after.open} message(s) wait for the next run"
            )

    def _claim_and_send(
        self,
        number: int,
        pool: Connections[_Sending],
        run: _Run,
        report: SendReport,
        makers: dict[str, MessageMaker],
        wait_for_others: bool,
        done_before: int,
    ) -> None:
        """Claim batches of issue ``number`` and send them until none is left to
        claim (with ``wait_for_others``, until no other worker holds any), taking
        over at once what a dead worker held. ``done_before``: the issue's
        deliveries done when the run began."""
        while run.failure is None and not report.stopped:
            if wait_for_others and workers_running(self.store.state):
                if not self._wait_for_workers(number, run, report, done_before):
                    return
                continue
            batch = self.store.claim_deliveries(
                number, self.worker, self.clock(), self.lease, self.batch
            )
            if batch:
                run.renewed = time.monotonic()
                if self.progress:  # (a count of the issue's deliveries)
                    run.base = self.store.tally(number).done - done_before
                self._send_batch(number, batch, pool, run, report, makers)
                continue
            holders = self.store.holders(number, self.worker, self.clock())
            dead = [w for w in holders if not worker_alive(self.store.state, w)]
            for worker in dead:
                self.store.end_leases(number, worker)
            if dead:
                continue  # what they held is claimed next
            if not holders or not wait_for_others:
                return
            if not self._pause(report):  # their leases may run out meanwhile
                return

    def _wait_for_workers(self, number: int, run: _Run, report: SendReport, done: int) -> bool:
        """While workers run, the sender leaves the issue to them and waits (and
        shows their progress); False when nothing is left open, or it is asked
        to stop."""
        tally = self.store.tally(number)
        if self.progress:
            self.progress(min(tally.done - done, run.total), run.total)
        return tally.open > 0 and self._pause(report)

    def _pause(self, report: SendReport) -> bool:
        """Wait OTHERS_POLL seconds for the other workers; False (and the report
        says stopped) when asked to stop instead."""
        if self.stop():
            report.stopped = True
            return False
        time.sleep(OTHERS_POLL)
        return True

    def _send_batch(
        self,
        number: int,
        batch: list[Delivery],
        pool: Connections[_Sending],
        run: _Run,
        report: SendReport,
        makers: dict[str, MessageMaker],
    ) -> None:
        """Send one claimed batch; its leases are renewed while it goes."""
        queue = PacedQueue(batch, lambda delivery: delivery.email, run.pacer)
        done = 0
        while queue:
            delivery = queue.take()
            if isinstance(delivery, float):  # only paced domains are left, all waiting
                if pool:
                    self._settle(pool, run, report)
                else:
                    time.sleep(min(delivery, 1.0))
                if run.failure is not None:
                    return
                continue
            # Made while the messages in flight are on their way; used only
            # if the checks below, fresh once a connection is free, allow it.
            data, name = self._message(delivery, makers)
            while pool.full:
                self._settle(pool, run, report)
            if self.stop():  # asked to shut down: the rest stays pending for the next run
                report.stopped = True
                return
            if run.failure is not None:
                return
            if time.monotonic() - run.renewed > self.lease.total_seconds() / 3:
                self.store.renew_leases(number, self.worker, self.clock(), self.lease)
                run.renewed = time.monotonic()
            self._start(pool, run, _Sending(delivery, data, name, 1))
            done += 1
            if self.progress:
                self.progress(min(run.base + done, run.total), run.total)

    def _recorded_issue(self, number: int, key: str) -> Issue:
        """Issue ``number`` as the ledger holds it for variant ``key``."""
        issue = self.store.issue(number, key)
        if issue is None:
            raise StateError(f"issue #{number} has no variant {key!r} in the ledger")
        return issue

    def _message(self, delivery: Delivery, makers: dict[str, MessageMaker]) -> tuple[bytes, str]:
        """One recipient's message from its variant (read once into ``makers``)."""
        key = delivery.variant or ""
        if key not in makers:
            makers[key] = MessageMaker(self._recorded_issue(delivery.issue, key), self.newsletter)
        return makers[key].make(Recipient(delivery.email, delivery.name, delivery.token))

    def _start(
        self,
        pool: Connections[_Sending],
        run: _Run,
        sending: _Sending,
        *,
        check: bool = True,
        after: float = 0.0,
    ) -> str | None:
        """Record the answers settled so far and mark ``sending`` as leaving, in one
        transaction, then hand it to a connection, to go ``after`` seconds from
        now; with ``check``, why it must not go instead (recorded as skipped), if
        its subscriber no longer wants it."""
        reason = self.store.start_sending(
            sending.delivery, self.clock(), run.unrecorded, check=check, worker=self.worker
        )
        run.unrecorded.clear()
        if reason is None:
            email, name = sending.delivery.email, sending.name
            sender = self._envelope_sender(sending.delivery)
            run.pacer.leaving(email)
            pool.submit(sending, sending.data, sender, email, name, after=after)
        return reason

    def _envelope_sender(self, delivery: Delivery) -> str:
        """Where bounces go: the delivery's own VERP address when
        ``newsletter.bounce_address`` is set, else the sender's address."""
        template = self.newsletter.bounce_address
        if template is None:
            return self.newsletter.sender_email
        token = delivery_token(delivery.issue, delivery.subscriber, delivery.token)
        return bounce_address(template, token)

    def _refused(self, delivery: Delivery, reply: str) -> None:
        """Record the server's refusal of a recipient as a bounce, by its reply
        code (``smtp_verdict``): a policy refusal, or a connection that failed,
        marks no one. A soft one counts once an issue."""
        code = int(reply[:3]) if reply[:3].isdigit() else 0
        verdict = smtp_verdict(code, reply[3:].strip())
        if verdict not in ("hard", "soft"):
            return
        address = delivery.email.lower()
        event = ListEvent("smtp", f"{delivery.issue}:{address}:{verdict}", address, verdict, reply)
        self.store.record_event(event, delivery.issue, self.clock(), self.policy)

    def _settle(self, pool: Connections[_Sending], run: _Run, report: SendReport) -> None:
        """Take the answer of one message that was in flight, to be recorded with the
        next step; a temporary refusal goes again after its delay while tries are
        left (on its connection, while the others go on)."""
        sending, result = pool.next_done()
        delivery = sending.delivery
        run.pacer.answered(delivery.email)
        if isinstance(result, Exception):  # TLS failed, say, or a bug: the message waits
            run.unrecorded.append((delivery, "pending", str(result)))
            report.deferred += 1
            run.failure = run.failure or str(result)
            if not isinstance(result, DeliveryError):
                run.error = run.error or result
            return
        if result.result == "sent":
            run.unrecorded.append((delivery, "sent", result.reply))
        elif result.result == "permanent":
            run.unrecorded.append((delivery, "failed", result.reply))
            self._refused(delivery, result.reply)
        elif sending.attempt < self.max_attempts and run.failure is None:
            if asks_to_slow_down(result.reply):  # that domain alone goes slower from now on
                run.pacer.slow_down(delivery.email)
            delay = self.retry_delay * 2 ** (sending.attempt - 1)
            delay = min(max(delay, run.pacer.wait(delivery.email)), 60.0)
            again = replace(sending, attempt=sending.attempt + 1)
            self._start(pool, run, again, check=False, after=delay)
        else:
            run.unrecorded.append((delivery, "pending", result.reply))
            report.deferred += 1
            if result.connection:
                run.failure = run.failure or result.reply
            elif sending.attempt >= self.max_attempts:  # put off each time it was tried
                self._refused(delivery, result.reply)


@dataclass(frozen=True, slots=True)
class _Sending:
    """A message in flight, and which try it is."""

    delivery: Delivery
    data: bytes
    name: str
    attempt: int


@dataclass(slots=True)
class _Run:
    """How far one issue's delivery has come."""

    total: int  # open when the run began
    pacer: DomainPacer  # the pace of each domain smtp.domains names
    base: int = 0  # done by every worker when this batch was claimed
    renewed: float = 0.0  # when the batch's leases were last renewed (monotonic)
    failure: str | None = None  # why the run stops: the server cannot be reached
    error: Exception | None = None  # an unexpected one, raised once the rest is recorded
    # Answers taken from the connections, recorded with the next step.
    unrecorded: list[tuple[Delivery, str, str | None]] = field(default_factory=list)


def send_digest(
    config: Config,
    deliverer: Deliverer,
    clock: Callable[[], datetime],
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> SendReport:
    """'feedpub digest send': run the DigestSender on the state database, then
    close ``deliverer``, which this call owns."""
    return _with_sender(
        config, deliverer, clock, lambda s: s.run(dry_run=dry_run), progress=progress, stop=stop
    )


def _with_sender(
    config: Config,
    deliverer: Deliverer,
    clock: Callable[[], datetime],
    act: Callable[[DigestSender], SendReport],
    *,
    progress: Progress | None = None,
    stop: Callable[[], bool],
) -> SendReport:
    """What ``act`` makes of a DigestSender on the state database; then
    ``deliverer``, which this call owns, is closed."""
    try:
        with Store(config.state) as store:
            sender = DigestSender(
                config, store, deliverer, clock=clock, progress=progress, stop=stop
            )
            return act(sender)
    finally:
        deliverer.close()


def send_job(
    config: Config,
    deliverer: Deliverer,
    now: Callable[[], datetime],
    stop: Callable[[], bool] = lambda: False,
) -> SendReport:
    """Send the digest and record the run; a failed run leaves the last success
    where it was, so the next check finds the digest still due."""
    with Store(config.state) as store:
        store.run_started(DIGEST_JOB, now())
        try:
            report = send_digest(config, deliverer, now, stop=stop)
        except Exception as exc:
            store.run_finished(DIGEST_JOB, now(), f"failed: {exc}", success=False)
            raise
        done = not report.stopped and report.deferred == 0
        store.run_finished(DIGEST_JOB, now(), send_summary(report), success=done)
    return report


def work_once(
    config: Config,
    deliverer: Deliverer,
    clock: Callable[[], datetime],
    *,
    stop: Callable[[], bool] = lambda: False,
) -> SendReport:
    """One look by 'feedpub worker': deliver its share of every issue with
    deliveries open, beside the other workers; then close ``deliverer``."""
    return _with_sender(config, deliverer, clock, DigestSender.work, stop=stop)


# scheduler.digest_due: whether a digest time has passed since the last success.
DigestDue = Callable[[CronSchedule, ZoneInfo, datetime | None, datetime], bool]


def run_once(
    config: Config,
    make_deliverer: Callable[[Config], Deliverer],
    now: Callable[[], datetime],
    digest_due: DigestDue,
) -> tuple[BuildReport, SendReport | None]:
    """'feedpub run': build the feeds, then send the digest if ``digest_due`` says
    one is."""
    build = build_feeds(config, now(), BuildCache())  # loaded from disk
    if config.newsletter is None:
        return build, None
    with Store(config.state) as store:
        last = store.last_success(DIGEST_JOB)
    if not digest_due(config.newsletter.schedule, config.site.timezone, last, now()):
        return build, None
    return build, send_job(config, make_deliverer(config), now)
