"""When things run: the daemon (APScheduler), and whether a digest is due (for
'feedpub run' too). The only module that imports APScheduler. It decides *when*;
the work itself is the pipeline functions the CLI calls.

The decisions are pure functions of (schedule, last run, now); the daemon's
catch-up reads the last run from the state database, never from memory.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import groupby
from types import FrameType
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from feedpub.build import build_feeds
from feedpub.buildcache import BuildCache
from feedpub.config import Config, IntervalSchedule, load_config
from feedpub.confirmations import ConfirmationSender
from feedpub.cron import CronSchedule
from feedpub.delivery import Deliverer
from feedpub.errors import FeedpubError
from feedpub.listhealth import fetch_bounces, open_source
from feedpub.pipeline import BOUNCES_JOB, BUILD_JOB, DIGEST_JOB, send_job
from feedpub.store import JobLock, JobRun, StateDatabase, Store, holder_name
from feedpub.summaries import build_summary, send_summary

log = logging.getLogger("feedpub")


class Companion(Protocol):
    """Something that runs beside the daemon for its whole life (the web server),
    given each config the daemon reloads."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def reload(self, config: Config) -> None: ...


CONFIRM_JOB = "confirmations"
CONFIRMATIONS_EVERY = 60
SIGNAL_POLL = 1.0
# How often a daemon tries again for a job another daemon holds, seconds.
LOCK_POLL = 1.0
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_EVERY_DAY = frozenset(range(1, 32))
_EVERY_WEEKDAY = frozenset(range(7))


class WallClockCronTrigger(BaseTrigger):  # type: ignore[misc]
    """Fires at wall-clock times in ``zone``, as cron does: each one once (when clocks
    fall back, the hour that repeats does not fire again), and a time the clock skips
    at the moment it names in the old offset (02:30 becomes 03:30). APScheduler's
    CronTrigger in ``zone`` can miss a whole day after clocks spring forward.

    ``wall`` finds the wall-clock times on a clock without daylight saving (UTC).
    """

    # How far either side of a clock change to look; daylight saving moves clocks by
    # at most two hours.
    CLOCK_CHANGE = timedelta(hours=3)

    def __init__(self, wall: BaseTrigger, zone: ZoneInfo) -> None:
        self.wall = wall
        self.zone = zone

    def __str__(self) -> str:
        return f"{self.wall} in {self.zone}"

    def _moment(self, wall_time: datetime) -> datetime:
        """When a wall-clock time comes: the first time if it comes twice, in the old
        offset if the clock skips it."""
        return wall_time.replace(tzinfo=self.zone).astimezone(UTC)

    def _near_change(self, moment: datetime) -> bool:
        before = (moment - self.CLOCK_CHANGE).astimezone(self.zone).utcoffset()
        return before != (moment + self.CLOCK_CHANGE).astimezone(self.zone).utcoffset()

    def get_next_fire_time(self, previous: datetime | None, now: datetime) -> datetime | None:
        # From just after the previous fire time, as CronTrigger does.
        start = now.astimezone(UTC)
        if previous is not None:
            start = min(start, previous.astimezone(UTC) + timedelta(microseconds=1))
        # Near a clock change a wall-clock time a little earlier or later than the
        # start's may come sooner, so look a little either side there.
        wall_time = start.astimezone(self.zone).replace(tzinfo=None)
        if self._near_change(start):
            wall_time -= self.CLOCK_CHANGE
        best: tuple[datetime, datetime] | None = None  # (moment, wall-clock time)
        found: datetime | None = self.wall.get_next_fire_time(None, wall_time.replace(tzinfo=UTC))
        while found is not None:
            moment = self._moment(found.replace(tzinfo=None))
            if moment >= start and (best is None or moment < best[0]):
                best = (moment, found)
            if best is not None and (
                not self._near_change(best[0]) or found >= best[1] + self.CLOCK_CHANGE
            ):
                break
            found = self.wall.get_next_fire_time(found, found + timedelta(microseconds=1))
        return None if best is None else best[0].astimezone(self.zone)


