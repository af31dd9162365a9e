"""What every benchmark script shares: a figure measured side by side against a peer,
the table that prints figures, and the scripts' common flags.

A figure keeps every round of both sides. Its ratio is the peer's best time over ours
(noise only ever adds time), and the median of the per-round ratios is printed beside
it (both sides of a round saw the same machine).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Figure", "add_common_arguments", "child_output", "report", "verdict"]

LEGEND = "(times: best round; ratio: best against best; median: of the per-round ratios)"


@dataclass
class Figure:
    """One figure: seconds per round for ours and the peer, and the ratio to reach."""

    name: str
    ours: list[float]  # seconds, one per round
    peer: list[float]
    target: float | None  # None: printed for information
    # Judged on the median of the per-round ratios where the target is stated so
    # ("median of 5 rounds"); else on the best against the best.
    by_median: bool = False

    @property
    def ratio(self) -> float:
        """Best peer time / best time of ours."""
        return min(self.peer) / min(self.ours)

    @property
    def median_ratio(self) -> float:
        """The median of the per-round ratios."""
        return statistics.median(p / o for o, p in zip(self.ours, self.peer, strict=True))

    @property
    def judged(self) -> float:
        """The ratio the target is for."""
        return self.median_ratio if self.by_median else self.ratio


def verdict(ratio: float, target: float | None) -> str:
    """``>= 0.5 ok``, ``>= 0.5 MISSED`` or ``(information)``."""
    if target is None:
        return "(information)"
    return f">= {target:g} {'ok' if ratio >= target else 'MISSED'}"


def report(
    figures: list[Figure], *, title: str = "figure", peer: str = "peer", legend: str = LEGEND
) -> None:
    """Print one line a figure: best times, ratio, median ratio and the verdict."""
    width = max(len(title), *(len(f.name) for f in figures))
    print(f"{title:<{width}}  {'artisync':>9}  {peer:>9}  ratio  median  target")
    for f in figures:
        print(
            f"{f.name:<{width}}  {min(f.ours):8.3f}s  {min(f.peer):8.3f}s  {f.ratio:5.2f}  "
            f"{f.median_ratio:6.2f}  {verdict(f.judged, f.target)}"
        )
    print(legend)


def add_common_arguments(
    parser: argparse.ArgumentParser, *, repeat: int, dir_help: str = "scratch directory"
) -> None:
    """``--quick``, ``--repeat`` and ``--dir``, as every script takes them."""
    parser.add_argument("--quick", action="store_true", help="small sizes, to check it runs")
    parser.add_argument("--repeat", type=int, default=repeat, help="rounds per figure")
    parser.add_argument("--dir", type=Path, default=None, help=dir_help)


def child_output(what: str, code: str, args: list[str], env: dict[str, str]) -> str:
    """The last line ``python -c code *args`` prints, run in ``env`` (a side measured in
    a process of its own); a RuntimeError naming ``what`` with its stderr if it fails."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{done.stderr[-4000:]}")
    return done.stdout.strip().splitlines()[-1]
