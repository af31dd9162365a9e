"""The whole write path through the SDK: training script → socket or spool → daemon.

The daemon is a real subprocess; the SDK runs in the test process or, for the
multi-process ordering test, in separate client processes.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import artisync
from artisync.errors import RejectedError
from daemon_harness import DaemonProcess, check_store_consistent
from file_digests import b64_md5


def test_loop_logged_versions_keep_log_order(daemon: DaemonProcess, tmp_path: Path) -> None:
    artifacts = []
    with artisync.init(project="proj", home=daemon.home) as run:
        for i in range(20):
            path = tmp_path / "model.bin"
            # Largest first: the early versions take longest to snapshot and store.
            path.write_bytes(os.urandom((20 - i) * 200_000))
            artifact = artisync.Artifact("model", "model", metadata={"index": i})
            artifact.add_file(path)  # mutable: the next iteration may overwrite the file
            run.log_artifact(artifact)
            artifacts.append(artifact)
    for i, artifact in enumerate(artifacts):
        artifact.wait(timeout=60)
        assert artifact.version == f"v{i}"
    with daemon.registry() as registry:
        versions = registry.list_versions("proj", "model")
        latest = registry.get_version("proj", "model", "latest")
    assert [v.metadata["index"] for v in versions] == list(range(20))
    assert latest.version == "v19"
    check_store_consistent(daemon.home, versions)


_CLIENT = """
import json, sys, time, artisync
home, proc, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
calls = []
with artisync.init(project="proj", home=home) as run:
    for i in range(count):
        artifact = artisync.Artifact("shared", "dataset", metadata={"proc": proc, "i": i})
        with artifact.new_file("who.txt") as f:
            f.write(f"{proc}-{i}")
        start = time.time_ns()
        run.log_artifact(artifact)
        calls.append({"start": start, "end": time.time_ns(), "proc": proc, "i": i,
                      "artifact": artifact})
    for call in calls:
        call["version"] = call.pop("artifact").wait(timeout=120).version
print(json.dumps(calls))
"""


def test_four_processes_logging_one_artifact_commit_in_the_order_calls_returned(
    daemon: DaemonProcess,
) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CLIENT, str(daemon.home), str(p), "8"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for p in range(4)
    ]
    calls = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        calls.extend(json.loads(out))
    index = {(c["proc"], c["i"]): int(c["version"][1:]) for c in calls}
    assert sorted(index.values()) == list(range(32)), "every call got its own version"
    # Calls that overlapped in time have no order; any call that returned before
    # another started must have the earlier version.
    for a in calls:
        for b in calls:
            if a["end"] < b["start"]:
                assert index[(a["proc"], a["i"])] < index[(b["proc"], b["i"])], (a, b)


def test_wait_works_when_the_daemon_starts_after_logging(home: Path, tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    for name in ("cat.png", "dog.png"):
        (tmp_path / "images" / name).write_bytes(name.encode())
    with artisync.init(project="proj", home=home) as run:
        artifact = artisync.Artifact("images", "dataset")
        artifact.add_dir(tmp_path / "images", name="images", policy="immutable")
        started = time.monotonic()
        run.log_artifact(artifact)
        assert time.monotonic() - started < 1.0, "log_artifact must not wait for a daemon"
    daemon = DaemonProcess(home)
    daemon.start()
    try:
        artifact.wait(timeout=60)
        assert artifact.version == "v0"
        entries = artifact.manifest.entries
        assert sorted(entries) == ["images/cat.png", "images/dog.png"]
        assert entries["images/cat.png"].digest == b64_md5(b"cat.png")
    finally:
        daemon.kill()


def test_identical_content_returns_the_existing_version(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_text("same")
    with artisync.init(project="proj", home=daemon.home) as run:
        first = artisync.Artifact("same", "dataset")
        first.add_file(tmp_path / "a.txt")
        run.log_artifact(first).wait(timeout=60)
        second = artisync.Artifact("same", "dataset")
        second.add_file(tmp_path / "a.txt")
        run.log_artifact(second).wait(timeout=60)
    assert (first.version, second.version) == ("v0", "v0")
    assert first.digest == second.digest


def test_a_rejected_version_raises_the_daemons_reason_in_wait(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"v1")
    with artisync.init(project="proj", home=daemon.home) as run:
        artifact = artisync.Artifact("weights", "model")
        artifact.add_file(path, policy="immutable")
        path.write_bytes(b"changed!")  # before the daemon read it
        run.log_artifact(artifact)
        with pytest.raises(RejectedError, match="changed after it was logged"):
            artifact.wait(timeout=60)
        # The rejection took no version number.
        good = artisync.Artifact("weights", "model")
        good.add_file(path)
        assert run.log_artifact(good).wait(timeout=60).version == "v0"


def test_the_socket_is_group_accessible_only(daemon: DaemonProcess) -> None:
    assert stat.S_IMODE(os.stat(daemon.config.socket).st_mode) == 0o660


def test_cli_logs_a_directory_waits_and_reports_status(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.txt").write_text("x")
    cli = [sys.executable, "-m", "artisync.cli", "--home", str(daemon.home)]
    out = subprocess.run(
        [
            *cli,
            "log",
            str(tmp_path / "d"),
            "--project",
            "p",
            "--type",
            "dataset",
            "--alias",
            "v-good",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert out.startswith("p/d:v0 ")
    status = json.loads(
        subprocess.run(
            [*cli, "status", "--json"], capture_output=True, text=True, check=True, timeout=60
        ).stdout
    )
    assert status["committed"] >= 1 and status["queued"] == 0
    with daemon.registry() as registry:
        assert "v-good" in registry.get_version("p", "d", "latest").aliases
