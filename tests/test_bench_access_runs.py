"""The access-control benchmarks keep running, at their smallest sizes, against a real
PostgreSQL and real ``artisync server`` processes they start themselves. Speed is read
from their full runs (README, "Speed"), never here."""

from __future__ import annotations

from pathlib import Path

from bench_runner import run_benchmark, verdict_rows

ROOT = Path(__file__).resolve().parent.parent


def test_key_check_benchmark_prints_its_figures_and_verdict() -> None:
    out = run_benchmark("bench_auth.py", "--quick", timeout=120)
    assert len(verdict_rows(out, marker="<= ")) == 1, out
    assert "header" in out and "PostgreSQL" in out, out


def test_access_cost_benchmark_compares_two_trees() -> None:
    # Against this same tree: what is checked is that both sides run and print.
    out = run_benchmark(
        "bench_access_cost.py",
        "--against",
        str(ROOT),
        "--rounds",
        "1",
        "--seconds",
        "0.5",
        "--server-processes",
        "1",
        timeout=180,
    )
    assert len(verdict_rows(out, marker="<= ")) == 1, out
    assert out.count("CPU ms a commit") == 2, out


def test_access_cost_benchmark_runs_with_content_through_grants() -> None:
    out = run_benchmark(
        "bench_access_cost.py",
        "--against",
        str(ROOT),
        "--rounds",
        "1",
        "--seconds",
        "0.5",
        "--server-processes",
        "1",
        "--content",
        "--their-content",
        "granted",
        timeout=240,
    )
    assert len(verdict_rows(out, marker="<= ")) == 1, out
    assert "whole log p50" in out, out
