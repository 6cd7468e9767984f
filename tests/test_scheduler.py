from __future__ import annotations

import itertools
import json
import mailbox
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from feedpub.config import IntervalSchedule, load_config
from feedpub.cron import parse_cron
from feedpub.model import StateLocation
from feedpub.scheduler import cron_trigger, digest_due, next_fire, trigger
from feedpub.store import Store
from tests.conftest import REPO
from tests.smtpd import Behaviour, free_port, smtp_server

NEW_YORK = ZoneInfo("America/New_York")  # daylight saving: 8 March and 1 November 2026
WEEKLY = parse_cron("0 8 * * mon")


def _at(*parts: int, zone: ZoneInfo = NEW_YORK, fold: int = 0) -> datetime:
    return datetime(*parts, tzinfo=zone, fold=fold)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        (WEEKLY.text, _at(2026, 11, 30, 7, 59), _at(2026, 11, 30, 8)),
        (WEEKLY.text, _at(2026, 11, 30, 8), _at(2026, 12, 7, 8)),
        ("0 8 * * 0", _at(2026, 11, 30), _at(2026, 12, 6, 8)),  # 0 is Sunday, as in crontab
        ("0 8 * * 7", _at(2026, 11, 30), _at(2026, 12, 6, 8)),
        ("0 8 * * 1-5", _at(2026, 12, 4, 9), _at(2026, 12, 7, 8)),
        ("0 8 * * */2", _at(2026, 11, 30, 9), _at(2026, 12, 1, 8)),  # Sun, Tue, Thu, Sat
        ("15 6 1 * *", _at(2026, 11, 30), _at(2026, 12, 1, 6, 15)),
    ],
)
def test_next_fire_time(expression: str, after: datetime, expected: datetime) -> None:
    assert next_fire(parse_cron(expression), NEW_YORK, after) == expected


def test_next_fire_in_utc() -> None:
    after = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    midnight = parse_cron("0 0 * * *")
    assert next_fire(midnight, ZoneInfo("UTC"), after) == datetime(2027, 1, 1, tzinfo=UTC)


def test_daylight_saving_spring_forward_still_fires_once() -> None:
    # 02:30 does not exist on 8 March 2026 in New York: the run happens once, as the clock jumps.
    schedule = parse_cron("30 2 * * *")
    fire = next_fire(schedule, NEW_YORK, _at(2026, 3, 7, 12))
    assert fire.astimezone(UTC) == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    assert next_fire(schedule, NEW_YORK, fire).date().isoformat() == "2026-03-09"


def test_daylight_saving_fall_back_does_not_fire_twice() -> None:
    schedule = parse_cron("30 1 * * *")
    first = next_fire(schedule, NEW_YORK, _at(2026, 11, 1, 0))
    assert first.utcoffset().total_seconds() == -4 * 3600  # type: ignore[union-attr]
    again = next_fire(schedule, NEW_YORK, first)
    assert again == _at(2026, 11, 2, 1, 30)


def test_daylight_saving_does_not_skip_the_day_after() -> None:
    # APScheduler's own CronTrigger goes from 8 March to 10 March here.
    midnight = parse_cron("0 0 * * *")
    assert next_fire(midnight, NEW_YORK, _at(2026, 3, 8)) == _at(2026, 3, 9)


def _fires(expression: str, after: datetime, count: int) -> list[datetime]:
    fires = [next_fire(parse_cron(expression), NEW_YORK, after)]
    while len(fires) < count:
        fires.append(next_fire(parse_cron(expression), NEW_YORK, fires[-1]))
    return fires


