"""Speed of the write path, each figure a ratio against a peer measured in the same run.

    python benchmarks/bench_write.py            # the issue's sizes (10,000 files, 1 GiB)
    python benchmarks/bench_write.py --quick    # small sizes: checks the script runs

Peers: ``wandb.Artifact.add_dir`` (``pip install wandb``; its figures are skipped when
it is missing), ``cp -r``, and ``md5sum`` followed by ``cp``. A real ``artisync daemon``
runs on a scratch home with the local store. Every round writes fresh random content,
so no figure is helped by deduplication. Best of ``--repeat`` rounds, interleaved.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import artisync
from artisync.config import Config
from artisync.sdk.client import DaemonClient

MiB = 1 << 20


@dataclass
class Figure:
    name: str
    ours: float  # seconds
    peer: float  # seconds
    target: float
    unit: str

    @property
    def ratio(self) -> float:
        return self.peer / self.ours


@dataclass
class Sizes:
    files: int
    big: int


FULL = Sizes(files=10_000, big=1024 * MiB)
QUICK = Sizes(files=300, big=8 * MiB)


def make_tree(root: Path, count: int) -> Path:
    root.mkdir(parents=True)
    for i in range(count // 100 + 1):
        (root / f"d{i:03d}").mkdir()
    for i in range(count):
        (root / f"d{i // 100:03d}" / f"f{i:05d}.bin").write_bytes(os.urandom(4096))
    return root


def make_big(path: Path, size: int) -> Path:
    chunk = os.urandom(MiB)
    with open(path, "wb") as f:
        for i in range(size // MiB):
            # Vary each MiB so the file is fresh content, cheaply.
            f.write(i.to_bytes(8, "little") + chunk[8:])
    return path


@contextmanager
def daemon(home: Path) -> Iterator[Config]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "artisync.cli",
            "--home",
            str(home),
            "daemon",
            "--log-level",
            "warning",
        ],
    )
    config = Config.load(home)
    client = DaemonClient(config)
    deadline = time.monotonic() + 30
    while client.queue_status() is None:
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("the daemon did not start")
        time.sleep(0.05)
    try:
        yield config
    finally:
        proc.terminate()
        proc.wait(30)


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def best(samples: list[float]) -> float:
    return min(samples)


def run_rounds(repeat: int, *fns: Callable[[int], float]) -> list[float]:
    """Best time of each ``fn(round)`` over interleaved rounds.

    Each call starts with nothing left to write back (``sync``, untimed): otherwise the
    daemon's one ``syncfs`` per commit would also flush the test data written just
    before, and any side would pay for the writeback of the one before it.
    """
    results: list[list[float]] = [[] for _ in fns]
    for r in range(repeat):
        for i, fn in enumerate(fns):
            os.sync()
            results[i].append(fn(r))
    return [best(s) for s in results]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="scratch directory")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    try:
        os.environ.setdefault("WANDB_SILENT", "true")
        os.environ.setdefault("WANDB_MODE", "offline")
        import wandb
    except ImportError:
        wandb = None
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="asb-", dir=args.dir or "/tmp") as tmp:
        work = Path(tmp)
        os.environ["WANDB_DATA_DIR"] = str(work / "wandb-data")
        os.environ["WANDB_CACHE_DIR"] = str(work / "wandb-cache")
        os.environ["WANDB_DIR"] = str(work / "wandb")
        home = work / "h"
        trees = [make_tree(work / f"tree{r}", sizes.files) for r in range(args.repeat * 4)]
        fresh = iter(trees)
        with daemon(home), artisync.init(project="bench", home=home) as run:

            def ours_log(policy: str) -> Callable[[int], float]:
                def go(_: int) -> float:
                    tree = next(fresh)
                    artifact = artisync.Artifact("tree", "dataset")
                    seconds = timed(
                        lambda: (artifact.add_dir(tree, policy=policy), run.log_artifact(artifact))
                    )
                    artifact.wait()
                    return seconds

                return go

            def ours_e2e(policy: str) -> Callable[[int], float]:
                def go(_: int) -> float:
                    tree = next(fresh)
                    artifact = artisync.Artifact("tree", "dataset")
                    return timed(
                        lambda: (
                            artifact.add_dir(tree, policy=policy),
                            run.log_artifact(artifact),
                            artifact.wait(),
                        )
                    )

                return go

            def wandb_add_dir(policy: str) -> Callable[[int], float]:
                def go(r: int) -> float:
                    assert wandb is not None
                    artifact = wandb.Artifact("tree", "dataset")
                    return timed(lambda: artifact.add_dir(str(trees[r]), policy=policy))

                return go

            def cp_r(r: int) -> float:
                dst = work / f"cp{r}"
                seconds = timed(
                    lambda: subprocess.run(["cp", "-r", str(trees[r]), str(dst)], check=True)
                )
                shutil.rmtree(dst)
                return seconds

            n = sizes.files
            if wandb is not None:
                ours, peer = run_rounds(
                    args.repeat, ours_log("immutable"), wandb_add_dir("immutable")
                )
                figures.append(
                    Figure(
                        f"add_dir(immutable)+log_artifact, {n:,} files, vs "
                        f"wandb add_dir(immutable)",
                        ours,
                        peer,
                        20,
                        "s",
                    )
                )
                ours, peer = run_rounds(args.repeat, ours_log("mutable"), wandb_add_dir("mutable"))
                figures.append(
                    Figure(
                        f"add_dir(mutable)+log_artifact, {n:,} files, vs wandb add_dir(mutable)",
                        ours,
                        peer,
                        3,
                        "s",
                    )
                )
            else:
                print("wandb is not installed (pip install wandb): its figures are skipped")
            ours_m, ours_i, peer = run_rounds(
                args.repeat, ours_e2e("mutable"), ours_e2e("immutable"), cp_r
            )
            figures.append(
                Figure(f"{n:,} files of 4 KiB committed (mutable) vs cp -r", ours_m, peer, 0.5, "s")
            )
            figures.append(
                Figure(
                    f"{n:,} files of 4 KiB committed (immutable) vs cp -r", ours_i, peer, 0.5, "s"
                )
            )

            for r in range(args.repeat):
                for side in ("mutable", "immutable", "peer"):
                    make_big(work / f"big-{side}-{r}.bin", sizes.big)

            def big_ours(policy: str) -> Callable[[int], float]:
                def go(r: int) -> float:
                    path = work / f"big-{policy}-{r}.bin"
                    artifact = artisync.Artifact("big", "model")
                    seconds = timed(
                        lambda: (
                            artifact.add_file(path, policy=policy),
                            run.log_artifact(artifact),
                            artifact.wait(),
                        )
                    )
                    path.unlink()
                    return seconds

                return go

            def md5sum_cp(r: int) -> float:
                path = work / f"big-peer-{r}.bin"
                dst = work / f"big-copy-{r}.bin"
                seconds = timed(
                    lambda: (
                        subprocess.run(["md5sum", str(path)], check=True, capture_output=True),
                        subprocess.run(["cp", str(path), str(dst)], check=True),
                    )
                )
                path.unlink()
                dst.unlink()
                return seconds

            ours_m, ours_i, peer = run_rounds(
                args.repeat, big_ours("mutable"), big_ours("immutable"), md5sum_cp
            )
            mib = sizes.big // MiB
            figures.append(
                Figure(
                    f"one {mib} MiB file committed (mutable) vs md5sum + cp", ours_m, peer, 0.7, "s"
                )
            )
            figures.append(
                Figure(
                    f"one {mib} MiB file committed (immutable) vs md5sum + cp",
                    ours_i,
                    peer,
                    0.7,
                    "s",
                )
            )

    print(
        f"artisync {artisync.__version__}, {os.cpu_count()} cores, best of {args.repeat}"
        + (f", wandb {wandb.__version__}" if wandb is not None else "")
    )
    width = max(len(f.name) for f in figures)
    print(f"{'figure':<{width}}  {'artisync':>10}  {'peer':>10}  ratio  target")
    for f in figures:
        verdict = "ok" if f.ratio >= f.target else "MISSED"
        print(
            f"{f.name:<{width}}  {f.ours:9.3f}s  {f.peer:9.3f}s  {f.ratio:5.2f}  "
            f">= {f.target:g} {verdict}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
