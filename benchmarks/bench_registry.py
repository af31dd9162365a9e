"""How registry lookups scale: each lookup timed on a registry of 100 versions and on one
of 100,000, side by side in one run; the ratio is the figure (target: at most 2.0).

    python benchmarks/bench_registry.py            # 100 against 100,000 versions
    python benchmarks/bench_registry.py --quick    # 100 against 2,000: checks it runs

Both registries have the same shape: versions spread over collections, logged by runs
of ten versions each, each run using the ten versions of the run before it (so every
lookup returns as much in both), user aliases, TTLs and some deleted versions. Each
round times every lookup on both registries one after the other, cycling through
targets spread over the whole file; the best round counts. Not a test: read the
ratios, not the microseconds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import artisync
from artisync.registry import NewVersion, SqliteRegistry
from artisync.registry.sqlite import commit as writes
from artisync.registry.sqlite import edits as edits

PROJECT = "bench"
RUN_SIZE = 10  # versions each run logs (and uses of the run before it)
TARGETS = 50  # lookups cycle through this many targets spread over the registry
TARGET_RATIO = 2.0


@dataclass(frozen=True)
class Shape:
    collections: int
    per_collection: int

    @property
    def versions(self) -> int:
        return self.collections * self.per_collection


SMALL = Shape(collections=10, per_collection=10)
FULL = Shape(collections=100, per_collection=1_000)
QUICK = Shape(collections=20, per_collection=100)


@dataclass(frozen=True)
class Target:
    collection: str
    label: str  # "vN" of a live version in it
    version_id: str
    run_id: str  # a run that logged versions and used others


@dataclass
class Built:
    registry: SqliteRegistry
    targets: list[Target]
    seconds: float


def build(path: Path, shape: Shape) -> Built:
    """A registry of ``shape``, written in large transactions (setup, not timed).

    It goes through the registry's own write functions, so the rows are those real
    commits make, but many commits share one transaction and fsync is off while
    building: one transaction per version would take minutes at 100,000.
    """
    started = time.perf_counter()
    registry = SqliteRegistry(path)
    ids: dict[int, str] = {}  # global version number -> id
    runs: dict[int, int] = {}  # run number -> internal key
    total = shape.versions
    batch = 5_000
    # Private on purpose: this is bulk setup, which the public API does not offer.
    conn = registry._connection()
    conn.execute("PRAGMA synchronous = OFF")
    for start in range(0, total, batch):
        with registry._db.transaction("building the benchmark registry", write=True) as conn:
            for g in range(start, min(start + batch, total)):
                collection, index = g % shape.collections, g // shape.collections
                run = g // RUN_SIZE
                if run not in runs:
                    runs[run] = writes.ensure_run(conn, "local", PROJECT, f"run-{run}", {})
                aliases = ["best"] if index == shape.per_collection // 2 else []
                if index % 10 == 3:
                    aliases.append(f"step-{index}")
                version = NewVersion(
                    submission_id=uuid.uuid4().hex,
                    project=PROJECT,
                    entity="local",
                    name=f"c{collection}",
                    type="dataset",
                    digest=uuid.uuid4().hex,
                    manifest_key=f"manifests/{g}",
                    size=1000,
                    file_count=3,
                    description=None,
                    metadata={"index": index},
                    aliases=aliases,
                    tags=[],
                    run_id=f"run-{run}",
                    ttl_seconds=86_400.0 if g % 7 == 0 else None,
                    distributed_id=None,
                )
                result = writes.commit_version(conn, version)
                ids[g] = result.version.id
                if run > 0:
                    # Run k uses the version run k-1 logged in the same slot.
                    writes.record_edge(conn, runs[run], ids[g - RUN_SIZE], "used")
                if g % 100 == 99 and index != shape.per_collection // 2:
                    edits.delete_version(conn, result.version.id, delete_aliases=True)
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    targets = []
    for t in range(TARGETS):
        # Spread over the file, away from its first and last runs (a target version
        # is used by the next run, a target run uses the previous run's versions).
        g = RUN_SIZE + (t * (total - 3 * RUN_SIZE)) // TARGETS
        g -= 1 if g % 100 == 99 else 0
        run = g // RUN_SIZE
        if run % 10 in (0, 9):  # these log or use a deleted version: fewer answers
            run = run - run % 10 + 5
        collection, index = g % shape.collections, g // shape.collections
        targets.append(Target(f"c{collection}", f"v{index}", ids[g], f"run-{run}"))
    return Built(registry, targets, time.perf_counter() - started)


def lookups(reg: SqliteRegistry) -> dict[str, Callable[[Target], Any]]:
    """The timed calls, each on one target: the registry's, then the SDK's on top."""
    api = artisync.Api(home=reg.path.parent)
    return {
        "Api().artifact(:latest)": lambda t: api.artifact(f"{PROJECT}/{t.collection}:latest"),
        "Api().artifact(:vN)": lambda t: api.artifact(f"{PROJECT}/{t.collection}:{t.label}"),
        "Api().artifact().logged_by()": lambda t: api.artifact(
            f"{PROJECT}/{t.collection}:{t.label}"
        ).logged_by(),
        "Api().artifact().used_by()": lambda t: api.artifact(
            f"{PROJECT}/{t.collection}:{t.label}"
        ).used_by(),
        "Api().run().logged_artifacts()": lambda t: api.run(
            f"{PROJECT}/{t.run_id}"
        ).logged_artifacts(),
        "Api().run().used_artifacts()": lambda t: api.run(f"{PROJECT}/{t.run_id}").used_artifacts(),
        "get_version latest": lambda t: reg.get_version(PROJECT, t.collection, "latest"),
        "get_version vN": lambda t: reg.get_version(PROJECT, t.collection, t.label),
        "get_version alias": lambda t: reg.get_version(PROJECT, t.collection, "best"),
        "get_version_by_id": lambda t: reg.get_version_by_id(t.version_id),
        "produced_by": lambda t: reg.produced_by(t.version_id),
        "used_by": lambda t: reg.used_by(t.version_id),
        "logged_by_run": lambda t: reg.logged_by_run(t.run_id, project=PROJECT),
        "used_by_run": lambda t: reg.used_by_run(t.run_id, project=PROJECT),
    }


def per_call(fn: Callable[[Target], Any], targets: list[Target], calls: int) -> float:
    """Seconds per call of ``fn``, cycling through ``targets``."""
    n = len(targets)
    start = time.perf_counter()
    for i in range(calls):
        fn(targets[i % n])
    return (time.perf_counter() - start) / calls


def check_answers(small: Built, large: Built) -> None:
    """Both registries answer each lookup with as much (else the ratio means nothing)."""
    for built in (small, large):
        t = built.targets[0]
        calls = lookups(built.registry)
        assert calls["get_version vN"](t).id == t.version_id
        assert len(calls["logged_by_run"](t)) == len(calls["used_by_run"](t)) == RUN_SIZE
        assert len(calls["used_by"](t)) == 1 and calls["produced_by"](t) is not None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small large registry")
    parser.add_argument("--repeat", type=int, default=5, help="rounds (the best is kept)")
    parser.add_argument("--calls", type=int, default=None, help="calls per lookup per round")
    parser.add_argument("--dir", type=Path, default=None, help="scratch directory (a temp dir)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    shape = QUICK if args.quick else FULL
    calls = args.calls or (200 if args.quick else 2_000)
    with tempfile.TemporaryDirectory(prefix="artisync-bench-", dir=args.dir) as tmp:
        # Each in its own home, so that artisync.Api can open it as a node's registry.
        small = build(Path(tmp) / "small" / "registry.db", SMALL)
        large = build(Path(tmp) / "large" / "registry.db", shape)
        try:
            check_answers(small, large)
            names = list(lookups(small.registry))
            best: dict[tuple[str, str], float] = {}
            for _ in range(args.repeat):
                for name in names:
                    for size, built in (("small", small), ("large", large)):
                        fn = lookups(built.registry)[name]
                        seconds = per_call(fn, built.targets, calls)
                        key = (name, size)
                        best[key] = min(best.get(key, seconds), seconds)
        finally:
            small.registry.close()
            large.registry.close()
    print(
        f"registry lookups: {SMALL.versions:,} versions against {shape.versions:,} "
        f"({shape.collections} collections; built in {small.seconds:.1f}s and "
        f"{large.seconds:.1f}s); microseconds per call, best of {args.repeat} rounds "
        f"of {calls} calls"
    )
    width = max(len(name) for name in names)
    small_head, large_head = f"{SMALL.versions:,} versions", f"{shape.versions:,} versions"
    print(f"{'lookup':<{width}}  {small_head:>16}  {large_head:>18}  ratio  target")
    missed = 0
    for name in names:
        cheap, costly = best[(name, "small")], best[(name, "large")]
        ratio = costly / cheap
        verdict = "ok" if ratio <= TARGET_RATIO else "MISSED"
        missed += verdict == "MISSED"
        print(
            f"{name:<{width}}  {cheap * 1e6:>16.1f}  {costly * 1e6:>18.1f}  {ratio:5.2f}  "
            f"<= {TARGET_RATIO:.2f} {verdict}"
        )
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