@pytest.mark.parametrize(
    ("expression", "days"),
    [
        ("0 8 * * sat-sun", [5, 6, 12, 13]),  # 30 November 2026 is a Monday
        ("0 8 * * 6-0", [5, 6, 12, 13]),
        ("0 8 * * Sat-SUN", [5, 6, 12, 13]),
        ("0 8 * * fri-mon", [4, 5, 6, 7, 11]),
        ("0 8 * * 7", [6, 13, 20, 27]),
        ("0 8 * * mon-fri/2", [2, 4, 7, 9, 11]),
        ("0 8 * DEC Fri", [4, 11, 18, 25]),
        # Day and weekday both restricted: either one matching is enough, as in crontab.
        ("0 8 3,19 * mon", [3, 7, 14, 19, 21]),
    ],
)
def test_schedules_fire_on_the_days_they_name(expression: str, days: list[int]) -> None:
    fires = _fires(expression, _at(2026, 11, 30, 9), len(days))
    assert [(f.month, f.day, f.hour) for f in fires] == [(12, d, 8) for d in days]


def test_the_first_sunday_of_each_month() -> None:
    # A weekday written with a leading * must match as well as the day: both, not either.
    fires = _fires("0 8 1-7 * */7", _at(2026, 11, 30, 9), 3)
    assert [f.date().isoformat() for f in fires] == ["2026-12-06", "2027-01-03", "2027-02-07"]


# The property: a trigger fires exactly when the crontab rules, read afresh here and
# applied minute by minute, say it should.

_MONTHS = "jan feb mar apr may jun jul aug sep oct nov dec".split()
_DAYS = "sun mon tue wed thu fri sat".split()
# Field: lowest, highest, names for lowest upwards.
_CRON_FIELDS = ((0, 59, ()), (0, 23, ()), (1, 31, ()), (1, 12, _MONTHS), (0, 7, _DAYS))


@st.composite
def _cron_field(draw: st.DrawFn, low: int, high: int, names: Sequence[str]) -> str:
    def word(number: int) -> str:
        if number - low < len(names) and draw(st.booleans()):
            name = names[number - low]
            return draw(st.sampled_from([name, name.upper(), name.title()]))
        return str(number)

    parts = []
    for _ in range(draw(st.integers(1, 3))):
        first, last = draw(st.integers(low, high)), draw(st.integers(low, high))
        if names is not _DAYS:  # only weekday ranges may run round
            first, last = sorted((first, last))
        step = draw(st.integers(1, high - low + 1))
        form = draw(st.sampled_from(["*", "*/n", "a", "a-b", "a-b/n", "a/n"]))
        parts.append(
            form.replace("a", word(first)).replace("b", word(last)).replace("n", str(step))
        )
    return ",".join(parts)


def _part_matches(part: str, value: int, low: int, high: int, names: Sequence[str]) -> bool:
    """Whether one comma part of a field allows ``value``, read from the crontab rules:
    ``*`` is every value, ``a-b`` runs from a to b (for weekdays, round the week's end),
    ``/n`` takes every n-th from the start, ``a/n`` runs from a to the end, 7 is Sunday."""
    base, _, step_text = part.lower().partition("/")
    step = int(step_text or 1)
    week = names is _DAYS
    end = 6 if week else high
    numbers = {name: low + i for i, name in enumerate(names)}
    if base == "*":
        first, last = low, end
    else:
        first_text, _, last_text = base.partition("-")
        first = numbers[first_text] if first_text in numbers else int(first_text)
        last = first
        if last_text:
            last = numbers[last_text] if last_text in numbers else int(last_text)
        if step_text and not last_text:
            last = end
        if week and first > last:
            last += 7
    # A weekday may be written as itself or, counting on past Saturday, plus 7 (or 14).
    candidates = [value, value + 7, value + 14] if week else [value]
    return any(first <= c <= last and (c - first) % step == 0 for c in candidates)


