"""Conditional GETs of the main feed against 'feedpub serve': requests per
second and 99th-percentile latency, from wrk (Debian package 'wrk') on loopback.

    python bench/serve_rate.py [RUNS] [SECONDS]

Starts 'feedpub serve' on the sample site, then runs wrk RUNS times (default 3)
for SECONDS each (default 10) with If-None-Match set to the feed's ETag (every
answer a 304), and once more without it (every answer the whole feed). Prints
medians. Run by hand; not part of the tests.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FEEDPUB = str(Path(sys.executable).with_name("feedpub"))


def _wrk(url: str, seconds: int, headers: list[str]) -> tuple[float, float]:
    args = ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", *headers, url]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    p99_ms = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return rate, p99_ms


def main(runs: int, seconds: int) -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as folder:
        site = Path(folder)
        shutil.copy(REPO / "config.yaml", site)
        shutil.copytree(REPO / "content", site / "content")
        subprocess.run([FEEDPUB, "build", "-q", "--config", str(site / "config.yaml")], check=True)
        env = {**os.environ, "FEEDPUB_SECRET_KEY": "bench-secret"}
        server = subprocess.Popen(
            [FEEDPUB, "serve", "--config", str(site / "config.yaml")], env=env
        )
        url = "http://127.0.0.1:8080/feeds/rss.xml"
        try:
            for _ in range(100):
                try:
                    etag = urllib.request.urlopen(url).headers["ETag"]
                    break
                except OSError:
                    time.sleep(0.1)
            conditional = [
                _wrk(url, seconds, ["-H", f"If-None-Match: {etag}"]) for _ in range(runs)
            ]
            full = [_wrk(url, seconds, []) for _ in range(runs)]
        finally:
            server.terminate()
            server.wait()
    for label, results in (("conditional GET (304)", conditional), ("full GET (200)", full)):
        rates, p99s = zip(*results, strict=True)
        print(
            f"{label}: median {statistics.median(rates):.0f} requests/s, "
            f"p99 {statistics.median(p99s):.1f} ms "
            f"(runs: {', '.join(f'{r:.0f}' for r in rates)})"
        )


if __name__ == "__main__":
    arguments = [int(a) for a in sys.argv[1:]]
    main(arguments[0] if arguments else 3, arguments[1] if len(arguments) > 1 else 10)
