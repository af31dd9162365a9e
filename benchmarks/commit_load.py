"""Concurrent version commits for ``bench_server.py``: writers that commit as fast as
they can for a set time, in processes of their own, and what each commit took.

A writer is a thread that commits metadata-only versions (the manifests are assumed
stored: nothing touches a store) one after the other, each with a fresh submission id
and digest, into one collection of its layout, as its own run. Against a server, each
writer has its own ``HttpRegistry`` (a node), and the writers are spread over a few
client processes so that the client side's GIL is not what is measured. Against the
embedded registry, the writers are threads of one process sharing its
``SqliteRegistry``, as the commit threads of one node's daemon would.

With ``content`` set, each version has content: before its commit the writer stores
one fresh 1 KiB blob and the version's manifest, through the server's presigned grants
(``"granted"``: :class:`~artisync.store.granted.GrantedStore`, a node without bucket
credentials) or straight into the bucket (``"direct"``: an ``S3Store`` with
credentials), so the server's check of the content runs in each commit. Both the
commit's latency and the whole log's (store, then commit) are kept.

Every writer starts at one wall-clock instant handed out once all processes have
imported what they need, and stops at ``start + seconds``; a commit that ends after the
stop is not counted.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import multiprocessing
import os
import queue
import statistics
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from artisync.manifest import Manifest, ManifestEntry, artifact_digest, md5_hex_to_b64
from artisync.registry import NewVersion
from artisync.store import BlobItem, Store

__all__ = ["Load", "Outcome", "commit_load", "cpu_seconds", "process_tree", "rss_mb"]

PROJECT = "commits"
STORE = "s3://bench/store"  # recorded in each version, never read
CLIENT_PROCESSES = 4  # at most, for the writers of a server


class Committer(Protocol):
    def commit_version(self, version: NewVersion) -> Any: ...


@dataclass(frozen=True)
class Load:
    """Who writes where: ``urls`` (server processes, writers spread over them in turn)
    or ``sqlite`` (one registry file), ``writers`` threads over ``collections``."""

    writers: int
    collections: int
    seconds: float
    urls: tuple[str, ...] = ()
    sqlite: Path | None = None
    # "granted" or "direct": each version stores content in ``store`` first (module
    # docstring); None: metadata only.
    content: str | None = None
    store: str = STORE

    def processes(self) -> int:
        return 1 if self.sqlite is not None else min(self.writers, CLIENT_PROCESSES)


@dataclass(frozen=True)
class Outcome:
    """What one load did: commits counted in ``seconds``, and each commit's latency."""

    seconds: float
    latencies: list[float]
    # With content: each version's whole log (store its content, then commit).
    totals: list[float] = field(default_factory=list)

    @property
    def commits(self) -> int:
        return len(self.latencies)

    @property
    def per_commit(self) -> float:
        """Seconds per commit over the whole load (1 / throughput)."""
        return self.seconds / max(1, self.commits)

    def quantile(self, q: float) -> float:
        """The ``q`` quantile of the latencies, in seconds (nearest rank)."""
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies)

    @property
    def p99(self) -> float:
        return self.quantile(0.99)


def _version(writer: int, collection: int, tag: str, n: int) -> NewVersion:
    return NewVersion(
        submission_id=f"{tag}-{n}",
        project=PROJECT,
        entity=None,
        name=f"c{collection}",
        type="dataset",
        digest=uuid.uuid4().hex,
        manifest_key=f"manifests/{tag}/{n}",
        size=1000,
        file_count=3,
        metadata={"writer": writer, "n": n},
        run_id=f"writer-{writer}",
        store=STORE,
    )


def _write(
    registry: Committer,
    writer: int,
    collection: int,
    start: float,
    stop: float,
    content: Content | None = None,
) -> tuple[list[float], list[float]]:
    """Commit until ``stop``: each commit's latency, and each whole log's (with content)."""
    tag = uuid.uuid4().hex[:12]
    latencies: list[float] = []
    totals: list[float] = []
    time.sleep(max(0.0, start - time.time()))
    n = 0
    while True:
        began = time.perf_counter()
        version = _version(writer, collection, tag, n)
        if content is not None:
            version = content.store(version)
        committing = time.perf_counter()
        registry.commit_version(version)
        ended = time.perf_counter()
        if time.time() > stop:
            return latencies, totals
        latencies.append(ended - committing)
        if content is not None:
            totals.append(ended - began)
        n += 1


