"""Several machines on one PostgreSQL state, with real processes: workers that
share a send and survive one of them being killed, daemons that run each job
once and take over from one that dies, and a SQLite state moved to PostgreSQL."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from feedpub.config import load_config
from feedpub.model import StateLocation
from feedpub.store import StateDatabase, Store, workers_running
from tests.conftest import NOW, REPO
from tests.postgres import PostgresServer
from tests.smtpd import Behaviour, Received, free_port, smtp_server

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.MULTILINE | re.IGNORECASE)


@pytest.fixture
def database(postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh database's URL, its password in the environment the processes inherit."""
    name = f"scale_{os.getpid()}_{time.monotonic_ns() % 10**9}"
    url = postgres.create_database(name)
    monkeypatch.setenv("FEEDPUB_STATE_PASSWORD", postgres.password)
    yield url
    postgres.drop_database(name)


def _site(folder: Path, port: int, url: str | None, extra: str = "") -> Path:
    """The sample site, its state in ``url`` (or a SQLite file), mailing to ``port``."""
    shutil.copytree(REPO / "content", folder / "content")
    config = (REPO / "config.yaml").read_text()
    config += f"\nsmtp:\n  host: 127.0.0.1\n  port: {port}\n  security: none\n  retry_delay: 0\n"
    config += "delivery:\n  lease_seconds: 5\n  batch: 200\n"
    if url is not None:
        config += f"state:\n  url: {url}\n"
    (folder / "config.yaml").write_text(config + extra)
    return folder / "config.yaml"


