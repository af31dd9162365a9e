"""A full disk where only a rename is needed: claiming and accepting submissions.

A tmpfs never refuses a rename, so these run on a small ext4 (a loop mount in a private
mount namespace): once it is full and ``work/``'s directory blocks are too, a rename
into ``work/`` needs a block that is not there and fails with ``ENOSPC``. The daemon
must leave the submission where it is (``new/``, or with the client, which queues it
there itself) and take it once space is back: committed exactly once, in order.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest

import artisync
from artisync.spool import Spool
from daemon_harness import (
    DaemonProcess,
    check_store_consistent,
    drop,
    result_of,
    staged_submission,
    wait_for,
)
from mount_namespace import Ballast, in_mount_namespace, mount_ext4, pad_directory


def _full_spool(home: Path, tmp_path: Path) -> tuple[Spool, Ballast]:
    """The spool on a small ext4 (not full yet), with a file to probe renames with."""
    spool_root = home / "spool"
    mount_ext4(spool_root, tmp_path / "spool.img", "8M")
    spool = Spool(spool_root)
    (spool.folder("tmp") / "rename-probe").write_bytes(b"{}")
    return spool, Ballast(spool_root / "ballast")


def _fill(spool: Spool, ballast: Ballast) -> list[Path]:
    """Fill the spool's filesystem and work/'s directory blocks; returns the padding.

    Filled twice with a sync between: writeback gives back blocks that delayed
    allocation had reserved, which would otherwise turn up free later.
    """
    ballast.fill()
    os.sync()
    ballast.fill()
    pads = pad_directory(spool.folder("work"))
    os.sync()
    _assert_rename_into_work_fails(spool)
    return pads


def _assert_rename_into_work_fails(spool: Spool) -> None:
    """What the test sets up is real: a rename into work/ gets ENOSPC."""
    with pytest.raises(OSError) as refused:
        os.rename(spool.folder("tmp") / "rename-probe", spool.folder("work") / "rename-probe")
    assert refused.value.errno == errno.ENOSPC


@in_mount_namespace
def test_claims_refused_by_a_full_disk_wait_in_new_then_commit_once_in_order(
    home: Path, tmp_path: Path
) -> None:
    spool, ballast = _full_spool(home, tmp_path)
    subs = [
        staged_submission(spool, "proj", "model", {"m.bin": f"version {i}".encode()})
        for i in range(3)
    ]
    for sub in subs:
        drop(spool, sub)
    queued = sorted(p.name for p in spool.folder("new").iterdir())
    pads = _fill(spool, ballast)
    daemon = DaemonProcess(home)
    daemon.start()
    try:
        wait_for(lambda: "claiming submissions" in daemon.logs(), 20, "the disk_full warning")
        time.sleep(1.5)  # a rescan (every second) later, they still wait, in order
        assert sorted(p.name for p in spool.folder("new").iterdir()) == queued
        assert daemon.proc is not None and daemon.proc.poll() is None
        ballast.release()
        for pad in pads:
            pad.unlink()
        results = [result_of(spool, sub.id) for sub in subs]
        assert [r["status"] for r in results] == ["committed"] * 3
        assert [r["version"] for r in results] == ["v0", "v1", "v2"]
        with daemon.registry() as registry:
            versions = registry.list_versions("proj", "model")
        assert len(versions) == 3
        check_store_consistent(home, versions)
    finally:
        daemon.kill()


@in_mount_namespace
def test_a_submission_refused_at_accept_is_queued_by_the_client_and_commits_once(
    home: Path, tmp_path: Path
) -> None:
    spool, ballast = _full_spool(home, tmp_path)
    daemon = DaemonProcess(home)
    daemon.start()
    try:
        model = tmp_path / "model.bin"
        model.write_bytes(b"weights")
        with artisync.init(project="proj", home=home) as run:
            run.wait_at_finish = False  # the daemon cannot take it until space is freed
            # One block left once full: the client's file fits, work/ cannot grow.
            slack = spool.root / "slack"
            slack.write_bytes(b"\0" * 4096)
            pads = _fill(spool, ballast)
            slack.unlink()
            artifact = artisync.Artifact("model", "model")
            artifact.add_file(model, policy="immutable")
            run.log_artifact(artifact)  # the daemon answers 503; the client queues it
        assert "cannot accept the submission" in daemon.logs(), daemon.logs()[-3000:]
        assert len(list(spool.folder("new").glob("*.json"))) == 1  # queued by the client
        assert not list(spool.folder("work").glob("*.json"))
        ballast.release()
        for pad in pads:
            pad.unlink()
        artifact.wait(timeout=60)
        assert artifact.version == "v0"
        with daemon.registry() as registry:
            versions = registry.list_versions("proj", "model")
        assert [v.version for v in versions] == ["v0"]
        check_store_consistent(home, versions)
    finally:
        daemon.kill()
