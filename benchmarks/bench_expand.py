"""Expanding a versioned S3 prefix: artisync's listing against one HEAD per object.

    python benchmarks/bench_expand.py            # 10,000 objects under one prefix
    python benchmarks/bench_expand.py --quick    # 200 objects: checks the script runs

The server is moto (``moto_server``, 127.0.0.1): ``rclone serve s3``, the throughput
server of the other benchmarks, answers ``NotImplemented`` to PutBucketVersioning and
ListObjectVersions, so it has no versioned prefix to expand.

Both sides find every object's ETag and version id, with the same aiobotocore client
(``artisync.references.s3.new_s3_client``, 32 connections, on a session made the way
the daemon makes them):

- ours is the daemon's expansion (``RemoteReferences.expand``): ListObjectVersions
  pages of 1,000, one request after the other, plus one HEAD (is the prefix an object?);
- the peer lists the keys (ListObjectsV2) and then asks for each object's version with
  a HEAD, 32 in flight at once: what W&B's S3 handler does, made concurrent.

Requests are counted at a counting proxy in front of moto, in a pass of their own; the
timed rounds talk to moto directly (the proxy shares this process's GIL) and alternate
ours and the peer's. Each time figure is best against best, with the median of the
per-round ratios beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from artisync.references.remote import RemoteReferences
from artisync.references.s3 import new_s3_client, new_session

# The counting reverse proxy the tests use (aiohttp only, no pytest).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from aiohttp_servers import CountingProxy

BUCKET = "bench-expand"
PREFIX = "data"
HEADS_IN_FLIGHT = 32  # the client's connection pool
LIST_TARGET = 12
SPEED_TARGET = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["moto_server", "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=out
        )
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1)
            return proc, url
        except urllib.error.HTTPError:
            return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"moto_server did not start:\n{log.read_text()}") from None
            time.sleep(0.05)


async def fill(count: int) -> None:
    """A versioned bucket with ``count`` small objects under the prefix (and a few
    outside it, which neither side may pick up)."""
    async with new_s3_client(new_session()) as client:
        await client.create_bucket(Bucket=BUCKET)
        await client.put_bucket_versioning(
            Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"}
        )
        slots = asyncio.Semaphore(64)

        async def put(key: str, body: bytes) -> None:
            async with slots:
                await client.put_object(Bucket=BUCKET, Key=key, Body=body)

        keys = [f"{PREFIX}/{i // 1000:02d}/{i:05d}.bin" for i in range(count)]
        others = [f"{PREFIX}-other/{i}.bin" for i in range(3)]
        await asyncio.gather(*(put(k, b"%d" % i) for i, k in enumerate(keys + others)))


async def ours() -> dict[str, tuple[str, str]]:
    """ETag and version id of every object, as the daemon expands the reference."""
    async with RemoteReferences() as refs:
        entries = await refs.expand(f"s3://{BUCKET}/{PREFIX}", max_objects=10_000_000)
    return {e.ref: (e.digest, str(e.extra["versionID"])) for e in entries}


async def head_each() -> dict[str, tuple[str, str]]:
    """The same, listing keys and then asking each object's version with a HEAD."""
    async with new_s3_client(new_session()) as client:
        keys: list[str] = []
        params: dict[str, Any] = {"Bucket": BUCKET, "Prefix": f"{PREFIX}/", "MaxKeys": 1000}
        while True:
            page = await client.list_objects_v2(**params)
            keys += [o["Key"] for o in page.get("Contents", ())]
            if not page.get("IsTruncated"):
                break
            params["ContinuationToken"] = page["NextContinuationToken"]
        slots = asyncio.Semaphore(HEADS_IN_FLIGHT)

        async def head(key: str) -> tuple[str, tuple[str, str]]:
            async with slots:
                answer = await client.head_object(Bucket=BUCKET, Key=key)
            return f"s3://{BUCKET}/{key}", (answer["ETag"].strip('"'), answer["VersionId"])

        return dict(await asyncio.gather(*(head(k) for k in keys)))


