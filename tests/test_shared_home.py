"""A shared node's home is the daemon's; only its spool is the group's; caches are each
user's own, and a full one never fails a download.

A real user made here with ``useradd`` (the tests run as root, as CI does), in the
daemon's group, works in a forked child with its own credentials (never exec'd: /root
is 0700). The home is laid out as the system unit makes it: owned by the daemon's user,
group-readable, 0750.
"""

from __future__ import annotations

import grp
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import artisync
import artisync.crashpoints
import artisync.download
import artisync.sdk.api  # imported before a child drops its rights (/root is 0700)
import artisync.store.s3
from artisync.registry import SqliteRegistry
from artisync.spool import Spool
from daemon_harness import DaemonProcess, drop, result_of, short_home, staged_submission
from local_users import GROUP, User, as_user, ensure_user, needs_users
from mount_namespace import Ballast, in_mount_namespace, mount_tmpfs

USER = "artisync-t-erin"
WEIGHTS = b"weights\n" * 1000


@pytest.fixture(scope="module")
def member() -> User:
    """A user in the daemon's group, with no rights of the daemon's own."""
    return ensure_user(USER)


@dataclass
class Node:
    daemon: DaemonProcess
    files: Path  # the member's own directory


def _node(home: Path, member: User, store: str | None) -> Node:
    """The system unit's layout: the home the daemon's (root's), its group may read. The
    setgid bit gives what the daemon makes the group (the unit's daemon has it as its
    primary group; root here has not)."""
    os.chown(home, 0, grp.getgrnam(GROUP).gr_gid)
    os.chmod(home, 0o2750)
    files = home / "users" / member.name
    files.mkdir(parents=True, mode=0o700)
    os.chown(files, member.uid, member.gid)
    os.chmod(home / "users", 0o755)
    if store is not None:  # the SDK of every user reads it from here, as the daemon does
        (home / "config.toml").write_text(f'store = "{store}"\n')
    else:
        (home / "config.toml").write_text("")
    daemon = DaemonProcess(home)
    old = os.umask(0o027)  # the unit's UMask: the store the group reads, never writes
    try:
        daemon.start()
    finally:
        os.umask(old)
    return Node(daemon, files)


@pytest.fixture
def node(member: User) -> Iterator[Node]:
    for home in short_home():
        node = _node(home, member, None)
        try:
            yield node
        finally:
            node.daemon.stop()


@pytest.fixture
def s3_node(member: User, s3: Any) -> Iterator[Node]:
    bucket = s3.bucket()
    for home in short_home():
        node = _node(home, member, f"s3://{bucket}/n")
        try:
            yield node
        finally:
            node.daemon.stop()


def _readable_botocore_data(into: Path) -> Path:
    """botocore's data files for S3 where the member may read them (``AWS_DATA_PATH``):
    this Python's own are under /root, 0700."""
    import botocore

    data = Path(botocore.__file__).parent / "data"
    target = into / "botocore-data"
    shutil.copytree(data / "s3", target / "s3")
    for item in data.iterdir():
        if item.is_file():
            shutil.copy(item, target / item.name)
    for path in [target, *target.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target


def _commit(daemon: DaemonProcess, name: str, files: dict[str, bytes]) -> None:
    spool = Spool(daemon.config.spool)
    sub = staged_submission(spool, "shared", name, files)
    drop(spool, sub)
    assert result_of(spool, sub.id)["status"] == "committed", daemon.logs()


@needs_users
def test_a_member_cannot_replace_what_sits_in_the_daemons_home(node: Node, member: User) -> None:
    home = node.daemon.home
    _commit(node.daemon, "base", {"a.txt": b"a\n"})
    assert stat.S_IMODE(home.stat().st_mode) == 0o2750
    spool = node.daemon.config.spool

    def try_to_replace() -> None:
        for name in ("registry.db", "config.toml", "store", "daemon.lock", "spool"):
            with pytest.raises(PermissionError):
                os.rename(home / name, home / f"{name}.old")
            with pytest.raises(PermissionError):
                if (home / name).is_dir():
                    shutil.rmtree(home / name)
                else:
                    os.unlink(home / name)
        with pytest.raises(PermissionError):
            os.symlink("/tmp", home / "store.new")
        for folder in ("done", "new", "work"):  # the spool's own folders stay put too
            with pytest.raises(PermissionError):
                os.rename(spool / folder, spool / f"{folder}.old")
        # What is the group's: the spool's client folders. A submission of its own.
        mine = staged_submission(Spool(spool), "shared", "members", {"m.txt": b"mine\n"})
        drop(Spool(spool), mine)
        (node.files / "id").write_text(mine.id)

    as_user(member, try_to_replace)
    sub_id = (node.files / "id").read_text()
    assert result_of(Spool(spool), sub_id)["status"] == "committed", node.daemon.logs()

    # The daemon stopped, the group still reads the registry it cannot write beside.
    assert node.daemon.stop() == 0

    def read_versions() -> None:
        with SqliteRegistry(home / "registry.db", read_only=True) as registry:
            assert registry.get_version("shared", "members", "latest").version == "v0"

    as_user(member, read_versions)
    assert not Path(f"{home}/registry.db-wal").exists()


@needs_users
def test_each_user_downloads_into_a_cache_of_their_own(s3_node: Node, member: User) -> None:
    home, files = s3_node.daemon.home, s3_node.files
    _commit(s3_node.daemon, "model", {"w/a.bin": WEIGHTS})
    caches = files / "xdg-cache"
    data = _readable_botocore_data(home)

    def download() -> None:
        os.environ["XDG_CACHE_HOME"] = str(caches)
        os.environ["AWS_DATA_PATH"] = str(data)
        artifact = artisync.Api(home=home).artifact("shared/model:latest")
        artifact.download(root=str(files / "out"))

    as_user(member, download)

    assert (files / "out" / "w" / "a.bin").read_bytes() == WEIGHTS
    cache = caches / "artisync"
    blobs = [p for p in (cache / "blobs").rglob("*") if p.is_file()]
    assert [p.read_bytes() for p in blobs] == [WEIGHTS]
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert cache.stat().st_uid == member.uid
    assert not (home / "cache").exists()


@in_mount_namespace
def test_a_full_cache_filesystem_downloads_straight_to_the_destination(
    tmp_path: Path, s3: Any
) -> None:
    bucket = s3.bucket()
    for home in short_home():
        daemon = DaemonProcess(home)
        (home / "config.toml").write_text(f'store = "s3://{bucket}/n"\n')
        daemon.start()
        try:
            _commit(daemon, "model", {"w/a.bin": WEIGHTS, "w/b.bin": b"b\n"})
        finally:
            daemon.stop()
        mount_tmpfs(home / "cache", "256k")
        ballast = Ballast(home / "cache" / "ballast")
        ballast.fill()
        out = tmp_path / "out"
        command = [sys.executable, "-m", "artisync.cli", "--home", str(home)]
        done = subprocess.run(
            [*command, "get", "shared/model:v0", "-o", str(out)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert (out / "w" / "a.bin").read_bytes() == WEIGHTS
        assert (out / "w" / "b.bin").read_bytes() == b"b\n"
        warnings = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(warnings) == 1, done.stderr
        assert "download cache" in warnings[0] and str(home / "cache") in warnings[0]
        leftovers = [p.name for p in out.rglob(".artisync-fetching*")]
        assert leftovers == []
        ballast.release()
