"""Disk full on the spool's filesystem: a clear error to the training script, nothing
half-written left or committed, and a daemon that waits for space and then commits.

Each test mounts a small tmpfs (in a private mount namespace, see mount_namespace.py)
and puts the spool and the store on it through the home's ``config.toml``; the
registry stays on the home's own disk. :class:`Ballast` fills the tmpfs to the last
page.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import artisync
from artisync.errors import DiskFullError
from artisync.registry import SqliteRegistry
from artisync.spool import Spool
from consistency import Logged, check_consistency
from daemon_harness import DaemonProcess, wait_for
from mount_namespace import Ballast, in_mount_namespace, inside, mount_tmpfs

ADVICE = "disk full: free space and retry"


class Node:
    """A home whose spool and store are on a small tmpfs, with its daemon."""

    def __init__(self, home: Path, size: str) -> None:
        self.small = home / "small"
        mount_tmpfs(self.small, size)
        (home / "config.toml").write_text(
            f'spool = "{self.small / "spool"}"\nstore = "{self.small / "store"}"\n'
        )
        self.daemon = DaemonProcess(home)
        self.spool = Spool(self.daemon.config.spool)
        self.ballast = Ballast(self.small / "ballast")
        self.run = artisync.init(project="full", home=home)

    def staged_files(self) -> list[Path]:
        """Every snapshot in the staging area (owner files aside)."""
        return [p for p in self.spool.folder("staging").rglob("*") if p.is_file()
                and not p.name.endswith(".owner")]  # fmt: skip

    def status(self, sub_id: str) -> str:
        return str(self.daemon.request("GET", f"/v1/submissions/{sub_id}?wait=0")[1]["status"])


@pytest.fixture
def node(home: Path) -> Iterator[Node | None]:
    """The node, in the inner run of an ``@in_mount_namespace`` test (else None)."""
    if not inside():
        yield None
        return
    made = Node(home, "8m")
    yield made
    made.run.finish()
    made.daemon.kill()


def _file(directory: Path, name: str, size: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(os.urandom(size))
    return path


def _assert_clear(error: DiskFullError, node: Node, under: Path) -> None:
    message = str(error)
    assert error.errno == errno.ENOSPC and isinstance(error, OSError)
    assert Path(error.filename).is_relative_to(under), error.filename
    assert (error.mount_point, error.fstype) == (str(node.small), "tmpfs"), message
    assert error.filename in message and f"tmpfs filesystem at {node.small}" in message
    assert message.endswith(ADVICE), message


@in_mount_namespace
def test_a_snapshot_that_does_not_fit_is_a_clear_error_and_leaves_nothing(
    node: Node, tmp_path: Path
) -> None:
    node.daemon.start()
    big = _file(tmp_path, "model.bin", 12 << 20)
    artifact = artisync.Artifact("model", "model", metadata={"index": 0})
    with pytest.raises(DiskFullError) as caught:
        artifact.add_file(big)
    _assert_clear(caught.value, node, node.spool.folder("staging"))
    assert str(big) in str(caught.value)
    for i in range(4):
        _file(tmp_path / "shards", f"shard-{i}", 3 << 20)
    with pytest.raises(DiskFullError) as caught:
        artifact.add_dir(tmp_path / "shards")
    _assert_clear(caught.value, node, node.spool.folder("staging"))
    with pytest.raises(DiskFullError) as caught, artifact.new_file("table.csv", "wb") as f:
        for _ in range(12):
            f.write(os.urandom(1 << 20))
            f.flush()
    _assert_clear(caught.value, node, node.spool.folder("staging"))
    assert "'table.csv'" in str(caught.value)
    assert not node.staged_files(), "a partial snapshot was left behind"
    assert not artifact.manifest.entries, "a failed snapshot became an entry"

    artifact.add_file(_file(tmp_path, "small.bin", 1000))  # the space is still there
    node.run.log_artifact(artifact)
    assert artifact.wait(timeout=60).version == "v0"
    logged = [Logged(artifact.submission_id, "full", "model", 0)]
    check_consistency(node.daemon.home, logged, tmp_path / "downloads")


@in_mount_namespace
def test_a_submission_that_does_not_fit_is_not_published_and_logs_once_there_is_room(
    node: Node, tmp_path: Path
) -> None:
    node.daemon.start()
    artifact = artisync.Artifact("model", "model", metadata={"index": 0})
    artifact.add_file(_file(tmp_path, "weights.bin", 50_000))
    node.ballast.fill()
    with pytest.raises(DiskFullError) as caught:
        node.run.log_artifact(artifact)
    _assert_clear(caught.value, node, node.spool.folder("tmp"))
    assert caught.value.filename.endswith(f"{artifact.submission_id}.json")
    assert not list(node.spool.folder("tmp").iterdir()), "half a submission in tmp/"
    assert not list(node.spool.folder("new").iterdir()), "a submission was published"

    node.ballast.release()
    node.run.log_artifact(artifact)  # still a draft: the failed hand-over gave it back
    assert artifact.wait(timeout=60).version == "v0"
    logged = [Logged(artifact.submission_id, "full", "model", 0)]
    check_consistency(node.daemon.home, logged, tmp_path / "downloads")


@in_mount_namespace
def test_the_daemon_waits_for_space_then_commits_once_and_rejects_with_the_real_reason(
    node: Node, tmp_path: Path
) -> None:
    node.daemon.start()
    first = artisync.Artifact("model", "model", metadata={"index": 0})
    first.add_file(_file(tmp_path, "v0.bin", 10_000))
    node.run.log_artifact(first)
    first.wait(timeout=60)
    node.daemon.stop()  # the next two wait in the spool, written while there is room
    good = artisync.Artifact("model", "model", metadata={"index": 1})
    good.add_file(_file(tmp_path, "v1.bin", 1 << 20))
    node.run.log_artifact(good)
    doomed = _file(tmp_path, "gone.bin", 100)
    bad = artisync.Artifact("other", "dataset")
    bad.add_file(doomed, policy="immutable")
    node.run.log_artifact(bad)
    doomed.unlink()  # rejected at expand; its rejection is a write too

    node.ballast.fill()
    node.daemon.start()
    for artifact in (good, bad):
        wait_for(
            lambda a=artifact: node.status(a.submission_id) == "retrying",
            what=f"{artifact.name} to wait for space",
        )
    node.ballast.release()
    assert good.wait(timeout=60).version == "v1"
    with pytest.raises(artisync.errors.RejectedError, match=r"gone\.bin"):
        bad.wait(timeout=60)
    logs = node.daemon.logs()
    assert logs.count("disk_full") == 2, "one warning per waiting submission:\n" + logs
    logged = [
        Logged(first.submission_id, "full", "model", 0),
        Logged(good.submission_id, "full", "model", 1),
        Logged(bad.submission_id, "full", "other", bad=True),
    ]
    outcome = check_consistency(node.daemon.home, logged, tmp_path / "downloads")
    assert "disk" not in outcome.reasons[bad.submission_id]


@in_mount_namespace
def test_a_receipt_that_does_not_fit_waits_and_is_never_turned_into_a_rejection(
    node: Node, tmp_path: Path
) -> None:
    done = node.spool.folder("done")
    mount_tmpfs(done, "16k")  # receipts on a filesystem of their own
    receipts = Ballast(done / "ballast")
    receipts.fill()
    node.daemon.start()
    artifact = artisync.Artifact("model", "model", metadata={"index": 0})
    artifact.add_file(_file(tmp_path, "weights.bin", 10_000))
    node.run.log_artifact(artifact)
    wait_for(lambda: node.status(artifact.submission_id) == "retrying", what="retrying")
    with SqliteRegistry(node.daemon.config.registry, read_only=True) as registry:
        assert registry.submission_result(artifact.submission_id) is not None, "committed"
    assert not list(done.glob("*-*.json")), "no receipt without room"

    receipts.release()
    assert artifact.wait(timeout=60).version == "v0"
    logged = [Logged(artifact.submission_id, "full", "model", 0)]
    check_consistency(node.daemon.home, logged, tmp_path / "downloads")
