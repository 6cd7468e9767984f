"""Messages per second from 'feedpub digest send' to a local SMTP sink.

    python bench/send_rate.py [RUNS] [SIZES...] [--connections N ...]

For each size (default 1,000 and 10,000 subscribers), each smtp.connections
(default 1, 2, 4 and 8) and each of RUNS runs (default 3), builds a fresh state
file with that many active subscribers, starts a sink on loopback (Postfix's
smtp-sink, else aiosmtpd's Sink handler) and times one full send (compose,
render, record, deliver every message, each delivery committed before it
leaves and its answer with the next one's). Prints the median rate and CPU per
recipient. Run by hand.
"""

from __future__ import annotations

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
from feedpub.pipeline import DigestSender
from feedpub.store import Store


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
    config = replace(config, smtp=smtp, state_path=folder / "state.db")
    with Store(config.state_path) as store:
        store.add_subscribers(
            [(f"reader{i}@example.net", f"Reader {i}", (), "active") for i in range(subscribers)],
            NOW,
        )
    sink = _sink(port)
    try:
        with Store(config.state_path) as store:
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
    options = parser.parse_args()
    main(options.runs, options.sizes or [1000, 10000], options.connections)
