"""MD5 in SIMD lanes, each figure a ratio measured side by side in one run.

    python benchmarks/bench_lanes.py --against /tmp/before   # the issue's sizes
    python benchmarks/bench_lanes.py --quick                 # small sizes, hashlib only

The figures:

- 64 files of 16 MiB in page cache hashed on one thread, against ``hashlib.md5`` over
  the same files: with the CPU's best SIMD level, and with AVX2 forced (``simd="avx2"``)
  when the best is AVX-512;
- the same files on every core, against the build in ``--against`` on every core;
- a ``file://`` reference to 100 files of 10 MiB (in page cache) with checksums, logged
  and committed through a daemon of each build (each on an empty home of its own);
- ``verify()`` of a 10,000-file version (64 KiB files), by each build's SDK, of one
  download.

``--against TREE`` is a checkout of the build to compare with, its core built: for the
build before MD5 in lanes, ``git worktree add /tmp/before 43998b3``, then in it
``cargo build --release && cp target/release/lib_core.so
python/artisync/_core$(python3-config --extension-suffix)``. Without it, only the
hashlib figures are printed. Every side but hashlib runs in a child process with that
tree's ``python/`` first on its path, and times its own call (not its start-up).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from artisync import _core
from bench_write import daemon
from figures import Figure, add_common_arguments, child_output, report

MiB = 1 << 20
THIS_TREE = Path(__file__).resolve().parents[1]

# One child's timed call; prints its seconds.
_CHILD = """
import json, sys, time
mode, args = sys.argv[1], json.loads(sys.argv[2])
if mode == "hash":
    from artisync import _core
    paths = args["paths"]
    start = time.perf_counter()
    _core.hash_files(paths)
elif mode == "reference":
    import artisync
    run = artisync.init(project="bench-lanes")
    artifact = artisync.Artifact("reference", "dataset")
    artifact.add_reference(args["uri"], checksum=True)
    start = time.perf_counter()
    run.log_artifact(artifact)
    artifact.wait()
    elapsed = time.perf_counter() - start
    run.finish()
    print(elapsed)
    sys.exit(0)
elif mode == "verify":
    import artisync
    artifact = artisync.Api().artifact(args["name"])
    start = time.perf_counter()
    artifact.verify(args["root"])
print(time.perf_counter() - start)
"""


@dataclass
class Sizes:
    lane_files: int  # files of lane_size for the hashing figures
    lane_size: int
    ref_files: int  # files of ref_size under the file:// reference
    ref_size: int
    verify_files: int  # files of verify_size in the verified version
    verify_size: int


FULL = Sizes(64, 16 * MiB, 100, 10 * MiB, 10_000, 64 << 10)
QUICK = Sizes(8, 1 * MiB, 10, 1 * MiB, 300, 4 << 10)


def write_files(root: Path, count: int, size: int) -> list[Path]:
    """``count`` files of ``size`` random bytes under ``root``, read once into the cache."""
    root.mkdir(parents=True)
    paths = []
    for i in range(count):
        path = root / f"{i:05d}.bin"
        path.write_bytes(os.urandom(size))
        paths.append(path)
    return paths


def hashlib_md5(paths: list[Path]) -> None:
    for path in paths:
        h = hashlib.md5()
        with open(path, "rb") as f:
            while chunk := f.read(MiB):
                h.update(chunk)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def child(tree: Path, mode: str, args: dict[str, object], env: dict[str, str]) -> float:
    """Seconds of one timed call by ``tree``'s build, in a child process."""
    env = {**env, "PYTHONPATH": str(tree / "python")}
    return float(child_output(f"{mode} with {tree}", _CHILD, [mode, json.dumps(args)], env))


def lane_figures(paths: list[Path], sizes: Sizes, repeat: int) -> list[Figure]:
    """One thread against hashlib: the best level, and AVX2 forced beside AVX-512."""
    label = f"{len(paths)} files of {sizes.lane_size // MiB} MiB in page cache"
    best = _core.simd_levels()[0]
    levels = [best] + (["avx2"] if best == "avx512" else [])
    ours: dict[str, list[float]] = {level: [] for level in levels}
    peer: list[float] = []
    for _ in range(repeat):
        for level in levels:
            ours[level].append(timed(partial(_core.hash_files, paths, threads=1, simd=level)))
        peer.append(timed(lambda: hashlib_md5(paths)))
    return [
        Figure(f"{label}, one thread ({level}) vs hashlib.md5", ours[level], peer, 4.0)
        for level in levels
    ]


