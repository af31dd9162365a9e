"""What a training loop pays per call: ``run.log`` and ``run.log_artifact``, vs W&B.

    python benchmarks/bench_loop.py            # 20,000 log calls, 200 artifacts, 5 rounds
    python benchmarks/bench_loop.py --quick    # small sizes: checks the script runs

Both sides run the same W&B-style loop in a child process of their own (wandb leaves
threads and its service behind): ``import artisync as wandb`` against a real daemon on a
scratch home, and ``import wandb`` in offline mode (nothing leaves the machine; its
``wandb-core`` service does the work W&B's ``log`` hands over). Each child times the
calls alone: ``init`` and ``finish`` are not in the figures. The artifact loop logs a
new 1 KiB file a call, as a checkpoint loop would. Not the same work: artisync's
``log_artifact`` returns once the submission is on disk (fsync) and the daemon has
taken it, so a crash right after loses nothing; W&B's queues it in memory for its
service. That figure is printed for information. wandb's figures are skipped when it
is not installed (``pip install wandb``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from importlib.util import find_spec
from pathlib import Path

from bench_write import daemon
from figures import Figure, add_common_arguments, child_output, report

# One child's loop; prints {"log": seconds, "artifact": seconds}.
_LOOP = """
import json, os, sys, time
if sys.argv[1] == "artisync":
    import artisync as wandb
else:
    import wandb
logs, artifacts, work = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
os.chdir(work)
run = wandb.init(project="bench-loop", config={"lr": 0.01})
start = time.perf_counter()
for step in range(logs):
    run.log({"loss": 1.0 / (step + 1), "acc": step / logs, "epoch": step // 100})
log_s = time.perf_counter() - start
artifact_s = 0.0
for i in range(artifacts):
    with open("ckpt.bin", "wb") as f:
        f.write(os.urandom(1024))
    artifact = wandb.Artifact("ckpt", "model", metadata={"step": i})
    artifact.add_file("ckpt.bin")
    start = time.perf_counter()
    run.log_artifact(artifact)
    artifact_s += time.perf_counter() - start
run.finish()
print(json.dumps({"log": log_s / logs, "artifact": artifact_s / max(artifacts, 1)}))
"""


def _child(side: str, logs: int, artifacts: int, env: dict[str, str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix=f"loop-{side}-") as work:
        line = child_output(f"the {side} loop", _LOOP, [side, str(logs), str(artifacts), work], env)
    result: dict[str, float] = json.loads(line)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(parser, repeat=5)
    parser.add_argument("--logs", type=int, default=20_000, help="run.log calls a round")
    parser.add_argument("--artifacts", type=int, default=200, help="log_artifact calls a round")
    args = parser.parse_args()
    logs, artifacts = (500, 10) if args.quick else (args.logs, args.artifacts)
    repeat = args.repeat
    if find_spec("wandb") is None:
        print("wandb is not installed (pip install wandb): nothing to compare with")
        return 0
    base = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "ARTISYNC_"))}
    ours: dict[str, list[float]] = {"log": [], "artifact": []}
    peer: dict[str, list[float]] = {"log": [], "artifact": []}
    with tempfile.TemporaryDirectory(prefix="bench-loop-", dir=args.dir) as scratch:
        for n in range(repeat):
            home = Path(scratch) / f"home-{n}"
            with daemon(home):
                mine = _child("artisync", logs, artifacts, {**base, "ARTISYNC_HOME": str(home)})
            wandb_dir = Path(scratch) / f"wandb-{n}"
            wandb_dir.mkdir()
            offline = {"WANDB_MODE": "offline", "WANDB_SILENT": "true"}
            theirs = _child(
                "wandb", logs, artifacts, {**base, **offline, "WANDB_DIR": str(wandb_dir)}
            )
            for key in ours:
                ours[key].append(mine[key])
                peer[key].append(theirs[key])
    figures = [
        Figure(f"run.log, per call ({logs:,} a round)", ours["log"], peer["log"], 1.0),
        Figure(
            f"run.log_artifact of a 1 KiB file, per call ({artifacts} a round)",
            ours["artifact"],
            peer["artifact"],
            None,  # ours returns once the submission is durable and the daemon's; W&B's
            # offline log_artifact queues it in memory for its service
        ),
    ]
    report(figures, title="per call, W&B's loop", peer="wandb")
    print(
        f"(per call: run.log {min(ours['log']) * 1e6:.1f} µs vs {min(peer['log']) * 1e6:.1f} µs; "
        f"log_artifact {min(ours['artifact']) * 1e3:.2f} ms vs "
        f"{min(peer['artifact']) * 1e3:.2f} ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