def _expected_fires(
    expression: str, zone: ZoneInfo, start: datetime, horizon: datetime, count: int
) -> list[datetime]:
    """The first ``count`` times after ``start`` (up to ``horizon``) the expression
    names, found minute by minute in local wall-clock time. A wall-clock time fires
    once: when clocks fall back, at its first occurrence; when they spring forward
    over it, at the moment it names in the old offset (as zoneinfo reads it)."""
    fields = expression.split()

    def allows(index: int, value: int) -> bool:
        low, high, names = _CRON_FIELDS[index]
        return any(_part_matches(p, value, low, high, names) for p in fields[index].split(","))

    allowed = [
        {v for v in range(low, high + 1) if allows(i, v)}
        for i, (low, high, _) in enumerate(_CRON_FIELDS)
    ]
    minutes, hours, days, months, weekdays = allowed
    times = [
        (h, m) for h, m in itertools.product(range(24), range(60)) if h in hours and m in minutes
    ]
    day_restricted, weekday_restricted = (not fields[i].startswith("*") for i in (2, 4))
    found: set[datetime] = set()
    day = start.astimezone(zone).date()
    while len(found) < count and day <= horizon.astimezone(zone).date():
        in_month = day.month in months
        by_day, by_weekday = day.day in days, (day.weekday() + 1) % 7 in weekdays
        if day_restricted and weekday_restricted:
            day_matches = in_month and (by_day or by_weekday)
        else:
            day_matches = in_month and by_day and by_weekday
        if day_matches:
            for hour, minute in times:
                fire = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
                if start < fire <= horizon:
                    found.add(fire.astimezone(UTC))  # one zone compares wall clocks, not moments
        day += timedelta(days=1)
    return sorted(found)[:count]


_ZONES = ("UTC", "Asia/Shanghai", "America/New_York", "Europe/London", "Australia/Sydney")
# Days on which the clocks of those zones change, to start near a change.
_CLOCK_CHANGES = (
    ("America/New_York", date(2026, 3, 8)),
    ("America/New_York", date(2026, 11, 1)),
    ("Europe/London", date(2026, 3, 29)),
    ("Europe/London", date(2026, 10, 25)),
    ("Australia/Sydney", date(2026, 4, 5)),
    ("Australia/Sydney", date(2026, 10, 4)),
)


def _near_clock_change(zone_day: tuple[str, date], seconds: int) -> datetime:
    """A moment up to a day either side of the start of a day the clocks change."""
    zone, day = ZoneInfo(zone_day[0]), zone_day[1]
    midnight = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
    return (midnight + timedelta(seconds=seconds - 86400)).astimezone(zone)


@settings(max_examples=150, deadline=None, database=None)
@given(
    fields=st.tuples(*(_cron_field(*field) for field in _CRON_FIELDS)),
    start=st.one_of(
        st.datetimes(
            min_value=datetime(2000, 1, 1),
            max_value=datetime(2040, 1, 1),
            timezones=st.sampled_from([ZoneInfo(name) for name in _ZONES]),
            allow_imaginary=False,
        ),
        st.builds(_near_clock_change, st.sampled_from(_CLOCK_CHANGES), st.integers(0, 2 * 86400)),
    ),
)
def test_the_trigger_fires_when_the_crontab_rules_say(
    fields: tuple[str, ...], start: datetime
) -> None:
    expression = " ".join(fields)
    try:
        schedule = parse_cron(expression)
    except ValueError:
        assume(False)  # a day that never comes in the months named
    zone = start.tzinfo
    assert isinstance(zone, ZoneInfo)
    horizon = start + timedelta(days=3 * 366)
    fires: list[datetime] = []
    fire = next_fire(schedule, zone, start)
    while len(fires) < 20 and fire <= horizon:
        fires.append(fire.astimezone(UTC))
        fire = next_fire(schedule, zone, fire)
    assert fires == _expected_fires(expression, zone, start, horizon, 20)


def test_what_check_accepts_the_daemon_runs(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "site: {title: T, url: 'https://e.org/', timezone: America/New_York, author: {email: me@e.org}}\n"
        "newsletter: {schedule: '0 8 * * sat-sun'}\nschedule: {build: '*/20 * * * sat-sun'}\n"
    )
    config = load_config(path)
    assert config.newsletter is not None
    after = _at(2026, 11, 30, 9)
    assert next_fire(config.newsletter.schedule, NEW_YORK, after) == _at(2026, 12, 5, 8)
    build = trigger(config.build_schedule, NEW_YORK)
    assert build.get_next_fire_time(None, after) == _at(2026, 12, 5)


