"""The memory benchmark runs end to end against a real daemon (tiny size)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parent.parent / "benchmarks" / "bench_memory.py"


def test_memory_benchmark_commits_and_reports_the_daemons_peak_rss(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH), "--entries", "2000", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    assert "entries 2,000 (immutable): committed in" in out, out
    rss = next(line for line in out.splitlines() if line.startswith("daemon peak RSS"))
    assert rss.rstrip().endswith(("ok", "MISSED")), out
    assert any(line.startswith("daemon idle RSS") for line in out.splitlines()), out
