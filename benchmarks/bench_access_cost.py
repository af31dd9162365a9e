"""What access control costs a commit: this tree's ``artisync server`` (every request's
key checked, every commit's project's rights) against another tree's, in one run.

    git worktree add /tmp/before 4ec5c53       # the last build without access control
    cp python/artisync/_core*.so /tmp/before/python/artisync/   # the same Rust core
    python benchmarks/bench_access_cost.py --against /tmp/before
    python benchmarks/bench_access_cost.py --against /tmp/before --content

``--content``: every version brings content, in a bucket (``rclone serve s3`` on
127.0.0.1) each side's servers serve with ``--store``. This tree's writers hold no bucket
credentials and store through the server's presigned grants, and its servers prove
every blob before the commit; the other tree's writers store straight into the bucket
with credentials, and its servers check that the content is there. Both the commit's
latency and the whole log's (store, then commit) are compared.

Both sets of servers (``--server-processes`` each) run on one PostgreSQL cluster with
its durable defaults, each set on a database of its own (a tree's migrations are its
own); the same writers (``commit_load.py``, this tree's client, which sends a key the
other tree's server ignores) take turns: a round on one, a round on the other. Goal
(issue 17): at 16 writers, p50 latency at most 10% above the other tree's.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from bench_s3 import start_rclone, use_rclone_credentials  # noqa: E402
from bench_server import DURABLE  # noqa: E402
from commit_load import Load, Outcome, commit_load, cpu_seconds, process_tree  # noqa: E402
from postgres_server import running_postgres  # noqa: E402
from server_process import Server  # noqa: E402

WRITERS, COLLECTIONS = 16, 4
GOAL = 1.10


@dataclass
class Side:
    """One tree's rounds, and the CPU seconds its servers and PostgreSQL used in them."""

    rounds: list[Outcome] = field(default_factory=list)
    server_cpu: float = 0.0
    database_cpu: float = 0.0


