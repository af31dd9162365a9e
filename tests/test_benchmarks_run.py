"""The benchmark scripts keep running: each is started at its smallest sizes.

This checks that they work, not how fast anything is: speed is read from the ratios
they print when run in full (README, "Speed").
"""

from __future__ import annotations

from pathlib import Path

from bench_runner import run_benchmark, verdict_rows

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def test_hash_benchmark_prints_every_figure_with_a_ratio_and_target() -> None:
    out = run_benchmark(BENCHMARKS / "bench_hash.py", "--quick", "--repeat", "1", timeout=120)
    rows = verdict_rows(out)
    assert len(rows) == 7, out


def test_write_benchmark_runs_end_to_end_against_a_real_daemon() -> None:
    out = run_benchmark(BENCHMARKS / "bench_write.py", "--quick", "--repeat", "1", timeout=300)
    rows = verdict_rows(out)
    # Two W&B figures only when wandb is installed (it is the peer, not a dependency).
    assert len(rows) in (6, 8), out


def test_loop_benchmark_compares_the_training_loop_with_wandb() -> None:
    out = run_benchmark(BENCHMARKS / "bench_loop.py", "--quick", "--repeat", "1", timeout=300)
    # run.log against its target; log_artifact for information (not the same work).
    assert len(verdict_rows(out)) == 1 and "(information)" in out, out


def test_lanes_benchmark_compares_with_another_build() -> None:
    # This tree against itself: the figures' plumbing (children with the other tree's
    # python/ first on their path, a daemon of each, verify of one download), not a speed.
    tree = BENCHMARKS.parent
    out = run_benchmark(
        BENCHMARKS / "bench_lanes.py",
        "--quick",
        "--repeat",
        "1",
        "--against",
        str(tree),
        timeout=300,
    )
    # One thread against hashlib and every core against the other build carry targets;
    # the reference and verify() figures are for information.
    assert len(verdict_rows(out)) == 2 and out.count("(information)") == 2, out
