from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from feedpub.config import IntervalSchedule, load_config
from feedpub.cron import parse_cron
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


def _site(tmp_path: Path, port: int, extra: str = "") -> Path:
    shutil.copytree(REPO / "content", tmp_path / "content")
    text = (REPO / "config.yaml").read_text()
    text += f"\nsmtp:\n  host: 127.0.0.1\n  port: {port}\n  security: none\n  retry_delay: 0\n  max_attempts: 1\n"
    text += "\nschedule:\n  build: 1h\n" + extra
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with Store(load_config(path).state_path) as store:
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


def test_daemon_catches_up_once_then_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    config = _site(tmp_path, port)
    with smtp_server(port=port) as server, _daemon(config, "--log-format", "json") as daemon:
        assert _wait_for(lambda: len(server.handler.received) >= 3)
        time.sleep(1.5)  # room for a wrong second send to show up
        assert len(server.handler.received) == 3
        second = _feedpub("daemon", "--config", str(config))
        _, refused = second.communicate(timeout=30)
        assert second.returncode == 1
        assert "another feedpub process is using" in refused and "(daemon, pid" in refused
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
    with Store(load_config(config).state_path) as store:
        assert store.last_success("digest") is not None


def test_daemon_survives_a_failing_job_and_a_bad_reload(tmp_path: Path) -> None:
    port = free_port()  # nothing listens here: the digest job fails
    config = _site(tmp_path, port)
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


def test_sigterm_lets_the_message_in_flight_finish(tmp_path: Path) -> None:
    port = free_port()
    config = _site(tmp_path, port)
    slow = Behaviour(delay=1.0)
    with smtp_server(slow, port=port) as server, _daemon(config) as daemon:
        assert _wait_for(lambda: server.handler.data_commands >= 1)
        daemon.send_signal(signal.SIGTERM)
        _, log = daemon.communicate(timeout=15)
    assert daemon.returncode == 0
    assert len(server.handler.received) == 1  # the one being sent finished; the rest wait
    with Store(tmp_path / "state" / "feedpub.db") as store:
        statuses = sorted(d.status for d in store.deliveries(1))
    assert statuses == ["pending", "pending", "sent"]
    assert "(stopped early)" in log


def test_run_sends_only_when_due(tmp_path: Path) -> None:
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
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
