"""The download benchmark keeps running: started at its smallest size.

This checks that it works end to end (a real daemon commits the version it reads), not
how fast anything is: speed is read from the ratios it prints when run in full.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from daemon_harness import clean_env

BENCH_READ = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_read.py"


def test_read_benchmark_prints_every_figure_with_a_ratio() -> None:
    env = clean_env()
    out = subprocess.run(
        [sys.executable, str(BENCH_READ), "--quick", "--repeat", "1"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        env=env,
    ).stdout
    targets = [line for line in out.splitlines() if ">= " in line]
    assert len(targets) == 2, out
    assert all(line.rstrip().endswith(("ok", "MISSED")) for line in targets), out
    assert sum("(information)" in line for line in out.splitlines()) == 1, out
