"""The registry benchmark keeps running: started at its smallest sizes.

This checks that it works and prints a ratio and a verdict for every lookup, not how
fast anything is: speed is read from the ratios it prints when run in full.
"""

from __future__ import annotations

from pathlib import Path

from bench_runner import run_benchmark, verdict_rows

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_registry.py"


def test_registry_benchmark_prints_every_lookup_with_a_ratio_and_target(tmp_path: Path) -> None:
    out = run_benchmark(
        BENCHMARK, "--quick", "--repeat", "1", "--calls", "20", "--dir", str(tmp_path), timeout=120
    )
    rows = verdict_rows(out, "<= ")
    assert len(rows) == 14, out
    assert list(tmp_path.iterdir()) == [], "the scratch registries are removed"
