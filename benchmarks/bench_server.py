"""How fast ``artisync server`` commits and answers, side by side in one run: version
commits against the embedded SQLite registry with the same writers, ``latest`` lookups
in a collection of 100 versions against one of 100,000, and the server's memory over a
long run.

    python benchmarks/bench_server.py                   # 1, 4, 16, 64 writers; 1 minute
    python benchmarks/bench_server.py --minutes 10      # the long run the goal names
    python benchmarks/bench_server.py --quick           # smallest sizes: checks it runs

It starts its own PostgreSQL 15 (``tests/postgres_server.py``; PostgreSQL's durable
defaults, fsync on, unless ``--no-fsync``) and ``--server-processes`` ``artisync server``
processes on one database (stateless: a writer talks to one of them, in turn).

1. Commits, metadata only (the manifests are assumed stored): each writer commits
   versions with fresh submission ids and digests, as fast as it can, for ``--seconds``
   a round (``commit_load.py`` says how writers are laid out). Writers spread over four
   collections, then all on one (commits of one collection queue on its row lock).
   Goals at 16 spread writers: >= 1,000 commits/s, p99 <= 50 ms; throughput grows from
   1 to 16 writers. The ratio is the server's figure over SQLite's (above 1: the server
   is faster).
2. ``HttpRegistry.get_version(project, name, "latest")`` (what
   ``Api().artifact("p/name:latest")`` asks the server), one caller: p50 with 100 versions
   in the collection and with 100,000 (filled through ``import_registry``, not timed).
   Goals: p50 <= 2 ms, ratio <= 1.5.
3. The servers' resident memory (``VmRSS``) at the start and end of ``--minutes`` of
   commits by 16 writers, after the rounds above warmed them. Goal: end <= 1.1 x start.

Each figure keeps its best of ``--repeat`` rounds, the two sides of a round run one after
the other. Not a test: the machine is shared, read the ratios.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

import psycopg  # noqa: E402

from artisync.registry import NewVersion, SqliteRegistry  # noqa: E402
from artisync.registry.http import HttpRegistry  # noqa: E402
from artisync.registry.importing.importer import import_registry  # noqa: E402
from artisync.registry.postgres import PostgresRegistry  # noqa: E402
from bench_registry import PROJECT as FILLED_PROJECT  # noqa: E402
from bench_registry import Shape, build  # noqa: E402
from commit_load import (  # noqa: E402
    STORE,
    Load,
    Outcome,
    commit_load,
    cpu_seconds,
    process_tree,
    rss_mb,
)
from figures import Figure  # noqa: E402
from postgres_server import running_postgres  # noqa: E402
from server_process import Server  # noqa: E402

# PostgreSQL's own defaults for what decides durability and memory, set explicitly (the
# test clusters turn durability off); max_connections fits the servers' pools.
DURABLE = {
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "shared_buffers": "128MB",
    "max_connections": "100",
}
NO_FSYNC = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
SHOWN = ("fsync", "synchronous_commit", "full_page_writes", "wal_level", "shared_buffers")

SPREAD = 4  # collections the spread writers share
RATE_GOAL, P99_GOAL = 1000.0, 0.050  # at GOAL_WRITERS spread writers
GOAL_WRITERS = 16
LOOKUP_P50_GOAL, LOOKUP_RATIO_GOAL = 0.002, 1.5
RSS_GOAL = 1.1
SMALL_COLLECTION = 100
SMALL_PROJECT = "lookups-small"


@dataclass(frozen=True)
class Sizes:
    seconds: float  # a commit round
    large: int  # versions in the large collection
    calls: int  # lookups a round


FULL = Sizes(seconds=5.0, large=100_000, calls=2_000)
QUICK = Sizes(seconds=0.5, large=1_000, calls=100)


def line(name: str, ours: str, peer: str, ratio: str, median: str, goal: str) -> str:
    return f"{name:<34}  {ours:>10}  {peer:>10}  {ratio:>5}  {median:>6}  {goal}"


def check(value: float, goal: float, unit: str, *, at_most: bool, scale: float = 1.0) -> str:
    met = value <= goal if at_most else value >= goal
    return f"{'<=' if at_most else '>='} {goal * scale:g}{unit} {'ok' if met else 'MISSED'}"


# -- PostgreSQL and the servers ----------------------------------------------------------


@contextmanager
def database(no_fsync: bool) -> Iterator[tuple[str, dict[str, str], int]]:
    """A fresh database on a new cluster, the settings it runs with, and the
    postmaster's pid."""
    with running_postgres({**DURABLE, **(NO_FSYNC if no_fsync else {})}) as pg:
        dsn = pg.dsn(pg.create_database())
        with psycopg.connect(dsn) as conn:
            shown = {
                name: str(conn.execute(f"SHOW {name}").fetchone()[0])  # type: ignore[index]
                for name in ("server_version", *SHOWN)
            }
        yield dsn, shown, pg.proc.pid


