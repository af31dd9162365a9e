"""The daemon's peak resident memory while it commits one artifact of many entries.

    python benchmarks/bench_memory.py                    # 1,000,000 entries (issue 6)
    python benchmarks/bench_memory.py --entries 200000   # a smaller point of the curve

A directory of N tiny files (made once under ``--dir`` and reused) is logged with
``add_dir(policy="immutable")`` to a real daemon on a scratch home, with the local
store; the daemon's resident memory is read before the artifact (``VmRSS``) and its peak
(``VmHWM``, the kernel's high-water mark: no sampling can miss it) once the version has
committed. The target: ≤ 500 MB for 1,000,000 entries. Below that, the growth per entry
over the idle daemon is scaled to 1,000,000.

``--store s3`` commits to an S3 store instead, ``rclone serve s3`` on 127.0.0.1 (as in
``bench_s3.py``); with ``--policy reference`` nothing but the manifest goes up, so the
figure is the daemon's memory for a million entries and their manifest on a remote store
without a million uploads.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import artisync

sys.path.insert(0, str(Path(__file__).parent))
from bench_s3 import start_rclone, use_rclone_credentials  # the S3 server of the upload bench
from bench_write import daemon  # the same daemon start as the write bench

TARGET_MB = 500
PER_DIR = 1000


def make_tree(root: Path, entries: int) -> Path:
    """``entries`` files of a few bytes each, ``PER_DIR`` per directory; reused if made."""
    done = root / f".complete-{entries}"
    if done.exists():
        return root
    for i in range(entries):
        directory = root / f"d{i // PER_DIR:05d}"
        if i % PER_DIR == 0:
            directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / f"f{i:07d}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, f"{i}\n".encode())
        os.close(fd)
    done.touch()
    return root


def rss_mb(pid: int, field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument(
        "--policy",
        choices=["immutable", "mutable", "reference"],
        default="immutable",
        help="mutable: the SDK snapshots every file and the submission lists each one; "
        "reference: add_reference('file://DIR'), one reference entry per file",
    )
    parser.add_argument(
        "--store", choices=["local", "s3"], default="local", help="s3: rclone serve s3"
    )
    args = parser.parse_args()
    tree = make_tree(args.dir / f"asmem-{args.entries}", args.entries)
    with tempfile.TemporaryDirectory(prefix="asmem-home-", dir=args.dir) as tmp:
        home = Path(tmp) / "home"
        with contextlib.ExitStack() as stack:
            store = None
            if args.store == "s3":
                store = stack.enter_context(s3_store(Path(tmp) / "served"))
            config = stack.enter_context(daemon(home, store))
            pid = _pid(config.home)
            idle = rss_mb(pid, "VmRSS")
            with artisync.init(project="bench", home=home) as run:
                artifact = artisync.Artifact("many", "dataset")
                start = time.perf_counter()
                if args.policy == "reference":
                    artifact.add_reference(tree.as_uri(), max_objects=args.entries + 1)
                else:
                    artifact.add_dir(tree, policy=args.policy)
                run.log_artifact(artifact)
                artifact.wait()
                seconds = time.perf_counter() - start
            peak = rss_mb(pid, "VmHWM")
    per_entry = (peak - idle) * 2**20 / args.entries
    at_million = idle + per_entry * 1_000_000 / 2**20
    verdict = "ok" if at_million <= TARGET_MB else "MISSED"
    print(
        f"entries {args.entries:,} ({args.policy}, {args.store} store): "
        f"committed in {seconds:.1f} s"
    )
    print(f"daemon idle RSS {idle:.0f} MB")
    print(
        f"daemon peak RSS {peak:.0f} MB ({per_entry:,.0f} bytes per entry over idle; "
        f"{at_million:,.0f} MB at 1,000,000 entries)  target <= {TARGET_MB} MB  {verdict}"
    )
    return 0


@contextlib.contextmanager
def s3_store(served: Path) -> Iterator[str]:
    """``rclone serve s3`` on ``served`` with a bucket, and the store URL for it."""
    (served / "bench").mkdir(parents=True)
    proc, endpoint = start_rclone(served)
    use_rclone_credentials()
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    try:
        yield "s3://bench/memory"
    finally:
        proc.terminate()
        proc.wait(10)


def _pid(home: Path) -> int:
    from artisync.config import Config
    from artisync.sdk.client import DaemonClient

    status = DaemonClient(Config.load(home)).queue_status()
    assert status is not None, "the daemon answers"
    return int(status["pid"])


if __name__ == "__main__":
    sys.exit(main())
