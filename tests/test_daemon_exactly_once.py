"""The daemon commits every submission exactly once, in order, whatever kills it.

Each test runs the real daemon as a subprocess. Submissions are written the way the
SDK writes them when the daemon is down (published straight into ``spool/new``), so
these tests pin the daemon's side alone.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from artisync.crashpoints import POINTS
from artisync.spool import Spool
from daemon_harness import (
    DaemonProcess,
    check_store_consistent,
    drop,
    result_of,
    staged_submission,
    wait_for,
)


@pytest.fixture
def daemon(home: Path) -> Iterator[DaemonProcess]:
    d = DaemonProcess(home)
    yield d
    d.kill()


def _versions_in_log_order(d: DaemonProcess, ids: list[str], name: str) -> None:
    """Every id committed once; v0..vN-1 in the order the ids were logged."""
    with d.registry() as registry:
        versions = registry.list_versions("proj", name)
        by_submission = {sid: registry.submission_result(sid) for sid in ids}
    assert [v.index for v in versions] == list(range(len(ids))), "versions not contiguous"
    assert [v.metadata["index"] for v in versions] == list(range(len(ids)))
    for sid in ids:
        result = by_submission[sid]
        assert result is not None, f"submission {sid} never committed"
    check_store_consistent(d.home, versions)


def test_submissions_dropped_while_the_daemon_is_down_commit_when_it_starts(
    daemon: DaemonProcess,
) -> None:
    spool = Spool(daemon.config.spool)
    subs = [
        staged_submission(spool, "proj", "data", {"x.txt": f"v{i}".encode()}, metadata={"index": i})
        for i in range(5)
    ]
    for sub in subs:
        drop(spool, sub)
    daemon.start()
    results = [result_of(spool, sub.id) for sub in subs]
    assert [r["version"] for r in results] == ["v0", "v1", "v2", "v3", "v4"]
    _versions_in_log_order(daemon, [s.id for s in subs], "data")


def test_largest_first_loop_commits_in_log_order_while_the_daemon_runs(
    daemon: DaemonProcess,
) -> None:
    daemon.start()
    spool = Spool(daemon.config.spool)
    subs = []
    for i in range(20):
        # The first versions are the biggest, so they finish uploading last.
        payload = os.urandom((20 - i) * 256 * 1024)
        sub = staged_submission(
            spool, "proj", "ckpt", {"model.bin": payload}, metadata={"index": i}
        )
        drop(spool, sub)
        subs.append(sub)
    for sub in subs:
        assert result_of(spool, sub.id)["status"] == "committed"
    _versions_in_log_order(daemon, [s.id for s in subs], "ckpt")


def test_identical_content_gives_no_new_version(daemon: DaemonProcess) -> None:
    daemon.start()
    spool = Spool(daemon.config.spool)
    first = staged_submission(spool, "proj", "same", {"a": b"same bytes"}, metadata={"index": 0})
    drop(spool, first)
    assert result_of(spool, first.id)["version"] == "v0"
    again = staged_submission(spool, "proj", "same", {"a": b"same bytes"}, aliases=["again"])
    drop(spool, again)
    result = result_of(spool, again.id)
    assert (result["version"], result["created"]) == ("v0", False)
    assert "again" in result["aliases"] and "latest" in result["aliases"]


@pytest.mark.parametrize("point", POINTS)
def test_kill_at_each_pipeline_step_then_restart_commits_exactly_once(
    daemon: DaemonProcess, point: str
) -> None:
    spool = Spool(daemon.config.spool)
    subs = [
        staged_submission(
            spool,
            "proj",
            "data",
            {"f.bin": os.urandom(1024 + i), "g.txt": b"shared"},
            metadata={"index": i},
        )
        for i in range(4)
    ]
    for sub in subs:
        drop(spool, sub)
    # Die at the second time through the point: one submission is past it already.
    daemon.start({"ARTISYNC_CRASH_AT": f"{point}:2"}, wait_ready=False)
    assert daemon.wait_exit() == -9, daemon.logs()
    daemon.start()
    for sub in subs:
        assert result_of(spool, sub.id)["status"] == "committed"
    _versions_in_log_order(daemon, [s.id for s in subs], "data")
    # The receipt lands in done/ just before the work file and staging go away.
    wait_for(
        lambda: not spool.in_work() and not list((spool.root / "staging").iterdir()),
        what="work/ and staging/ to empty",
    )


def test_random_kills_under_load_lose_nothing_and_duplicate_nothing(
    daemon: DaemonProcess,
) -> None:
    spool = Spool(daemon.config.spool)
    rng = random.Random(7)
    subs = []
    stop = threading.Event()

    def writer() -> None:
        for i in range(60):
            data = {"w.bin": rng.randbytes(rng.randrange(1, 200_000)), "same": b"s"}
            sub = staged_submission(spool, "proj", "load", data, metadata={"index": i})
            drop(spool, sub)
            subs.append(sub)
            if stop.wait(0.01):
                return

    daemon.start()
    thread = threading.Thread(target=writer)
    thread.start()
    for _ in range(4):
        time.sleep(rng.uniform(0.05, 0.3))
        daemon.kill()
        daemon.start()
    thread.join()
    for sub in subs:
        assert result_of(spool, sub.id)["status"] == "committed"
    _versions_in_log_order(daemon, [s.id for s in subs], "load")


def test_a_second_daemon_on_the_same_home_refuses_to_start(daemon: DaemonProcess) -> None:
    daemon.start()
    second = DaemonProcess(daemon.home)
    second.start(wait_ready=False)
    assert second.wait_exit() != 0
    assert "another artisync daemon" in second.logs()
    assert daemon.request("GET", "/v1/status")[0] == 200
    wait_for(lambda: daemon.stop() == 0, what="a clean stop")


def test_snapshots_of_a_script_killed_before_logging_are_removed_at_start(
    daemon: DaemonProcess,
) -> None:
    spool = Spool(daemon.config.spool)
    script = subprocess.run(
        [sys.executable, "-c", _DRAFT_AND_DIE, str(daemon.home)], capture_output=True, text=True
    )
    staged = spool.root / "staging" / script.stdout.strip()
    assert staged.is_dir(), script.stderr
    logged = staged_submission(spool, "proj", "kept", {"a": b"1"})
    drop(spool, logged)
    daemon.start()
    assert result_of(spool, logged.id)["status"] == "committed"
    wait_for(lambda: not staged.exists(), what="the abandoned snapshot to go")


# A training script that snapshots a file into a draft artifact, then dies (os._exit
# skips every cleanup) before logging it.
_DRAFT_AND_DIE = """
import os, sys, tempfile, artisync
run = artisync.init(project="proj", home=sys.argv[1])
artifact = artisync.Artifact("draft", "dataset")
with tempfile.NamedTemporaryFile(delete=False) as f:
    f.write(b"weights")
artifact.add_file(f.name)
print(artifact.submission_id, flush=True)
os._exit(0)
"""