def start_servers(dsn: str, count: int, logs: Path) -> list[Server]:
    servers = [Server(dsn, logs / f"server-{i}.log") for i in range(count)]
    for server in servers:
        server.wait_until("/readyz", 200)
    return servers


# -- lookups -----------------------------------------------------------------------------


def fill(dsn: str, scratch: Path, large: int) -> float:
    """The small collection (commits) and the large one (``bench_registry``'s shape in
    one collection, imported); returns the seconds it took."""
    started = time.perf_counter()
    with PostgresRegistry(dsn) as registry:
        for n in range(SMALL_COLLECTION):
            registry.commit_version(
                NewVersion(
                    submission_id=uuid.uuid4().hex,
                    project=SMALL_PROJECT,
                    entity=None,
                    name="c0",
                    type="dataset",
                    digest=uuid.uuid4().hex,
                    manifest_key=f"manifests/small/{n}",
                    size=1000,
                    file_count=3,
                    run_id=f"run-{n // 10}",
                    store=STORE,
                )
            )
    path = scratch / "large" / "registry.db"
    build(path, Shape(collections=1, per_collection=large)).registry.close()
    import_registry(path, dsn, default_store=STORE)
    return time.perf_counter() - started


def lookup_round(registry: HttpRegistry, project: str, calls: int) -> float:
    """p50 seconds of ``calls`` lookups of the collection's ``latest``."""
    took = []
    for _ in range(calls):
        began = time.perf_counter()
        registry.get_version(project, "c0", "latest")
        took.append(time.perf_counter() - began)
    return statistics.median(took)


