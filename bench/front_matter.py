"""Time reading the front matter of the benchmark corpus: PyYAML alone against
feedpub's split (ryaml, held to PyYAML's reading, and PyYAML where the two
might differ).

    python bench/front_matter.py [RUNS] [COUNT]

Writes COUNT posts (default 10,000) with bench/corpus.py, then reads all their
front matter RUNS times (default 7) each way: read_yaml (PyYAML's C loader) on
the YAML between the fences, and split on each whole file, which also finds the
fences. Prints the medians, their ratio, and how many posts split leaves to
PyYAML. Run by hand; machines are shared and noisy, so compare figures from one
run only.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from corpus import write_corpus

from feedpub.content import front
from feedpub.yamlfile import read_yaml


def _median(runs: int, read: Callable[[str], object], texts: list[str]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        for text in texts:
            read(text)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _left_to_pyyaml(fronts: list[str]) -> int:
    left = 0
    for text in fronts:
        try:
            front._fast(text)
        except front._ApartFromPyYAML:
            left += 1
    return left


def main(runs: int, count: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        write_corpus(Path(folder), count)
        paths = sorted((Path(folder) / "content").rglob("*.md"))
        texts = [path.read_text(encoding="utf-8") for path in paths]
    fronts = [front._YAML.split(text)[0] for text in texts]
    pyyaml = _median(runs, read_yaml, fronts)
    split = _median(runs, lambda text: front.split(text, "post.md"), texts)
    print(f"{len(texts):,} posts, medians of {runs} runs")
    print(f"PyYAML (read_yaml):      {pyyaml * 1000:7.1f} ms")
    print(f"split (ryaml + PyYAML):  {split * 1000:7.1f} ms  ({pyyaml / split:.1f} times faster)")
    print(f"left to PyYAML by split: {_left_to_pyyaml(fronts):,} of {len(fronts):,} posts")


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 7,
        int(sys.argv[2]) if len(sys.argv) > 2 else 10_000,
    )
