"""How long moving a node to a server takes: ``import_registry`` of an embedded registry of
100,000 versions into an empty PostgreSQL database, then again (finding everything there).

    python benchmarks/bench_import.py --db postgresql://USER@HOST/EMPTY_DB
    python benchmarks/bench_import.py --db ... --quick     # 2,000 versions: checks it runs

The registry is ``bench_registry.py``'s (100 collections of 1,000 versions, runs of ten
versions each using the run before's, aliases, TTLs, tombstones), built first, not timed.
The database must be empty or hold only a previous run's import of the same shape (the
second import then counts everything as already there). Not a test: read the seconds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from artisync.registry.importing.importer import import_registry
from bench_registry import FULL, QUICK, build


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="an empty PostgreSQL database (DSN)")
    parser.add_argument("--quick", action="store_true", help="2,000 versions, not 100,000")
    args = parser.parse_args()
    shape = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory(prefix="artisync-bench-import-") as tmp:
        path = Path(tmp) / "registry.db"
        built = build(path, shape)
        built.registry.close()
        print(f"built {shape.versions:,} versions in {built.seconds:.1f}s (not timed)")
        for attempt in ("first import", "second import"):
            started = time.perf_counter()
            report = import_registry(path, args.db)
            seconds = time.perf_counter() - started
            print(f"{attempt}: {seconds:.1f}s")
            for line in report.lines()[1:]:
                print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
