"""What checking an API key costs a request on ``artisync server``, side by side with
what the request costs anyway.

    python benchmarks/bench_auth.py            # 200,000 checks a round, 5 rounds
    python benchmarks/bench_auth.py --quick    # checks it runs

1. A cached key (every request after a key's first): ``Gate.cached_identity``, one
   HMAC-SHA256 and one dict lookup, what the server's middleware does on the event loop.
   Goal: <= 50 us. The peer is parsing the request's ``Authorization`` header, which any
   request pays.
2. A key seen for the first time (or after an admin change emptied the cache): the
   lookup in PostgreSQL, on a worker thread (information: once per key per change).

It starts its own PostgreSQL (``tests/postgres_server.py``). Best of the rounds; the
machine is shared, read the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from artisync.registry.postgres import PostgresRegistry  # noqa: E402
from artisync.server.access.directory import Directory  # noqa: E402
from artisync.server.access.gate import Gate  # noqa: E402
from artisync.server.access.keys import read_authorization  # noqa: E402
from postgres_server import running_postgres  # noqa: E402

GOAL_US = 50.0
SECRET = b"bench_auth's server secret, 32 bytes or more"


def per_call(call: object, calls: int) -> float:
    """Seconds per call of ``call()`` over ``calls`` calls."""
    assert callable(call)
    began = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - began) / calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small rounds, to check it runs")
    parser.add_argument("--rounds", type=int, default=None, help="default 5")
    args = parser.parse_args()
    calls = 2_000 if args.quick else 200_000
    rounds = args.rounds or (1 if args.quick else 5)
    with running_postgres() as postgres:
        dsn = postgres.dsn(postgres.create_database())
        PostgresRegistry(dsn).close()  # the schema
        directory = Directory(dsn, SECRET)
        directory.create_user("bench")
        key = directory.create_key("bench")
        gate = Gate(directory, SECRET)
        try:
            header = f"Bearer {key}"
            assert gate.identity(key) is not None
            cached, parsed, first = [], [], []
            for _ in range(rounds):
                cached.append(per_call(lambda: gate.cached_identity(key), calls))
                parsed.append(per_call(lambda: read_authorization(header), calls))
                lookups = []
                for _ in range(max(10, calls // 1000)):
                    began = time.perf_counter()
                    gate.identity(key)
                    lookups.append(time.perf_counter() - began)
                first.append(statistics.median(lookups))
        finally:
            gate.close()
    best = min(cached) * 1e6
    print(f"key checks: {calls:,} calls a round, best of {rounds} rounds")
    print(f"{'figure':<44} {'us':>8}  goal")
    print(
        f"{'cached key (HMAC + lookup, on the loop)':<44} {best:>8.2f}  "
        f"<= {GOAL_US:g} us {'ok' if best <= GOAL_US else 'MISSED'}"
    )
    print(f"{'parsing the Authorization header (peer)':<44} {min(parsed) * 1e6:>8.2f}")
    print(f"{'first sight of a key: PostgreSQL, p50':<44} {min(first) * 1e6:>8.1f}  (information)")
    print(f"ratio cached check / header parsing: {min(cached) / min(parsed):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
