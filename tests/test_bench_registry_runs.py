"""The registry benchmark keeps running: started at its smallest sizes.

This checks that it works and prints a ratio and a verdict for every lookup, not how
fast anything is: speed is read from the ratios it prints when run in full.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_registry.py"


def test_registry_benchmark_prints_every_lookup_with_a_ratio_and_target(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(BENCHMARK),
            "--quick",
            "--repeat",
            "1",
            "--calls",
            "20",
            "--dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    rows = [line for line in out.splitlines() if "<= " in line]
    assert len(rows) == 14, out
    assert all(line.rstrip().endswith(("ok", "MISSED")) for line in rows), out
    assert list(tmp_path.iterdir()) == [], "the scratch registries are removed"
