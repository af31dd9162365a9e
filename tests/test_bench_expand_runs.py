"""The reference-expansion benchmark keeps running: started on a tiny prefix.

This checks that it works end to end (its own moto server, a counting proxy, both
sides finding the same ETags and versions), not how fast anything is: speed is read
from the ratios it prints when run in full.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

BENCH_EXPAND = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_expand.py"


def test_expand_benchmark_prints_its_time_ratio_and_list_requests() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARTISYNC_", "AWS_"))}
    out = subprocess.run(
        [sys.executable, str(BENCH_EXPAND), "--quick", "--repeat", "1"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        env=env,
    ).stdout
    targets = [line for line in out.splitlines() if ">= " in line or "<= " in line]
    assert len(targets) == 2, out
    assert all(line.rstrip().endswith(("ok", "MISSED")) for line in targets), out
    # 200 objects: one page of versions and the HEAD that asks whether the prefix is an
    # object, against a HEAD for each object after one page of keys.
    assert re.search(r"^list requests\s+1\s+1\s+<= 12 ok$", out, re.MULTILINE), out
    assert re.search(r"^requests \(at proxy\)\s+2\s+201\s", out, re.MULTILINE), out