def cron_trigger(schedule: CronSchedule, zone: ZoneInfo) -> BaseTrigger:
    """A trigger that fires at the schedule's times in ``zone``.

    APScheduler's CronTrigger needs a day that matches both the day and the weekday;
    crontab fires on either when both are restricted, so that case is two triggers.
    """

    def wall_clock(days: frozenset[int], weekdays: frozenset[int]) -> CronTrigger:
        return CronTrigger(
            minute=_numbers(schedule.minutes),
            hour=_numbers(schedule.hours),
            day=_numbers(days),
            month=_numbers(schedule.months),
            day_of_week=_numbers({(d - 1) % 7 for d in weekdays}),  # APScheduler: 0 is Monday
            timezone=UTC,
        )

    if schedule.day_restricted and schedule.weekday_restricted:
        either = OrTrigger(
            [wall_clock(schedule.days, _EVERY_WEEKDAY), wall_clock(_EVERY_DAY, schedule.weekdays)]
        )
        return WallClockCronTrigger(either, zone)
    return WallClockCronTrigger(wall_clock(schedule.days, schedule.weekdays), zone)


def _numbers(values: Iterable[int]) -> str:
    """A CronTrigger field for exactly ``values``, with each run of them as a range."""
    runs = [
        [value for _, value in run]
        for _, run in groupby(enumerate(sorted(values)), lambda pair: pair[1] - pair[0])
    ]
    return ",".join(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}" for run in runs)


def trigger(schedule: CronSchedule | IntervalSchedule, zone: ZoneInfo) -> BaseTrigger:
    """The build's trigger: an interval or a crontab schedule, as config.py read it."""
    if isinstance(schedule, IntervalSchedule):
        # From a fixed moment, so that daemons on several machines fire together
        # (and one of them runs the job: Daemon._once).
        return IntervalTrigger(seconds=schedule.seconds, timezone=zone, start_date=_EPOCH)
    return cron_trigger(schedule, zone)


def next_fire(schedule: CronSchedule, zone: ZoneInfo, after: datetime) -> datetime:
    """The first scheduled time strictly after ``after``."""
    fire: datetime | None = cron_trigger(schedule, zone).get_next_fire_time(
        after, after + timedelta(microseconds=1)
    )
    assert fire is not None  # parse_cron refuses schedules that never run
    return fire


def digest_due(
    schedule: CronSchedule, zone: ZoneInfo, last_success: datetime | None, now: datetime
) -> bool:
    """Whether a scheduled digest time has passed since the last successful send.

    Never sent: due. Otherwise due when the first scheduled time after the last
    success is not in the future, however many were missed (they make one send).
    """
    return last_success is None or next_fire(schedule, zone, last_success) <= now


def job_due(
    schedule: CronSchedule | IntervalSchedule, zone: ZoneInfo, run: JobRun, now: datetime
) -> bool:
    """Whether a daemon that holds a job's lock at ``now`` should run it: never
    run; the last run never finished (its daemon died, as the lock is free); or
    a time of ``schedule`` has come since it started. Daemons fire together, so
    a run that started less than half an interval ago is this time's run."""
    if run.started is None or run.finished is None or run.finished < run.started:
        return True
    if isinstance(schedule, IntervalSchedule):
        return run.started + timedelta(seconds=schedule.seconds / 2) <= now
    return next_fire(schedule, zone, run.started) <= now


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(log_format: str, verbose: bool = False) -> None:
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("apscheduler").setLevel(logging.INFO if verbose else logging.WARNING)


