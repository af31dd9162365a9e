"""The memory benchmark runs end to end against a real daemon (tiny size)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench_runner import run_benchmark

BENCH = Path(__file__).parent.parent / "benchmarks" / "bench_memory.py"


@pytest.mark.parametrize(
    ("args", "title"),
    [
        ([], "entries 2,000 (immutable, local store): committed in"),
        (["--policy", "reference", "--store", "s3"], "entries 2,000 (reference, s3 store)"),
    ],
)
def test_memory_benchmark_commits_and_reports_the_daemons_peak_rss(
    tmp_path: Path, args: list[str], title: str
) -> None:
    out = run_benchmark(BENCH, "--entries", "2000", "--dir", str(tmp_path), *args, timeout=120)
    assert title in out, out
    rss = next(line for line in out.splitlines() if line.startswith("daemon peak RSS"))
    assert rss.rstrip().endswith(("ok", "MISSED")), out
    assert any(line.startswith("daemon idle RSS") for line in out.splitlines()), out