@contextmanager
def servers(
    dsn: str, count: int, logs: Path, tree: Path | None, store: str | None
) -> Iterator[list[Server]]:
    """``count`` servers on ``dsn``, from ``tree``'s sources (None: this tree's), serving
    ``store`` if given."""
    env = {} if tree is None else {"PYTHONPATH": str(tree / "python")}
    extra = () if store is None else ("--store", store)
    started = [Server(dsn, logs / f"server-{i}.log", *extra, env=env) for i in range(count)]
    try:
        for server in started:
            server.wait_until("/readyz", 200)
        yield started
    finally:
        for server in started:
            server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, required=True, help="the other tree (a worktree)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds a side (default 5)")
    parser.add_argument("--seconds", type=float, default=5.0, help="a round (default 5)")
    parser.add_argument("--server-processes", type=int, default=2, help="a side (default 2)")
    parser.add_argument(
        "--content", action="store_true", help="versions with content in a bucket (docstring)"
    )
    parser.add_argument(
        "--their-content",
        choices=("direct", "granted"),
        default="direct",
        help="how the other tree's writers store content (default direct: a tree from "
        "before presigned transfers has none)",
    )
    args = parser.parse_args()
    key = os.environ.setdefault("ARTISYNC_SERVER_BOOTSTRAP_KEY", "ask_" + secrets.token_urlsafe(32))
    os.environ["ARTISYNC_API_KEY"] = key
    ours, theirs = Side(), Side()
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        postgres = stack.enter_context(running_postgres(DURABLE))
        (scratch / "ours").mkdir()
        (scratch / "theirs").mkdir()
        stores: dict[str, str | None] = {"ours": None, "theirs": None}
        if args.content:
            bucket = scratch / "bucket"
            for name in ("ours", "theirs"):
                (bucket / name).mkdir(parents=True)
                stores[name] = f"s3://{name}/versions"
            rclone, endpoint = start_rclone(bucket)
            stack.callback(rclone.kill)
            use_rclone_credentials()  # the servers' (and the direct writers') keys
            os.environ["AWS_ENDPOINT_URL"] = endpoint
        mine = stack.enter_context(
            servers(
                postgres.dsn(postgres.create_database()),
                args.server_processes,
                scratch / "ours",
                None,
                stores["ours"],
            )
        )
        other = stack.enter_context(
            servers(
                postgres.dsn(postgres.create_database()),
                args.server_processes,
                scratch / "theirs",
                args.against,
                stores["theirs"],
            )
        )
        sides = (
            (mine, ours, _load(mine, "granted", stores["ours"])),
            (other, theirs, _load(other, args.their_content, stores["theirs"])),
        )
        for _, _, load in sides:  # warm both
            commit_load(replace(load, seconds=1.0))
        for _ in range(args.rounds):
            for processes, side, load in sides:
                pids = [s.proc.pid for s in processes]
                before = cpu_seconds(pids), cpu_seconds(process_tree(postgres.proc.pid))
                side.rounds.append(commit_load(replace(load, seconds=args.seconds)))
                after = cpu_seconds(pids), cpu_seconds(process_tree(postgres.proc.pid))
                side.server_cpu += after[0] - before[0]
                side.database_cpu += after[1] - before[1]
    content = (
        f" with 1 KiB of content each (granted here, {args.their_content} there)"
        if args.content
        else ""
    )
    print(
        f"commits{content} through {args.server_processes} server processes, {WRITERS} "
        f"writers over {COLLECTIONS} collections, {args.rounds} rounds of {args.seconds:g}s "
        "a side, best round; ratio: this tree over the other"
    )
    print(f"{'figure':<22} {'this tree':>10} {args.against.name:>10} {'ratio':>6}  goal")
    rate_ours = max(o.commits / o.seconds for o in ours.rounds)
    rate_theirs = max(o.commits / o.seconds for o in theirs.rounds)
    print(
        f"{'commits/s':<22} {rate_ours:>10,.0f} {rate_theirs:>10,.0f} "
        f"{rate_ours / rate_theirs:>6.2f}"
    )
    for label, side in (("this tree", ours), (args.against.name, theirs)):
        commits = sum(o.commits for o in side.rounds) or 1
        server_ms, database_ms = (
            side.server_cpu / commits * 1e3,
            side.database_cpu / commits * 1e3,
        )
        print(f"CPU ms a commit, {label}: servers {server_ms:.2f} + PostgreSQL {database_ms:.2f}")
    for name in ("p50", "p99"):
        mine_ms = min(getattr(o, name) for o in ours.rounds) * 1e3
        theirs_ms = min(getattr(o, name) for o in theirs.rounds) * 1e3
        ratio = mine_ms / theirs_ms
        goal = f"<= {GOAL:.2f} {'ok' if ratio <= GOAL else 'MISSED'}" if name == "p50" else ""
        print(f"{name + ' ms':<22} {mine_ms:>10.1f} {theirs_ms:>10.1f} {ratio:>6.2f}  {goal}")
    if args.content:
        for q in (0.5, 0.99):
            mine_ms = min(_quantile(o.totals, q) for o in ours.rounds) * 1e3
            theirs_ms = min(_quantile(o.totals, q) for o in theirs.rounds) * 1e3
            label = f"whole log p{round(q * 100)} ms"
            print(f"{label:<22} {mine_ms:>10.1f} {theirs_ms:>10.1f} {mine_ms / theirs_ms:>6.2f}")
    return 0


def _load(processes: list[Server], content: str, store: str | None) -> Load:
    """The writers' load on ``processes``: with content in ``store`` when it is set."""
    urls = tuple(s.url for s in processes)
    if store is None:
        return Load(WRITERS, COLLECTIONS, 0.0, urls=urls)
    return Load(WRITERS, COLLECTIONS, 0.0, urls=urls, content=content, store=store)


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


if __name__ == "__main__":
    sys.exit(main())