def timed(
    work: Callable[[], Awaitable[dict[str, tuple[str, str]]]], count: int
) -> tuple[float, float]:
    """Wall time and this process's CPU time (the client's: the server is another
    process) of one run of ``work``."""

    async def run() -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        found = await work()
        elapsed = time.perf_counter() - start, time.process_time() - cpu
        assert len(found) == count, (work.__name__, len(found), count)
        return elapsed

    return asyncio.run(run())


def counted(
    endpoint: str, work: Callable[[], Awaitable[dict[str, tuple[str, str]]]]
) -> tuple[CountingProxy, dict[str, tuple[str, str]]]:
    """Run ``work`` through a counting proxy: the proxy (its requests) and the result."""
    proxy = CountingProxy(endpoint)
    proxy.start()
    os.environ["AWS_ENDPOINT_URL"] = proxy.url
    try:
        found = asyncio.run(work())  # type: ignore[arg-type]
    finally:
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        proxy.stop()
    return proxy, found


async def server_costs(samples: int = 20) -> tuple[float, float]:
    """What the server takes for one ListObjectVersions page of 1,000 and for one HEAD
    (medians, one request at a time): what the times above are made of."""
    async with new_s3_client(new_session()) as client:
        pages: list[float] = []
        for _ in range(3):
            start = time.perf_counter()
            await client.list_object_versions(Bucket=BUCKET, Prefix=f"{PREFIX}/", MaxKeys=1000)
            pages.append(time.perf_counter() - start)
        heads: list[float] = []
        for i in range(samples):
            start = time.perf_counter()
            await client.head_object(Bucket=BUCKET, Key=f"{PREFIX}/00/{i:05d}.bin")
            heads.append(time.perf_counter() - start)
    return statistics.median(pages), statistics.median(heads)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 objects")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("moto_server") is None:
        print("moto_server is missing: pip install 'moto[server]'")
        return 1
    count = 200 if args.quick else 10_000
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_S3_ENDPOINT_URL"):
        os.environ.pop(name, None)
    with tempfile.TemporaryDirectory(prefix="bench-expand-") as scratch:
        proc, endpoint = start_moto(Path(scratch) / "moto.log")
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        try:
            asyncio.run(fill(count))
            ours_proxy, found = counted(endpoint, ours)
            peer_proxy, expected = counted(endpoint, head_each)
            assert found == expected, "the two sides found different ETags or versions"
            mine_runs = [(timed(ours, count), timed(head_each, count)) for _ in range(args.repeat)]
            mine = [m[0] for m, _ in mine_runs]
            peer = [p[0] for _, p in mine_runs]
            mine_cpu = min(m[1] for m, _ in mine_runs)
            peer_cpu = min(p[1] for _, p in mine_runs)
            page_cost, head_cost = asyncio.run(server_costs())
        finally:
            proc.kill()
            proc.wait()

    lists = ours_proxy.count("GET", "versions")
    ratio = min(peer) / min(mine)
    median = statistics.median(p / o for o, p in zip(mine, peer, strict=True))
    title = f"expand s3://{BUCKET}/{PREFIX}: {count:,} objects, versioned (moto)"
    print(title)
    print(f"{'':<22}{'artisync':>10}{'HEAD each':>11}  ratio  median")
    print(
        f"{'time':<22}{min(mine):9.3f}s{min(peer):10.3f}s{ratio:7.1f}{median:8.1f}  "
        f">= {SPEED_TARGET:g} {'ok' if ratio >= SPEED_TARGET else 'MISSED'}"
    )
    print(
        f"{'requests (at proxy)':<22}{len(ours_proxy.requests):10d}{len(peer_proxy.requests):11d}"
        f"  (ours: {lists} ListObjectVersions + {ours_proxy.count('HEAD')} HEAD)"
    )
    print(
        f"{'list requests':<22}{lists:10d}{peer_proxy.count('GET', 'list-type'):11d}  "
        f"<= {LIST_TARGET} {'ok' if lists <= LIST_TARGET else 'MISSED'}"
    )
    print(f"{'client CPU':<22}{mine_cpu:9.3f}s{peer_cpu:10.3f}s  (the rest is the server's)")
    print(f"(times: best of {args.repeat} rounds; ratio: HEAD-each time over ours)")
    print(
        f"(information) one request at a time here: a ListObjectVersions page "
        f"{page_cost:.3f}s, a HEAD {head_cost * 1000:.1f}ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
