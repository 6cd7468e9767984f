"""Messages per second from 'feedpub digest send' to a local SMTP sink.

    python bench/send_rate.py [RUNS] [SIZES...] [--connections N ...]
    python bench/send_rate.py [RUNS] [SIZES...] --workers N ... [--url URL]

For each size (default 1,000 and 10,000 subscribers), each smtp.connections
(default 1, 2, 4 and 8) and each of RUNS runs (default 3), builds a fresh state
file with that many active subscribers, starts a sink on loopback (Postfix's
smtp-sink, else aiosmtpd's Sink handler) and times one full send (compose,
render, record, deliver every message, each delivery committed before it
leaves and its answer with the next one's). Prints the median rate and CPU per
recipient. Run by hand.

With ``--workers``, the state is a fresh PostgreSQL database each run (made on
the server ``--url`` names, whose role may create databases, its password in
FEEDPUB_STATE_PASSWORD; else on a private server started as the tests start
theirs), N ``feedpub worker`` processes are started, and 'feedpub digest send'
is timed, as a process, from its start until every message is sent; 0 workers
is the sender alone, on the same database.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from corpus import NOW, write_corpus

from feedpub.config import SmtpConfig, load_config
from feedpub.delivery import SMTPDeliverer
from feedpub.model import StateLocation
from feedpub.pipeline import DigestSender
from feedpub.store import StateDatabase, Store, workers_running


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _sink(port: int) -> subprocess.Popen[bytes]:
    """Postfix's smtp-sink (C, Debian's postfix package) when installed, so that
    the sink is not what is measured; else aiosmtpd's Sink handler."""
    sink_binary = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    if Path(sink_binary).is_file():
        command = [sink_binary, "-u", "nobody", "-c", f"127.0.0.1:{port}", "256"]
    else:
        command = [sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink"]
        command += ["-l", f"127.0.0.1:{port}"]
    sink = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return sink
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the SMTP sink did not start")


def one_run(folder: Path, subscribers: int, connections: int) -> tuple[float, float]:
    """Messages a second, and CPU seconds per recipient of this process."""
    config = load_config(write_corpus(folder, 200))
    port = _port()
    smtp = SmtpConfig(
        "127.0.0.1", port, "none", None, "UNUSED", 30, 0, 3, 0, None, None, connections
    )
    config = replace(config, smtp=smtp, state=StateLocation(folder / "state.db"))
    with Store(config.state) as store:
        store.add_subscribers(
            [(f"reader{i}@example.net", f"Reader {i}", (), "active") for i in range(subscribers)],
            NOW,
        )
    sink = _sink(port)
    try:
        with Store(config.state) as store:
            deliverer = SMTPDeliverer(smtp, None)
            sender = DigestSender(config, store, deliverer, clock=lambda: NOW)
            started, cpu = time.perf_counter(), time.process_time()
            report = sender.run()
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            deliverer.close()
        assert report.sent == subscribers, report
    finally:
        sink.terminate()
        sink.wait()
    return subscribers / elapsed, cpu / subscribers


def workers_run(server: Server, subscribers: int, workers: int) -> float:
    """Messages a second from 'feedpub digest send' with ``workers`` workers."""
    name = f"bench_{time.monotonic_ns()}"
    url = server.create(name)
    try:
        with tempfile.TemporaryDirectory() as folder:
            config = write_corpus(Path(folder), 200)
            port = _port()
            config.write_text(
                config.read_text()
                + f"\nsmtp:\n  host: 127.0.0.1\n  port: {port}\n  security: none\n"
                + f"state:\n  url: {url}\ndelivery:\n  batch: 100\n"
            )
            with Store(load_config(config).state) as store:
                store.add_subscribers(
                    [(f"reader{i}@example.net", "", (), "active") for i in range(subscribers)],
                    NOW,
                )
            sink = _sink(port)
            exe = str(Path(sys.executable).with_name("feedpub"))
            started_workers = [
                subprocess.Popen([exe, "worker", "-q", "--poll", "0.1", "--config", str(config)])
                for _ in range(workers)
            ]
            try:
                with StateDatabase(load_config(config).state) as state:
                    while workers and not workers_running(state):
                        time.sleep(0.05)
                    time.sleep(0.5)  # every worker is up
                started = time.perf_counter()
                subprocess.run([exe, "digest", "send", "-q", "--config", str(config)], check=True)
                elapsed = time.perf_counter() - started
                with Store(load_config(config).state) as store:
                    assert store.tally(1).sent == subscribers
            finally:
                for worker in started_workers:
                    worker.terminate()
                    worker.wait()
                sink.terminate()
                sink.wait()
    finally:
        server.drop(name)
    return subscribers / elapsed


class Server:
    """Where the benchmark makes its databases: ``url``'s server, or a private one."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self._stack = contextlib.ExitStack()
        if url is None:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            from tests.postgres import running_postgres

            self._private = self._stack.enter_context(running_postgres())
            os.environ["FEEDPUB_STATE_PASSWORD"] = self._private.password

    def create(self, name: str) -> str:
        if self.url is None:
            return self._private.create_database(name)
        self._admin(f"CREATE DATABASE {name}")
        return self.url.rsplit("/", 1)[0] + "/" + name

    def drop(self, name: str) -> None:
        if self.url is None:
            self._private.drop_database(name)
        else:
            self._admin(f"DROP DATABASE {name}")

    def _admin(self, statement: str) -> None:
        import psycopg

        url = self.url
        assert url is not None
        with psycopg.connect(
            url, password=os.environ.get("FEEDPUB_STATE_PASSWORD"), autocommit=True
        ) as connection:
            connection.execute(statement.encode())

    def close(self) -> None:
        self._stack.close()


def main_workers(runs: int, sizes: list[int], workers: list[int], url: str | None) -> None:
    server = Server(url)
    try:
        for size, count in ((size, count) for size in sizes for count in workers):
            rates = [workers_run(server, size, count) for _ in range(runs)]
            print(
                f"{size:>6} subscribers, {count} worker(s): "
                f"median {statistics.median(rates):.0f} messages/s "
                f"(runs: {', '.join(f'{r:.0f}' for r in rates)})",
                flush=True,
            )
    finally:
        server.close()


def main(runs: int, sizes: list[int], connections: list[int]) -> None:
    for size, count in ((size, count) for size in sizes for count in connections):
        rates, cpus = [], []
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as folder:
                rate, cpu = one_run(Path(folder), size, count)
                rates.append(rate)
                cpus.append(cpu)
        print(
            f"{size:>6} subscribers, {count} connection(s): "
            f"median {statistics.median(rates):.0f} messages/s "
            f"(runs: {', '.join(f'{r:.0f}' for r in rates)}), "
            f"{statistics.median(cpus) * 1000:.2f} ms CPU per recipient"
        )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="?", type=int, default=3, help="runs of each (3)")
    parser.add_argument("sizes", nargs="*", type=int, help="subscribers (1,000 and 10,000)")
    parser.add_argument(
        "--connections", nargs="+", type=int, default=[1, 2, 4, 8], help="smtp.connections"
    )
    parser.add_argument("--workers", nargs="+", type=int, help="feedpub workers (PostgreSQL)")
    parser.add_argument("--url", help="a PostgreSQL server's database whose role may create others")
    options = parser.parse_args()
    if options.workers:
        main_workers(options.runs, options.sizes or [10000], options.workers, options.url)
    else:
        main(options.runs, options.sizes or [1000, 10000], options.connections)