class Content:
    """One writer's content: a fresh 1 KiB blob and its manifest per version, stored
    through ``store`` on an event loop of the writer's own."""

    def __init__(self, store: Store, scratch: Path) -> None:
        self._store = store
        self._scratch = scratch
        self._loop = asyncio.new_event_loop()

    def store(self, version: NewVersion) -> NewVersion:
        """``version`` with content: its blob and manifest stored, its digest theirs."""
        data = os.urandom(1024)
        md5 = hashlib.md5(data).hexdigest()
        path = self._scratch / md5
        path.write_bytes(data)
        entry = ManifestEntry(path="data.bin", digest=md5_hex_to_b64(md5), size=len(data))
        digest = artifact_digest([entry])
        manifest = json.dumps(Manifest(entries={entry.path: entry}).to_json()).encode()

        async def put() -> str:
            from artisync.store.project_scope import writing_for

            with writing_for(version.entity, version.project):
                await self._store.put_blobs([BlobItem(md5, path, len(data))])
                return await self._store.put_manifest(digest, manifest)

        key = self._loop.run_until_complete(put())
        path.unlink()
        return replace(
            version, digest=digest, manifest_key=key, size=len(data), file_count=1,
            store=self._store.url,
        )  # fmt: skip

    def close(self) -> None:
        self._loop.run_until_complete(self._store.close())
        self._loop.close()


def _content(load: Load, url: str, scratch: Path) -> Content | None:
    """The writer's content, reaching ``load.store`` as ``load.content`` says."""
    if load.content is None:
        return None
    state = Path(tempfile.mkdtemp(dir=scratch))
    if load.content == "direct":
        from artisync.store.s3 import S3Store

        return Content(S3Store(load.store, state_dir=state), state)
    from artisync.store.granted import GrantedStore
    from artisync.store.served import served_by, server_transport

    served = served_by(url)
    store = GrantedStore(served, server_transport(url, None), state_dir=state)
    return Content(store, state)


def _client(
    load: Load, writers: list[int], ready: Any, starts: Any, results: Any
) -> None:  # pragma: no cover - runs in a child process
    from artisync.registry import SqliteRegistry
    from artisync.registry.http import HttpRegistry

    registries: list[Any]
    if load.sqlite is not None:
        shared = SqliteRegistry(load.sqlite)
        registries = [shared for _ in writers]
    else:
        registries = [HttpRegistry(load.urls[w % len(load.urls)]) for w in writers]
    scratch = Path(tempfile.mkdtemp())
    contents = (
        [_content(load, load.urls[w % len(load.urls)], scratch) for w in writers]
        if load.urls
        else [None for _ in writers]
    )
    ready.put(len(writers))
    start = starts.get()
    out: list[tuple[list[float], list[float]]] = [([], []) for _ in writers]

    def run(i: int, writer: int) -> None:
        out[i] = _write(
            registries[i],
            writer,
            writer % load.collections,
            start,
            start + load.seconds,
            contents[i],
        )

    threads = [threading.Thread(target=run, args=(i, w)) for i, w in enumerate(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for registry in {id(r): r for r in registries}.values():
        registry.close()
    for content in contents:
        if content is not None:
            content.close()
    results.put(
        ([x for latencies, _ in out for x in latencies], [x for _, totals in out for x in totals])
    )


def commit_load(load: Load, *, sample: Any = None, every: float = 10.0) -> Outcome:
    """Run ``load`` to its end; ``sample()`` is called at its start and every ``every``
    seconds while it runs (the memory figure reads the servers' RSS so)."""
    context = multiprocessing.get_context("spawn")
    ready, starts, results = context.Queue(), context.Queue(), context.Queue()
    count = load.processes()
    procs = [
        context.Process(
            target=_client,
            args=(load, list(range(p, load.writers, count)), ready, starts, results),
            daemon=True,
        )
        for p in range(count)
    ]
    for proc in procs:
        proc.start()
    try:
        for _ in procs:
            ready.get(timeout=60)
        start = time.time() + 0.2
        for _ in procs:
            starts.put(start)
        if sample is not None:
            time.sleep(max(0.0, start - time.time()))
            sample()
        latencies: list[float] = []
        totals: list[float] = []
        waiting = len(procs)
        while waiting:
            try:
                got, whole = results.get(timeout=every)
                latencies += got
                totals += whole
                waiting -= 1
            except queue.Empty:  # time for the next sample
                if any(p.exitcode not in (None, 0) for p in procs):
                    raise RuntimeError("a writer process failed (traceback above)") from None
                if sample is not None and time.time() < start + load.seconds:
                    sample()
        if sample is not None:
            sample()
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    return Outcome(load.seconds, latencies, totals)


def rss_mb(pid: int) -> float:
    """``VmRSS`` of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"process {pid} has no VmRSS (exited?)")


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU seconds the processes have used so far (gone ones: 0)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def process_tree(root: int) -> list[int]:
    """``root`` and its children (PostgreSQL's postmaster and its backends)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == root:
                children.append(int(entry.name))
    return [root, *children]
