"""Running a benchmark script at its smallest sizes, as the bench-running tests do: they
check that the scripts work, never how fast anything is (README, "Speed")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run_benchmark(script: str | Path, *args: str, timeout: float) -> str:
    """What ``python benchmarks/<script> ARGS`` prints; it must exit 0 in ``timeout``."""
    path = BENCHMARKS / script if isinstance(script, str) else script
    return subprocess.run(
        [sys.executable, str(path), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=timeout,
    ).stdout


def verdict_rows(out: str, marker: str = ">= ") -> list[str]:
    """The printed figures that carry a target (``>= 0.5 ok``), each ending in its
    verdict; an AssertionError naming the output if one ends otherwise."""
    rows = [line for line in out.splitlines() if marker in line]
    assert all(line.rstrip().endswith(("ok", "MISSED")) for line in rows), out
    return rows