class Daemon:
    """Feed builds on ``schedule.build``, digests on ``newsletter.schedule`` and,
    with a ``bounces`` section, the bounce mailbox read on ``schedule.bounces``, in
    ``site.timezone``, with jobs made afresh from the config at every start."""

    def __init__(
        self,
        config: Config,
        make_deliverer: Callable[[Config], Deliverer],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        companions: Sequence[Companion] = (),
    ) -> None:
        self.companions = companions
        self.config = config
        self.make_deliverer = make_deliverer
        self.clock = clock
        self.stopping = threading.Event()
        self.state = StateDatabase(config.state)
        self.build_cache = BuildCache()  # kept for the daemon's life
        self.scheduler = BackgroundScheduler(timezone=config.site.timezone)
        self.scheduler.add_listener(
            self._job_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
        )

    def _job_options(self) -> dict[str, Any]:
        # Late runs still run (no grace limit), missed ones make one run, and a
        # job still going is never started a second time.
        return {
            "max_instances": 1,
            "coalesce": True,
            "misfire_grace_time": None,
            "replace_existing": True,
        }

    def _schedule(self, start: bool) -> None:
        """Add the jobs (at a reload, in place of the old ones). At the start the
        build and the confirmations run at once; an explicit None would pause a
        job, so a reload names no first run and each job keeps to its trigger."""
        config = self.config
        zone = config.site.timezone
        at_start = {"next_run_time": self.clock()} if start else {}
        options = self._job_options()
        self.scheduler.add_job(
            self._build, trigger(config.build_schedule, zone), id=BUILD_JOB, **at_start, **options
        )
        if config.bounce_schedule is not None:
            self.scheduler.add_job(
                self._bounces,
                trigger(config.bounce_schedule, zone),
                id=BOUNCES_JOB,
                **at_start,
                **options,
            )
        elif self.scheduler.get_job(BOUNCES_JOB) is not None:  # a reload removed the section
            self.scheduler.remove_job(BOUNCES_JOB)
        if config.newsletter is None:  # (again, after a reload that removed it)
            for job_id in (CONFIRM_JOB, DIGEST_JOB):
                if self.scheduler.get_job(job_id) is not None:
                    self.scheduler.remove_job(job_id)
            return
        # Confirmations the web app queued: sent by whichever process claims each first.
        # One sender (its templates and catalog loaded once) until the next reload.
        self.scheduler.add_job(
            self._confirm,
            IntervalTrigger(seconds=CONFIRMATIONS_EVERY, timezone=zone),
            args=[ConfirmationSender(config, self.make_deliverer, self.clock)],
            id=CONFIRM_JOB,
            **at_start,
            **options,
        )
        schedule = config.newsletter.schedule
        with Store(self.state) as store:
            last = store.last_success(DIGEST_JOB)
        due = {}
        if start and digest_due(schedule, zone, last, self.clock()):
            log.info(
                "digest is due (last sent %s): sending now", last.isoformat() if last else "never"
            )
            due = at_start
        self.scheduler.add_job(
            self._send, cron_trigger(schedule, zone), id=DIGEST_JOB, **due, **options
        )

    def _once(
        self,
        job: str,
        due: Callable[[JobRun, datetime], bool],
        work: Callable[[], str],
        *,
        record: bool = True,
    ) -> None:
        """Run ``work`` as the one run of ``job`` for this time, across every daemon
        sharing the state: under the job's lock (waited for while another daemon
        holds it), when ``due`` says the ledger's last run leaves it to do. With
        ``record``, the run is recorded with what ``work`` returns (the digest's
        send_job records its own)."""
        lock = JobLock(self.state, job, f"daemon {job}")
        while not lock.take():
            if self.stopping.wait(LOCK_POLL):
                return
        try:
            with Store(self.state) as store:
                if not due(store.job_run(job), self.clock()):
                    log.info(
                        f"{job}: already run for this time by another daemon",
                        extra={"fields": {"job": job, "event": "skipped"}},
                    )
                    return
                if record:
                    store.run_started(job, self.clock(), holder_name(f"daemon {job}"))
            try:
                outcome = work()
            except Exception as error:
                if record:
                    with Store(self.state) as store:
                        store.run_finished(job, self.clock(), f"failed: {error}", success=False)
                raise
            if record:
                with Store(self.state) as store:
                    store.run_finished(job, self.clock(), outcome, success=True)
        finally:
            lock.release()

    def _build_due(self, run: JobRun, now: datetime) -> bool:
        return job_due(self.config.build_schedule, self.config.site.timezone, run, now)

    def _bounces_due(self, run: JobRun, now: datetime) -> bool:
        schedule = self.config.bounce_schedule
        return schedule is not None and job_due(schedule, self.config.site.timezone, run, now)

    def _digest_due(self, run: JobRun, now: datetime) -> bool:
        newsletter = self.config.newsletter
        return newsletter is not None and digest_due(
            newsletter.schedule, self.config.site.timezone, run.success, now
        )

    def _build(self) -> None:
        self._once(BUILD_JOB, self._build_due, self._build_now)

    def _send(self) -> None:
        self._once(DIGEST_JOB, self._digest_due, self._send_now, record=False)

    def _bounces(self) -> None:
        self._once(BOUNCES_JOB, self._bounces_due, self._bounces_now)

    def _build_now(self) -> str:
        log.info("build started", extra={"fields": {"job": BUILD_JOB, "event": "start"}})
        report = build_feeds(self.config, self.clock(), self.build_cache)
        log.info(
            f"build finished: {build_summary(report)} ({report.seconds:.2f} s)",
            extra={
                "fields": {
                    "job": BUILD_JOB,
                    "event": "end",
                    "written": len(report.feeds.written),
                    "unchanged": len(report.feeds.unchanged),
                    "removed": len(report.feeds.removed),
                    "published": report.counts.published,
                    "seconds": round(report.seconds, 3),
                }
            },
        )
        return build_summary(report)

    def _send_now(self) -> str:
        log.info("digest started", extra={"fields": {"job": DIGEST_JOB, "event": "start"}})
        report = send_job(
            self.config, self.make_deliverer(self.config), self.clock, stop=self.stopping.is_set
        )
        log.info(
            "digest finished: " + send_summary(report),
            extra={
                "fields": {
                    "job": DIGEST_JOB,
                    "event": "end",
                    "issues": report.issues,
                    "sent": report.sent,
                    "failed": report.failed,
                    "skipped": report.skipped,
                    "deferred": report.deferred,
                }
            },
        )
        return send_summary(report)

    def _bounces_now(self) -> str:
        report = fetch_bounces(self.config, self.clock(), open_source(self.config))
        for line in report.lines:
            log.info(f"bounce: {line}", extra={"fields": {"job": BOUNCES_JOB, "event": "read"}})
        log.info(
            f"bounces finished: {report}",
            extra={
                "fields": {
                    "job": BOUNCES_JOB,
                    "event": "end",
                    "read": report.read,
                    "applied": report.applied,
                    "ignored": report.ignored,
                    "set_aside": report.set_aside,
                }
            },
        )
        return str(report)

    def _confirm(self, sender: ConfirmationSender) -> None:
        report = sender.run()
        if report.sent or report.failed:
            log.info(
                f"confirmations: {report.sent} sent, {report.failed} given up, "
                f"{report.retrying} to retry",
                extra={"fields": {"job": CONFIRM_JOB, "event": "end", "sent": report.sent}},
            )

    def _job_event(self, event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_ERROR:
            reason = (
                str(event.exception)
                if isinstance(event.exception, FeedpubError)
                else repr(event.exception)
            )
            log.error(
                f"{event.job_id} failed: {reason}; the next run tries again",
                extra={"fields": {"job": event.job_id, "event": "error", "reason": reason}},
            )
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            log.warning(
                f"{event.job_id} is still running; this run is skipped",
                extra={"fields": {"job": event.job_id, "event": "skipped"}},
            )
        else:
            log.warning(
                f"{event.job_id} missed its time; it runs at the next one",
                extra={"fields": {"job": event.job_id, "event": "missed"}},
            )

    def reload(self) -> None:
        """Read the config file again; keep the running one if the new one is bad."""
        try:
            fresh = load_config(self.config.path)
        except FeedpubError as exc:
            log.error(f"config not reloaded, keeping the running one: {exc}")
            return
        for warning in fresh.warnings:
            log.warning(str(warning))
        if fresh.state != self.config.state:
            log.warning("the state section takes effect at the next start; still using the old one")
            fresh = replace(fresh, state=self.config.state)
        self.config = fresh
        self._schedule(start=False)
        for companion in self.companions:
            companion.reload(fresh)
        log.info("config reloaded")

    def stop(self, signum: int, frame: FrameType | None = None) -> None:
        """Stop scheduling; a message being sent finishes and is recorded first."""
        if not self.stopping.is_set():
            log.info(f"{signal.Signals(signum).name} received: stopping")
            self.stopping.set()

    def run(self) -> None:
        """Schedule in a background thread; the main thread only waits for signals.

        Python runs signal handlers in the main thread, and a signal the kernel
        hands to another thread waits until the main thread wakes: so it wakes
        at least once a second, and handlers only set flags.
        """
        reload_wanted = threading.Event()
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        signal.signal(signal.SIGHUP, lambda signum, frame: reload_wanted.set())
        self._schedule(start=True)
        for companion in self.companions:
            companion.start()
        self.scheduler.start()
        log.info("daemon started", extra={"fields": {"event": "start"}})
        try:
            while not self.stopping.wait(SIGNAL_POLL):
                if reload_wanted.is_set():
                    reload_wanted.clear()
                    self.reload()
        finally:
            self.scheduler.shutdown(wait=True)  # jobs under way see self.stopping
            for companion in self.companions:
                companion.stop()
            self.state.close()
        log.info("daemon stopped", extra={"fields": {"event": "stop"}})
