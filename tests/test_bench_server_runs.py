"""The server benchmark keeps running: started at its smallest sizes, against a real
PostgreSQL and real ``artisync server`` processes it starts itself.

This checks that it works and prints a ratio and a verdict for every figure, not how
fast anything is: speed is read from the figures it prints when run in full.
"""

from __future__ import annotations

import re
from pathlib import Path

from bench_runner import run_benchmark

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_server.py"

# A figure line: a name, two values, a ratio and its median, then the goal's verdict.
_FIGURE = re.compile(
    r"^(?P<name>.+?)\s{2,}\S+\s+\S+\s+(?P<ratio>\d+\.\d\d)\s+.*?(ok|MISSED|\(information\))$"
)


def test_server_benchmark_prints_every_figure_with_a_ratio(tmp_path: Path) -> None:
    out = run_benchmark(BENCHMARK, "--quick", "--dir", str(tmp_path), timeout=100)
    figures = [m["name"].strip() for line in out.splitlines() if (m := _FIGURE.match(line))]
    # Lookups; commits/s, p50 and p99 for 1 and 4 writers in two layouts, and growth;
    # the RSS of each of the two server processes.
    assert len(figures) == 1 + 3 * 2 * 2 + 1 + 2, out
    assert any(name.startswith("latest p50") for name in figures), out
    assert any(name.startswith("growth 1 -> 4") for name in figures), out
    assert sum(name.startswith("server ") for name in figures) == 2, out
    assert "fsync=on" in out and "synchronous_commit=on" in out, out
    assert list(tmp_path.iterdir()) == [], "the scratch directory is emptied"