def lookups(url: str, sizes: Sizes, repeat: int) -> Figure:
    with HttpRegistry(url) as registry:
        small = registry.get_version(SMALL_PROJECT, "c0", "latest")
        large = registry.get_version(FILLED_PROJECT, "c0", "latest")
        assert small.index == SMALL_COLLECTION - 1, small
        assert large.index >= sizes.large - 2, large  # the very last may be a tombstone
        figure = Figure("latest", ours=[], peer=[], target=None)
        lookup_round(registry, SMALL_PROJECT, sizes.calls // 10)  # warm both
        lookup_round(registry, FILLED_PROJECT, sizes.calls // 10)
        for _ in range(repeat):
            figure.ours.append(lookup_round(registry, SMALL_PROJECT, sizes.calls))
            figure.peer.append(lookup_round(registry, FILLED_PROJECT, sizes.calls))
    return figure


def print_lookups(figure: Figure, sizes: Sizes, repeat: int) -> None:
    print()
    print(
        f"lookups: HttpRegistry.get_version(project, name, 'latest'), one caller, p50 of "
        f"{sizes.calls} calls, best of {repeat} rounds"
    )
    print(line("figure", "100", f"{sizes.large:,}", "ratio", "median", "goal"))
    small, large = min(figure.ours), min(figure.peer)
    verdict = (
        f"{check(large / small, LOOKUP_RATIO_GOAL, '', at_most=True)}, p50 "
        f"{check(max(small, large), LOOKUP_P50_GOAL, ' ms', at_most=True, scale=1e3)}"
    )
    print(
        line(
            "latest p50 ms, versions in collection",
            f"{small * 1e3:.2f}",
            f"{large * 1e3:.2f}",
            f"{large / small:.2f}",
            f"{figure.median_ratio:.2f}",
            verdict,
        )
    )
    print("(ratio: the large collection's p50 over the small one's; at most 1.5 is flat)")


# -- commits -----------------------------------------------------------------------------


@dataclass
class Side:
    rounds: list[Outcome]
    cpu: list[tuple[float, float]]  # a round's CPU seconds: server processes, PostgreSQL

    def figure(self, measure: Callable[[Outcome], float]) -> list[float]:
        return [measure(o) for o in self.rounds]


def commit_rounds(
    servers: list[Server],
    postmaster: int,
    sqlite: Path,
    writers: int,
    collections: int,
    sizes: Sizes,
    repeat: int,
) -> tuple[Side, Side]:
    server, embedded = Side([], []), Side([], [])
    urls = tuple(s.url for s in servers)

    def used() -> tuple[float, float]:
        return cpu_seconds([s.proc.pid for s in servers]), cpu_seconds(process_tree(postmaster))

    for _ in range(repeat):
        before = used()
        server.rounds.append(commit_load(Load(writers, collections, sizes.seconds, urls=urls)))
        after = used()
        server.cpu.append((after[0] - before[0], after[1] - before[1]))
        embedded.rounds.append(
            commit_load(Load(writers, collections, sizes.seconds, sqlite=sqlite))
        )
    return server, embedded


def commit_lines(writers: int, layout: str, server: Side, embedded: Side) -> None:
    goals = writers == GOAL_WRITERS and layout == "spread"
    label = f"{writers:>2} writer{'s' if writers > 1 else ' '}, {layout}"
    rate = Figure(
        "rate", server.figure(lambda o: o.per_commit), embedded.figure(lambda o: o.per_commit), None
    )
    best = 1 / min(rate.ours)
    print(
        line(
            f"commits/s  {label}",
            f"{best:,.0f}",
            f"{1 / min(rate.peer):,.0f}",
            f"{rate.ratio:.2f}",
            f"{rate.median_ratio:.2f}",
            check(best, RATE_GOAL, "/s", at_most=False) if goals else "(information)",
        )
    )
    for name, measure in (("p50", lambda o: o.p50), ("p99", lambda o: o.p99)):
        fig = Figure(name, server.figure(measure), embedded.figure(measure), None)
        goal = "(information)"
        if goals and name == "p99":
            goal = check(min(fig.ours), P99_GOAL, " ms", at_most=True, scale=1e3)
        print(
            line(
                f"{name} ms     {label}",
                f"{min(fig.ours) * 1e3:.1f}",
                f"{min(fig.peer) * 1e3:.1f}",
                f"{fig.ratio:.2f}",
                f"{fig.median_ratio:.2f}",
                goal,
            )
        )


def growth_line(results: dict[tuple[int, str], tuple[Side, Side]], writers: list[int]) -> None:
    low = min(writers)
    high = max((w for w in writers if w <= GOAL_WRITERS), default=max(writers))
    if low == high:
        return
    # Seconds per commit with few writers over with many: how much the rate grew.
    server = Figure(
        "growth",
        results[(high, "spread")][0].figure(lambda o: o.per_commit),
        results[(low, "spread")][0].figure(lambda o: o.per_commit),
        None,
    )
    embedded = Figure(
        "growth",
        results[(high, "spread")][1].figure(lambda o: o.per_commit),
        results[(low, "spread")][1].figure(lambda o: o.per_commit),
        None,
    )
    print(
        line(
            f"growth {low} -> {high} writers, spread",
            f"{server.ratio:.2f}x",
            f"{embedded.ratio:.2f}x",
            f"{server.ratio:.2f}",
            f"{server.median_ratio:.2f}",
            f"> 1 {'ok' if server.ratio > 1 else 'MISSED'}",
        )
    )


def print_cpu(results: dict[tuple[int, str], tuple[Side, Side]]) -> None:
    print(
        "CPU ms per commit through the server, server processes + PostgreSQL (the writers' "
        "own not counted):"
    )
    for (count, layout), (server, _) in results.items():
        commits = sum(o.commits for o in server.rounds) or 1
        ours = sum(c[0] for c in server.cpu) / commits
        database = sum(c[1] for c in server.cpu) / commits
        label = f"{count:>2} writer{'s' if count > 1 else ' '}, {layout:<6}"
        print(f"  {label}  {ours * 1e3:5.2f} + {database * 1e3:5.2f}")


# -- memory ------------------------------------------------------------------------------


def long_run(servers: list[Server], minutes: float) -> tuple[list[list[float]], Outcome]:
    samples: list[list[float]] = []
    load = Load(GOAL_WRITERS, SPREAD, minutes * 60, urls=tuple(s.url for s in servers))
    outcome = commit_load(
        load,
        sample=lambda: samples.append([rss_mb(s.proc.pid) for s in servers]),
        every=max(1.0, min(30.0, minutes * 6)),
    )
    return samples, outcome


def print_memory(
    servers: list[Server],
    idle: list[float],
    samples: list[list[float]],
    outcome: Outcome,
    minutes: float,
) -> None:
    print()
    print(
        f"memory: {GOAL_WRITERS} writers, spread, for {minutes:g} min "
        f"({outcome.commits:,} commits, {outcome.commits / outcome.seconds:,.0f}/s, "
        f"p50 {outcome.p50 * 1e3:.1f} ms, p99 {outcome.p99 * 1e3:.1f} ms); VmRSS MB of each "
        f"server process, {len(samples)} samples"
    )
    print(line("figure", "start", "end", "ratio", "peak", "goal"))
    for i, _ in enumerate(servers):
        start, end = samples[0][i], samples[-1][i]
        peak = max(s[i] for s in samples)
        print(
            line(
                f"server {i + 1} RSS MB (idle {idle[i]:.0f})",
                f"{start:.1f}",
                f"{end:.1f}",
                f"{end / start:.2f}",
                f"{peak:.1f}",
                check(end / start, RSS_GOAL, "", at_most=True),
            )
        )
    print("(start: after the commit rounds warmed the servers; ratio: end over start)")


# -- main --------------------------------------------------------------------------------


def main() -> int:
    # The servers' first admin gets this key and every writer sends it (a site admin:
    # what is measured is the commit, with its key check, not the rules).
    key = os.environ.setdefault("ARTISYNC_SERVER_BOOTSTRAP_KEY", "ask_" + secrets.token_urlsafe(32))
    os.environ["ARTISYNC_API_KEY"] = key
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smallest sizes, to check it runs")
    parser.add_argument("--writers", default=None, help="writer counts (default 1,4,16,64)")
    parser.add_argument("--minutes", type=float, default=None, help="the memory run (default 1)")
    parser.add_argument("--server-processes", type=int, default=2, help="default 2")
    parser.add_argument("--repeat", type=int, default=None, help="rounds per figure (default 3)")
    parser.add_argument("--seconds", type=float, default=None, help="a commit round (default 5)")
    parser.add_argument("--no-fsync", action="store_true", help="PostgreSQL without fsync")
    parser.add_argument("--dir", type=Path, default=None, help="scratch directory")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    if args.seconds is not None:
        sizes = Sizes(args.seconds, sizes.large, sizes.calls)
    writers = [int(w) for w in (args.writers or ("1,4" if args.quick else "1,4,16,64")).split(",")]
    minutes = args.minutes if args.minutes is not None else (0.03 if args.quick else 1.0)
    repeat = args.repeat or (1 if args.quick else 3)
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=args.dir)))
        dsn, shown, postmaster = stack.enter_context(database(args.no_fsync))
        print(
            f"PostgreSQL {shown.pop('server_version')}: "
            + ", ".join(f"{k}={v}" for k, v in shown.items())
            + (" (NOT durable: --no-fsync)" if args.no_fsync else " (durable: the defaults)")
        )
        filled = fill(dsn, scratch, sizes.large)
        print(
            f"filled {SMALL_COLLECTION} and {sizes.large:,} versions in {filled:.0f}s (not timed)"
        )
        servers = start_servers(dsn, args.server_processes, scratch)
        stack.callback(lambda: [s.stop() for s in servers])
        idle = [rss_mb(s.proc.pid) for s in servers]
        urls = tuple(s.url for s in servers)
        print_lookups(lookups(urls[0], sizes, repeat), sizes, repeat)

        sqlite = scratch / "embedded" / "registry.db"
        sqlite.parent.mkdir()
        SqliteRegistry(sqlite).close()
        print()
        print(
            f"commits, metadata only: {len(servers)} server processes against the embedded "
            f"SQLite registry (one process, its writers' threads share it); best of "
            f"{repeat} rounds of {sizes.seconds:g}s; spread: over {SPREAD} collections, "
            "one: all on one"
        )
        print(line("figure", "server", "sqlite", "ratio", "median", "goal"))
        results: dict[tuple[int, str], tuple[Side, Side]] = {}
        for layout, collections in (("spread", SPREAD), ("one", 1)):
            for count in writers:
                results[(count, layout)] = commit_rounds(
                    servers, postmaster, sqlite, count, collections, sizes, repeat
                )
                commit_lines(count, layout, *results[(count, layout)])
        growth_line(results, writers)
        print("(ratio: the server's figure over SQLite's, above 1 the server is better)")
        print_cpu(results)

        samples, outcome = long_run(servers, minutes)
        print_memory(servers, idle, samples, outcome, minutes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