def against_figures(
    work: Path, paths: list[Path], against: Path, sizes: Sizes, repeat: int
) -> list[Figure]:
    """Every core, a file:// reference and verify(): this build against ``against``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "ARTISYNC_"))}
    sides = (THIS_TREE, against)
    hashed: dict[Path, list[float]] = {tree: [] for tree in sides}
    referenced: dict[Path, list[float]] = {tree: [] for tree in sides}
    verified: dict[Path, list[float]] = {tree: [] for tree in sides}
    refs = write_files(work / "referenced", sizes.ref_files, sizes.ref_size)
    version_home, name, root = _verified_version(work, sizes, base)
    for n in range(repeat):
        for tree in sides:
            hashed[tree].append(child(tree, "hash", {"paths": [str(p) for p in paths]}, base))
            home = work / f"home-{tree.name}-{n}"
            env = {**base, "ARTISYNC_HOME": str(home), "PYTHONPATH": str(tree / "python")}
            with daemon(home, env=env):
                uri = refs[0].parent.as_uri()
                referenced[tree].append(child(tree, "reference", {"uri": uri}, env))
            env = {**base, "ARTISYNC_HOME": str(version_home)}
            verified[tree].append(child(tree, "verify", {"name": name, "root": root}, env))
    ref_label = f"file:// reference to {sizes.ref_files} x {sizes.ref_size // MiB} MiB"
    return [
        Figure(
            f"{len(paths)} files of {sizes.lane_size // MiB} MiB, every core",
            hashed[THIS_TREE],
            hashed[against],
            4.0,
        ),
        Figure(
            f"{ref_label} with checksums, committed",
            referenced[THIS_TREE],
            referenced[against],
            None,
        ),
        Figure(
            f"verify() of {sizes.verify_files:,} files of {sizes.verify_size >> 10} KiB",
            verified[THIS_TREE],
            verified[against],
            None,
        ),
    ]


def _verified_version(work: Path, sizes: Sizes, base: dict[str, str]) -> tuple[Path, str, str]:
    """A committed version of ``verify_files`` files, and one download of it."""
    tree = work / "to-verify"
    write_files(tree, sizes.verify_files, sizes.verify_size)
    home = work / "home-verify"
    env = {**base, "ARTISYNC_HOME": str(home), "PYTHONPATH": str(THIS_TREE / "python")}
    root = work / "verified"
    script = (
        "import artisync, sys\n"
        "run = artisync.init(project='bench-lanes')\n"
        "artifact = artisync.Artifact('to-verify', 'dataset')\n"
        "artifact.add_dir(sys.argv[1])\n"
        "run.log_artifact(artifact).wait()\n"
        "run.finish()\n"
        "artisync.Api().artifact('bench-lanes/to-verify:latest').download(sys.argv[2])\n"
    )
    with daemon(home, env=env):
        subprocess.run([sys.executable, "-c", script, str(tree), str(root)], env=env, check=True)
    return home, "bench-lanes/to-verify:latest", str(root)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(parser, repeat=3, dir_help="scratch directory (a temp dir)")
    parser.add_argument(
        "--against", type=Path, default=None, help="the build to compare with (a checkout)"
    )
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    against: Path | None = args.against.resolve() if args.against else None
    if against is not None and not list((against / "python" / "artisync").glob("_core*.so")):
        print(f"{against} has no built core: see this script's docstring", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-lanes-", dir=args.dir) as tmp:
        work = Path(tmp)
        paths = write_files(work / "lanes", sizes.lane_files, sizes.lane_size)
        lanes = lane_figures(paths, sizes, args.repeat)
        builds = against_figures(work, paths, against, sizes, args.repeat) if against else []
    levels = ", ".join(_core.simd_levels())
    print(f"{os.cpu_count()} cores; SIMD levels {levels}; {args.repeat} rounds")
    report(lanes, title="MD5 in SIMD lanes", peer="hashlib")
    if against is None:
        print("(--against TREE adds the figures against another build)")
    else:
        report(builds, title=f"this build vs {against}", peer="that one")
    return 0


if __name__ == "__main__":
    sys.exit(main())
