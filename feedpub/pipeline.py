"""Compose the stages: the CLI and the scheduler call these, nothing else."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime

from feedpub.collector import Collection, collect, select
from feedpub.config import Config
from feedpub.content.text import term_slug
from feedpub.delivery import Deliverer
from feedpub.digest import IssuePlan, plan_issue, render_issue
from feedpub.errors import DeliveryError
from feedpub.mail import build_message, message_name
from feedpub.model import Issue, Post, Problem, Recipient
from feedpub.store import Delivery, Store, Variant


@dataclass(frozen=True, slots=True)
class DigestDraft:
    """The next issue (None when no post is new) and what reading the content met."""

    issue: Issue | None
    collection: Collection


def compose_digest(
    config: Config, now: datetime, included: AbstractSet[str], number: int
) -> DigestDraft:
    """Collect and select posts, and render issue ``number`` from those not in ``included``."""
    newsletter = config.require_newsletter()
    collection = collect(config.content, config.site)
    plan = plan_issue(select(collection.posts, now), included, newsletter.max_posts)
    if plan is None:
        return DigestDraft(None, collection)
    return DigestDraft(_render(config, plan, number, now), collection)


def _render(config: Config, plan: IssuePlan, number: int, now: datetime) -> Issue:
    """Issue ``number`` of ``plan``, with this site's settings and templates."""
    newsletter = config.require_newsletter()
    return render_issue(
        plan,
        number,
        now,
        config.site,
        newsletter,
        config.templates_dir,
        config.feeds.summary_length,
    )


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
    deferred: int = 0
    failures: list[str] = field(default_factory=list)
    planned: list[PlannedCopy] = field(default_factory=list)
    problems: tuple[Problem, ...] = ()
    stopped: bool = False


Progress = Callable[[int, int], None]


def variant_key(tags: Sequence[str]) -> str:
    """Subscribers with the same tag preferences share one rendered variant."""
    return ",".join(sorted({term_slug(t) for t in tags}))


def _variant_plan(
    plan: IssuePlan, published: Sequence[Post], key: str, limit: int
) -> IssuePlan | None:
    """The part of ``plan`` for subscribers who want only the terms in ``key``."""
    if not key:
        return plan
    wanted = set(key.split(","))
    covered = set(plan.covered)
    matching = [
        p
        for p in published
        if p.id in covered and wanted & {term_slug(t) for t in (*p.tags, *p.categories)}
    ]
    if not matching:
        return None
    return IssuePlan(tuple(matching[:limit]), tuple(p.id for p in matching))


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
        sleep: Callable[[float], None] = time.sleep,
        progress: Progress | None = None,
        stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.config = config
        self.newsletter = config.require_newsletter()
        self.store = store
        self.deliverer = deliverer
        self.clock = clock
        self.sleep = sleep
        self.progress = progress
        self.stop = stop
        smtp = config.smtp
        self.max_attempts = smtp.max_attempts if smtp else 1
        self.retry_delay = smtp.retry_delay if smtp else 0.0

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

    def _compose(self, report: SendReport, dry_run: bool) -> int | None:
        config, newsletter = self.config, self.newsletter
        now = self.clock()
        collection = collect(config.content, config.site)
        report.problems = collection.problems
        published = select(collection.posts, now)
        plan = plan_issue(published, self.store.included_post_ids(), newsletter.max_posts)
        if plan is None:
            return None
        number = self.store.next_issue_number()
        subscribers = self.store.recipients()
        plans = {
            key: _variant_plan(plan, published, key, newsletter.max_posts)
            for key in sorted({variant_key(s.tags) for s in subscribers} | {""})
        }
        if dry_run:
            for s in subscribers:
                variant = plans[variant_key(s.tags)]
                what = (
                    f"{len(variant.posts)} post(s)"
                    if variant
                    else "nothing: no post has their tags"
                )
                report.planned.append(PlannedCopy(s.email, number, what))
            return number
        variants: dict[str, Variant] = {}
        for key, variant_plan in plans.items():
            if variant_plan is not None:
                issue = _render(config, variant_plan, number, now)
                variants[key] = Variant(issue.subject, issue.html, issue.text)
        recipients = [
            (s, variant_key(s.tags) if plans[variant_key(s.tags)] is not None else None)
            for s in subscribers
        ]
        self.store.record_issue(
            number, now, variants[""].subject, plan.covered, variants, recipients
        )
        report.issues.append(number)
        report.skipped += sum(variant is None for _, variant in recipients)
        return number

    def _deliver(self, number: int, report: SendReport) -> None:
        open_deliveries = self.store.open_deliveries(number)
        issues: dict[str, Issue] = {}  # one per variant, read once from the ledger
        for done, delivery in enumerate(open_deliveries, start=1):
            if self.stop():  # asked to shut down: the rest stays pending for the next run
                report.stopped = True
                return
            reason = self.store.why_not_deliver(delivery)
            if reason is None:
                self._send_one(delivery, issues, report, left=len(open_deliveries) - done)
            else:
                self.store.mark_done(delivery, "skipped", reason, self.clock())
                report.skipped += 1
            if self.progress:
                self.progress(done, len(open_deliveries))

    def _send_one(
        self, delivery: Delivery, issues: dict[str, Issue], report: SendReport, left: int
    ) -> None:
        """Build one recipient's message from its variant (read once into ``issues``)
        and send it."""
        number, key = delivery.issue, delivery.variant or ""
        if key not in issues:
            variant = self.store.variant(number, key)
            issues[key] = Issue(
                number,
                self.store.issue_time(number),
                variant.subject,
                (),
                (),
                0,
                variant.html,
                variant.text,
            )
        recipient = Recipient(delivery.email, delivery.name, delivery.token)
        message = build_message(issues[key], recipient, self.newsletter)
        self._attempt(delivery, message.as_bytes(), message_name(message), report, left)

    def _attempt(
        self, delivery: Delivery, data: bytes, name: str, report: SendReport, left: int
    ) -> None:
        sender = self.newsletter.sender_email
        for attempt in range(1, self.max_attempts + 1):
            self.store.mark_sending(delivery, self.clock())
            outcome = self.deliverer.send(data, sender, delivery.email, name)
            if outcome.result == "sent":
                self.store.mark_done(delivery, "sent", outcome.reply, self.clock())
                report.sent += 1
                return
            if outcome.result == "permanent":
                self.store.mark_done(delivery, "failed", outcome.reply, self.clock())
                report.failed += 1
                report.failures.append(f"{delivery.email}: {outcome.reply}")
                return
            if attempt < self.max_attempts:
                self.sleep(min(self.retry_delay * 2 ** (attempt - 1), 60.0))
        self.store.mark_done(delivery, "pending", outcome.reply, self.clock())
        report.deferred += 1
        if outcome.connection:
            raise DeliveryError(
                f"{outcome.reply}; issue #{delivery.issue} is recorded and "
                f"{left + 1} message(s) wait for the next run"
            )