def test_digest_due() -> None:
    now = _at(2026, 11, 30, 9)  # a Monday, after the 08:00 send time
    assert digest_due(WEEKLY, NEW_YORK, None, now)
    assert digest_due(WEEKLY, NEW_YORK, _at(2026, 11, 23, 8, 0, 5), now)
    assert not digest_due(WEEKLY, NEW_YORK, _at(2026, 11, 30, 8, 0, 5), now)
    assert not digest_due(WEEKLY, NEW_YORK, _at(2026, 11, 29), _at(2026, 11, 30, 7, 59))
    assert digest_due(WEEKLY, NEW_YORK, _at(2026, 10, 1), now)  # many missed: still one send


def test_build_schedules_accept_intervals_and_cron(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("site: {title: T, url: 'https://e.org/'}\n")
    assert load_config(path).build_schedule == IntervalSchedule(900, "15m")
    path.write_text("site: {title: T, url: 'https://e.org/'}\nschedule: {build: '*/10 * * * *'}\n")
    assert load_config(path).build_schedule == parse_cron("*/10 * * * *")
    start = _at(2026, 11, 30, 9)
    interval = trigger(IntervalSchedule(900, "15m"), NEW_YORK)
    assert interval.get_next_fire_time(start, start) == _at(2026, 11, 30, 9, 15)
    every_ten = cron_trigger(parse_cron("*/10 * * * *"), NEW_YORK)
    assert every_ten.get_next_fire_time(None, start) == start


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5s", "schedule.build: expected an interval of at least 10s, got '5s'"),
        (
            "often",
            "schedule.build: expected an interval such as 15m or a cron schedule; expected 5 cron fields (minute hour day month weekday), got 1",
        ),
    ],
)
def test_bad_build_schedules(tmp_path: Path, value: str, message: str) -> None:
    from feedpub.errors import ConfigError

    path = tmp_path / "config.yaml"
    path.write_text(f"site: {{title: T, url: 'https://e.org/'}}\nschedule: {{build: '{value}'}}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert [p.message for p in caught.value.problems] == [message]


# The daemon as a real process.


def _site(tmp_path: Path, port: int, state: StateLocation, extra: str = "") -> Path:
    """The sample site with three readers, its state where ``state`` says."""
    shutil.copytree(REPO / "content", tmp_path / "content")
    text = (REPO / "config.yaml").read_text()
    if state.url is not None:
        text += f"\nstate:\n  url: {state.url}\n"
    text += f"\nsmtp:\n  host: 127.0.0.1\n  port: {port}\n  security: none\n  retry_delay: 0\n  max_attempts: 1\n"
    text += "\nschedule:\n  build: 1h\n" + extra
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with Store(load_config(path).state) as store:
        store.add_subscribers(
            [(f"r{i}@example.net", "", (), "active") for i in range(3)], datetime.now(UTC)
        )
    return path


def _feedpub(*args: str) -> subprocess.Popen[str]:
    exe = str(Path(sys.executable).with_name("feedpub"))
    return subprocess.Popen([exe, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@contextmanager
def _daemon(config: Path, *options: str) -> Iterator[subprocess.Popen[str]]:
    """A running 'feedpub daemon'; killed if the test leaves it running."""
    process = _feedpub("daemon", "--config", str(config), *options)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def _wait_for(condition, seconds: float = 20) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_daemon_catches_up_once_then_stops_cleanly(tmp_path: Path, state: StateLocation) -> None:
    port = free_port()
    config = _site(tmp_path, port, state)
    with smtp_server(port=port) as server, _daemon(config, "--log-format", "json") as daemon:
        assert _wait_for(lambda: len(server.handler.received) >= 3)
        time.sleep(1.5)  # room for a wrong second send to show up
        assert len(server.handler.received) == 3
        # A second daemon on the same state finds the digest sent and the feeds
        # just built: it sends and builds nothing, and stops cleanly.
        second = _feedpub("daemon", "--config", str(config))
        time.sleep(3)
        second.send_signal(signal.SIGTERM)
        _, beside = second.communicate(timeout=15)
        assert second.returncode == 0, beside
        assert "build: already run for this time by another daemon" in beside
        assert "digest started" not in beside and len(server.handler.received) == 3
        started = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        _, log = daemon.communicate(timeout=15)
        assert daemon.returncode == 0
        assert time.monotonic() - started < 10
    assert sorted(r.recipients[0] for r in server.handler.received) == [
        f"r{i}@example.net" for i in range(3)
    ]
    events = [json.loads(line) for line in log.splitlines()]
    messages = [e["message"] for e in events]
    assert messages[0].startswith("digest is due (last sent never): sending now")
    assert "daemon started" in messages and messages[-1] == "daemon stopped"
    ends = [e for e in events if e.get("event") == "end"]
    assert {e["job"] for e in ends} == {"build", "digest"}
    digest_end = next(e for e in ends if e["job"] == "digest")
    assert (digest_end["sent"], digest_end["issues"]) == (3, [1])
    assert all("time" in e and "level" in e for e in events)
    with Store(load_config(config).state) as store:
        assert store.last_success("digest") is not None


def test_daemon_survives_a_failing_job_and_a_bad_reload(
    tmp_path: Path, state: StateLocation
) -> None:
    port = free_port()  # nothing listens here: the digest job fails
    config = _site(tmp_path, port, state)
    with _daemon(config) as daemon:
        time.sleep(3)
        assert daemon.poll() is None
        config.write_text(config.read_text() + "\nfeeds: [broken\n")
        daemon.send_signal(signal.SIGHUP)
        time.sleep(1)
        assert daemon.poll() is None
        daemon.send_signal(signal.SIGINT)
        _, log = daemon.communicate(timeout=15)
    assert daemon.returncode == 0
    assert f"digest failed: cannot reach 127.0.0.1:{port}: Connection refused" in log
    assert "the next run tries again" in log
    assert "config not reloaded, keeping the running one" in log
    assert "SIGINT received: stopping" in log
    with Store(tmp_path / "state" / "feedpub.db") as store:
        assert store.last_success("digest") is None  # still due: the next start tries again


def test_sigterm_lets_the_message_in_flight_finish(tmp_path: Path, state: StateLocation) -> None:
    port = free_port()
    config = _site(tmp_path, port, state)
    slow = Behaviour(delay=1.0)
    with smtp_server(slow, port=port) as server, _daemon(config) as daemon:
        assert _wait_for(lambda: server.handler.data_commands >= 1)
        daemon.send_signal(signal.SIGTERM)
        _, log = daemon.communicate(timeout=15)
    assert daemon.returncode == 0
    assert len(server.handler.received) == 1  # the one being sent finished; the rest wait
    with Store(load_config(config).state) as store:
        statuses = sorted(d.status for d in store.deliveries(1))
    assert statuses == ["pending", "pending", "sent"]
    assert "(stopped early)" in log


def test_run_sends_only_when_due(tmp_path: Path, state: StateLocation) -> None:
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    if state.url is not None:
        with (tmp_path / "config.yaml").open("a") as config_file:
            config_file.write(f"\nstate:\n  url: {state.url}\n")
    shutil.copytree(REPO / "content", tmp_path / "content")
    shutil.copy(REPO / "sample-subscribers.csv", tmp_path)
    config = str(tmp_path / "config.yaml")
    assert (
        _feedpub(
            "subscribers", "import", str(tmp_path / "sample-subscribers.csv"), "--config", config
        ).wait(30)
        == 0
    )
    first = _feedpub("run", "--config", config)
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert (
        out.splitlines()[1]
        == f"digest: issue #1: 2 sent, 0 failed, 0 skipped, 0 deferred (to {tmp_path / 'outbox'})"
    )
    again = _feedpub("run", "--config", config)
    out, _ = again.communicate(timeout=60)
    assert out.splitlines()[1].startswith("digest: not due; next at ")
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2


def test_sighup_reloads_the_web_app_and_keeps_every_job(
    tmp_path: Path, state: StateLocation
) -> None:
    import httpx2

    smtp_port, web_port = free_port(), free_port()
    config = _site(tmp_path, smtp_port, state, f"\nweb:\n  port: {web_port}\n")
    config.write_text(config.read_text().replace("build: 1h", "build: 10s"))
    env = {**os.environ, "FEEDPUB_SECRET_KEY": "reload-test-secret-0123456789abcdef"}
    exe = str(Path(sys.executable).with_name("feedpub"))
    page = f"http://127.0.0.1:{web_port}/newsletter/subscribe"
    log: list[str] = []

    def title() -> str:
        try:
            return httpx2.get(page, timeout=2).text
        except httpx2.TransportError:
            return ""

    with smtp_server(port=smtp_port):
        daemon = subprocess.Popen(
            [exe, "daemon", "--serve", "--log-format", "json", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        reader = threading.Thread(target=lambda: log.extend(daemon.stderr or ()), daemon=True)
        reader.start()
        try:
            assert _wait_for(lambda: "AI 新闻速递" in title())
            assert _wait_for(lambda: any('"build finished' in line for line in log))
            config.write_text(
                config.read_text().replace(
                    'title: "AI 新闻速递 · AI News Digest"', 'title: "Renamed Digest"'
                )
            )
            daemon.send_signal(signal.SIGHUP)
            assert _wait_for(lambda: "Renamed Digest" in title())
            reloaded = len(log)
            # The build job still runs on its schedule after the reload.
            assert _wait_for(
                lambda: any('"build finished' in line for line in log[reloaded:]), 25
            ), log
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(15)
            reader.join(5)
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait(10)
    assert daemon.returncode == 0
    assert any('"config reloaded"' in line for line in log)


def test_the_daemon_sends_queued_confirmations(tmp_path: Path, state: StateLocation) -> None:
    """A subscribe taken by a 'feedpub serve' elsewhere is confirmed by the daemon
    too; its claim keeps the two from both sending it."""
    port = free_port()
    config = _site(tmp_path, port, state)
    with Store(load_config(config).state) as store:
        store.queue_subscribe_request("queued@example.net", "", datetime.now(UTC))
    with smtp_server(port=port) as server, _daemon(config) as daemon:
        assert _wait_for(lambda: "queued@example.net" in server.handler.by_recipient())
        daemon.send_signal(signal.SIGTERM)
        daemon.communicate(timeout=15)
    assert len(server.handler.by_recipient()["queued@example.net"]) == 1


def test_the_daemon_reads_the_bounce_mailbox(tmp_path: Path, state: StateLocation) -> None:
    from tests.test_bounces import dsn, rcpt

    port = free_port()
    config = _site(tmp_path, port, state, "\nbounces:\n  source: maildir\n  path: bounces\n")
    box = mailbox.Maildir(tmp_path / "bounces", create=True)
    box.add(dsn(rcpt("r0@example.net", "failed", "5.1.1"), to="digest@example.org"))
    box.close()
    with smtp_server(port=port), _daemon(config, "--log-format", "json") as daemon:

        def bounced() -> bool:
            with Store(load_config(config).state) as store:
                subscriber = store.subscriber("r0@example.net")
                return subscriber is not None and subscriber.status == "bounced"

        assert _wait_for(bounced)
        daemon.send_signal(signal.SIGTERM)
        _, log = daemon.communicate(timeout=15)
    ends = [json.loads(line) for line in log.splitlines() if '"bounces"' in line]
    finished = next(e for e in ends if e.get("event") == "end")
    assert (finished["read"], finished["applied"]) == (1, 1)
    assert finished["message"] == (
        "bounces finished: 1 messages read: 1 changed the list, 0 changed nothing, "
        "0 set aside unread"
    )
