"""A training script for the fault tests: logs versions of a few artifacts through the SDK.

Run as ``python fault_client.py HOME CLIENT COUNT ARTIFACTS RECORD LOCKS SEED PAUSE``.
Each of its COUNT submissions (up to PAUSE seconds apart, at random) goes to one of
the comma-separated ARTIFACTS, mixing the policies (a ``mutable`` snapshot, an
``immutable`` file, a ``new_file``) with unique content and one file every version
shares. Several clients log to the same artifacts at once; a lock per artifact (in
LOCKS) makes their calls one after another, so each artifact has one log order:
``metadata["index"]`` counts it, and the daemon must commit ``vN`` with ``index == N``.
Each submission is appended to RECORD as a JSON line (:func:`consistency.record_line`)
once ``log_artifact`` returned.
"""

from __future__ import annotations

import fcntl
import os
import random
import sys
import time
from pathlib import Path

import artisync
from consistency import Logged, record_line

PROJECT = "faults"


def _next_index(locks: Path, name: str) -> int:
    counter = locks / f"{name}.count"
    return int(counter.read_text()) if counter.exists() else 0


def main() -> None:
    home, client, count, artifacts, record, lock_dir, seed, pause = sys.argv[1:9]
    locks = Path(lock_dir)
    rng = random.Random(f"{seed}-{client}")
    names = artifacts.split(",")
    work = Path(record).with_suffix(".files")
    work.mkdir(exist_ok=True)
    with (
        artisync.init(project=PROJECT, home=home, name=f"client-{client}") as run,
        open(record, "a") as out,
    ):
        for i in range(int(count)):
            name = rng.choice(names)
            # Mostly small; now and then a few MiB, so uploads finish out of order.
            size = rng.choice([rng.randrange(1, 4096), rng.randrange(4096, 256 << 10), 3 << 20])
            source = work / f"{i}.bin"
            source.write_bytes(rng.randbytes(size))
            kind = i % 3
            with open(locks / f"{name}.lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                index = _next_index(locks, name)
                artifact = artisync.Artifact(name, "dataset", metadata={"index": index})
                artifact.add_file(source, name="weights.bin", policy=_policy(kind))
                if kind == 2:
                    with artifact.new_file("notes.txt") as f:
                        f.write(f"client {client} submission {i}\n")
                with artifact.new_file("shared.txt") as f:
                    f.write("the same in every version\n")
                started = time.time_ns()
                run.log_artifact(artifact)
                returned = time.time_ns()
                (locks / f"{name}.count").write_text(str(index + 1))
            logged = Logged(artifact.submission_id, PROJECT, name, index, started, returned)
            out.write(record_line(logged) + "\n")
            out.flush()
            time.sleep(rng.uniform(0, float(pause)))
            if i % 3 == 1:  # an immutable file is read by the daemon: keep it unchanged
                continue
            os.unlink(source)  # the snapshot is the daemon's: the source may go


def _policy(kind: int) -> str:
    return "immutable" if kind == 1 else "mutable"


if __name__ == "__main__":
    main()
