"""The benchmark scripts keep running: each is started at its smallest sizes.

This checks that they work, not how fast anything is: speed is read from the ratios
they print when run in full (README, "Speed").
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def test_hash_benchmark_prints_every_figure_with_a_ratio_and_target() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_hash.py"), "--quick", "--repeat", "1"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    rows = [line for line in out.splitlines() if ">= " in line]
    assert len(rows) == 7, out
    assert all(line.rstrip().endswith(("ok", "MISSED")) for line in rows), out


def test_write_benchmark_runs_end_to_end_against_a_real_daemon() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_write.py"), "--quick", "--repeat", "1"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    rows = [line for line in out.splitlines() if ">= " in line]
    # Two W&B figures only when wandb is installed (it is the peer, not a dependency).
    assert len(rows) in (6, 8), out
    assert all(line.rstrip().endswith(("ok", "MISSED")) for line in rows), out