def _feedpub(*args: str) -> subprocess.Popen[str]:
    exe = str(Path(sys.executable).with_name("feedpub"))
    return subprocess.Popen([exe, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _subscribe(config: Path, count: int) -> list[str]:
    people = [f"reader{i:05}@example.net" for i in range(count)]
    with Store(load_config(config).state) as store:
        store.add_subscribers([(a, "", (), "active") for a in people], NOW)
    return people


def _copies(received: list[Received]) -> tuple[Counter[str], dict[str, set[bytes]]]:
    """How many copies each recipient got, and the Message-IDs of them."""
    copies: Counter[str] = Counter()
    ids: dict[str, set[bytes]] = {}
    for item in received:
        found = _MESSAGE_ID.search(item.data)
        assert found is not None
        for rcpt in item.recipients:
            copies[rcpt] += 1
            ids.setdefault(rcpt, set()).add(found.group(1))
    return copies, ids


def _in_flight(config: Path, pid: int) -> int:
    """The deliveries a worker had marked as leaving and not yet answered."""
    with Store(load_config(config).state) as store:
        return int(
            store._db.scalar(
                "SELECT COUNT(*) FROM deliveries WHERE status = 'sending' AND worker LIKE :me",
                me=f"%:{pid}:%",
            )
        )


def _until(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _workers_up(config: Path) -> int:
    """How many workers hold the workers' shared lock (PostgreSQL)."""
    with Store(load_config(config).state) as store:
        return int(
            store._db.scalar(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name LIKE 'feedpub workers:%'"
            )
        )


class Killer:
    """Kills ``processes[0]`` with SIGKILL as the sink takes its ``at``-th
    message (the sink's ``on_data``), and notes how many messages it had on
    their way then."""

    def __init__(self, at: int, config: Path) -> None:
        self.at = at
        self.config = config
        self.processes: list[subprocess.Popen[str]] = []
        self.killed = threading.Event()
        self.in_flight = 0

    def __call__(self, n: int) -> None:
        if n == self.at:
            victim = self.processes[0]
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            self.in_flight = _in_flight(self.config, victim.pid)
            self.killed.set()


def _stop(processes: list[subprocess.Popen[str]]) -> list[tuple[int, str]]:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    return [(p.wait(30), p.communicate()[1]) for p in processes]


def test_four_workers_share_a_send_and_survive_a_kill_9(tmp_path: Path, database: str) -> None:
    port = free_port()
    config = _site(tmp_path, port, database)
    people = _subscribe(config, 20_000)
    killer = Killer(10_000, config)  # halfway
    workers = killer.processes
    with smtp_server(Behaviour(on_data=killer), port=port) as server:
        workers.extend(
            _feedpub("worker", "--poll", "0.2", "--config", str(config)) for _ in range(4)
        )
        _until(lambda: _workers_up(config) == 4)  # all four hold the workers' shared lock
        sender = _feedpub("digest", "send", "--config", str(config))
        out, err = sender.communicate(timeout=600)
        assert sender.returncode == 0, err
        assert killer.killed.is_set() and workers[0].returncode == -signal.SIGKILL
        ended = _stop(workers[1:])
        assert all(code == 0 for code, _ in ended), ended
    copies, ids = _copies(server.handler.received)
    assert set(copies) == set(people)  # nobody lost
    twice = {rcpt: n for rcpt, n in copies.items() if n > 1}
    assert all(n == 2 for n in twice.values())
    assert len(twice) <= killer.in_flight  # only what the killed worker had in flight
    assert all(len(ids[rcpt]) == 1 for rcpt in twice)  # ... and the same message again
    # The summary counts every worker's work.
    assert "20000 sent" in out, out
    with Store(load_config(config).state) as store:
        assert {d.status for d in store.deliveries(1)} == {"sent"}
        assert store.unfinished_issues() == []


def test_two_daemons_after_a_missed_schedule_send_one_issue(tmp_path: Path, database: str) -> None:
    port = free_port()
    config = _site(tmp_path, port, database)
    people = _subscribe(config, 30)
    with smtp_server(port=port) as server:
        daemons = [_feedpub("daemon", "--config", str(config)) for _ in range(2)]
        deadline = time.monotonic() + 60
        while len(server.handler.received) < len(people) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)  # time enough for a second send, if one were coming
        ended = _stop(daemons)
    assert all(code == 0 for code, _ in ended), ended
    copies, _ = _copies(server.handler.received)
    assert copies == Counter(dict.fromkeys(people, 1))
    with Store(load_config(config).state) as store:
        assert [number for number, _, _ in store.issues()] == [1]
    logs = "".join(err for _, err in ended)
    assert "digest finished" in logs and "already run for this time by another daemon" in logs


def test_the_daemon_that_holds_the_send_dies_and_the_other_finishes_it(
    tmp_path: Path, database: str
) -> None:
    port = free_port()
    config = _site(tmp_path, port, database)
    people = _subscribe(config, 40)
    killer = Killer(10, config)
    holder = killer.processes
    with smtp_server(Behaviour(on_data=killer, delay=0.05), port=port) as server:
        holder.append(_feedpub("daemon", "--config", str(config)))
        deadline = time.monotonic() + 30
        while not server.handler.received and time.monotonic() < deadline:
            time.sleep(0.05)
        other = _feedpub("daemon", "--config", str(config))  # waits for the digest's lock
        assert killer.killed.wait(30)
        deadline = time.monotonic() + 60
        while len(_copies(server.handler.received)[0]) < len(people):
            assert time.monotonic() < deadline, other
            time.sleep(0.2)
        ((code, err),) = _stop([other])
    assert code == 0, err
    copies, ids = _copies(server.handler.received)
    assert set(copies) == set(people)
    twice = [rcpt for rcpt, n in copies.items() if n > 1]
    assert len(twice) <= killer.in_flight and all(len(ids[r]) == 1 for r in twice)
    with Store(load_config(config).state) as store:
        assert [number for number, _, _ in store.issues()] == [1]
        assert store.last_success("digest") is not None


def test_a_sqlite_state_moves_to_postgresql_and_the_send_resumes(
    tmp_path: Path, database: str
) -> None:
    port = free_port()
    config = _site(tmp_path, port, None)
    people = _subscribe(config, 10)
    waiting = set(people[::3])  # their servers put the first send off

    def later(address: str) -> str | None:
        return "451 4.3.0 try again later" if address in waiting else None

    with smtp_server(Behaviour(rcpt_reply=later), port=port):
        first = _feedpub("digest", "send", "--config", str(config))
        _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    with Store(load_config(config).state) as store:
        unsubscribed = people[3]
        store.set_status(unsubscribed, "unsubscribed", NOW)
    moved = _feedpub("state", "migrate", "--to", database, "--config", str(config))
    out, err = moved.communicate(timeout=60)
    assert moved.returncode == 0, err
    assert "subscribers: 10 row(s)" in err and "deliveries: 10 row(s)" in err
    assert "set state.url to postgresql://" in out
    again = _feedpub("state", "migrate", "--to", database, "--config", str(config))
    _, err = again.communicate(timeout=60)
    assert again.returncode == 1 and "already holds data" in err, err
    config.write_text(config.read_text() + f"state:\n  url: {database}\n")
    with Store(load_config(config).state) as store:
        assert len(store.subscribers()) == 10
        assert store.subscriber(unsubscribed).status == "unsubscribed"  # type: ignore[union-attr]
        store.add_subscriber("newcomer@example.net", "", (), "active", NOW)  # ids go on
    with smtp_server(port=port) as server:
        resumed = _feedpub("digest", "send", "--config", str(config))
        _, err = resumed.communicate(timeout=60)
    assert resumed.returncode == 0, err
    copies, _ = _copies(server.handler.received)
    assert copies == Counter(dict.fromkeys(waiting - {unsubscribed}, 1))


def test_a_worker_without_work_waits_and_stops_on_sigterm(
    tmp_path: Path, state: StateLocation
) -> None:
    config = _site(tmp_path, free_port(), state.url)
    worker = _feedpub("worker", "--poll", "0.2", "--config", str(config))
    with StateDatabase(load_config(config).state) as shared:
        _until(lambda: workers_running(shared))  # up, its signals handled
    time.sleep(0.5)
    assert worker.poll() is None
    ((code, err),) = _stop([worker])
    assert code == 0 and "Traceback" not in err, err
