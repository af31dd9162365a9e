"""The daemon reads each submission with its caller's rights, never its own.

Two real users in the daemon's group (made here with ``useradd``; the tests run as
root, as CI does) submit through the spool and the socket of a daemon running as root:
each logs and commits their own files, and neither gets another's file, nor one only
the daemon may read, into a version. Their snapshots are checked, never trusted: a
digest that is not the content's, or a link where a snapshot belongs, is a rejection.
"""

from __future__ import annotations

import base64
import grp
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from artisync import _core
from artisync.daemon.callers import caller_of, cannot_act_as
from artisync.sdk.client import UnixHTTPConnection
from artisync.spool import ArtifactInfo, DirEntry, FileEntry, ReferenceEntry, Spool, Submission
from daemon_harness import DaemonProcess, drop, result_of, staged_submission
from local_users import GROUP, User, as_user, ensure_user, needs_users

pytestmark = needs_users

USERS = ("artisync-t-alice", "artisync-t-bob")


@pytest.fixture(scope="module")
def users() -> Iterator[tuple[User, User]]:
    alice, bob = (ensure_user(name) for name in USERS)
    caller_of.cache_clear()
    yield alice, bob


@dataclass
class Node:
    """A daemon (root) whose home its group may write, its store, and a directory for
    the users' files: each user's home below it is theirs alone (0700)."""

    daemon: DaemonProcess
    spool: Spool
    files: Path
    s3: Any = None  # the moto helper, for an S3 store
    bucket: str = ""

    def blob(self, md5_hex: str) -> bytes | None:
        """The stored content with this MD5, or None."""
        key = f"blobs/md5/{md5_hex[:2]}/{md5_hex}"
        if self.s3 is None:
            path = self.daemon.home / "store" / key
            return path.read_bytes() if path.exists() else None
        try:
            found = self.s3.client.get_object(Bucket=self.bucket, Key=f"n/{key}")
        except self.s3.client.exceptions.NoSuchKey:
            return None
        return bytes(found["Body"].read())

    def manifest(self, key: str) -> dict[str, Any]:
        if self.s3 is None:
            return dict(json.loads((self.daemon.home / "store" / key).read_bytes()))
        found = self.s3.client.get_object(Bucket=self.bucket, Key=f"n/{key}")
        return dict(json.loads(found["Body"].read()))


@pytest.fixture(params=["local", "s3"])
def node(request: pytest.FixtureRequest, users: tuple[User, User], home: Path) -> Iterator[Node]:
    os.chown(home, 0, grp.getgrnam(GROUP).gr_gid)
    os.chmod(home, 0o2770)
    files = home / "users"
    files.mkdir(mode=0o755)
    for user in users:
        mine = files / user.name
        mine.mkdir(mode=0o700)
        os.chown(mine, user.uid, user.gid)
    # What only the daemon's user may read: its credentials, in a 0700 directory.
    private = home / ".aws"
    private.mkdir(mode=0o700)
    (private / "credentials").write_text("[default]\naws_secret_access_key=hunter2\n")
    os.chmod(private / "credentials", 0o600)
    daemon = DaemonProcess(home)
    s3 = request.getfixturevalue("s3") if request.param == "s3" else None
    bucket = "" if s3 is None else s3.bucket()
    old = os.umask(0o007)  # the unit's UMask: the spool stays the group's
    try:
        daemon.start(store=None if s3 is None else f"s3://{bucket}/n")
        node = Node(daemon, Spool(daemon.config.spool), files, s3, bucket)
    finally:
        os.umask(old)
    try:
        yield node
    finally:
        daemon.stop()


local_only = pytest.mark.parametrize("node", ["local"], indirect=True)


def _write_own(user: User, files: Path, name: str, data: bytes) -> Path:
    path = files / user.name / name

    def write() -> None:
        path.write_bytes(data)
        os.chmod(path, 0o600)

    as_user(user, write)
    return path


def _file_entry(path: Path, name: str) -> FileEntry:
    st = path.stat()
    return FileEntry(name, str(path), st.st_size, st.st_mtime_ns, st.st_ino)


def _submission(entries: list[Any], name: str = "data") -> Submission:
    return Submission(
        id=os.urandom(16).hex(),
        created_ns=1,
        project="shared",
        artifact=ArtifactInfo(name=name, type="dataset"),
        entries=entries,
    )


def _submit_as(user: User, spool: Spool, sub: Submission) -> None:
    as_user(user, lambda: drop(spool, sub) and None)


def _committed_bytes(node: Node, name: str) -> dict[str, bytes | None]:
    registry = node.daemon.registry()
    try:
        version = registry.get_version("shared", name, "latest")
    finally:
        registry.close()
    manifest = node.manifest(version.manifest_key)
    return {
        path: node.blob(base64.b64decode(entry["digest"]).hex())
        for path, entry in manifest["contents"].items()
    }


def test_each_user_commits_their_own_private_files(node: Node, users: Any) -> None:
    spool, files = node.spool, node.files
    for user in users:
        own = _write_own(user, files, "weights.bin", f"{user.name}'s weights".encode())
        sub = _submission([_file_entry(own, "weights.bin")], name=f"model-{user.uid}")
        _submit_as(user, spool, sub)
        result = result_of(spool, sub.id)
        assert result["status"] == "committed", result
        assert _committed_bytes(node, f"model-{user.uid}") == {
            "weights.bin": f"{user.name}'s weights".encode()
        }
    # A remote store uploaded copies the daemon took in; they are gone with the work.
    assert not list((spool.root / "ingest").glob("*"))


def test_a_file_only_the_daemon_may_read_is_refused_to_a_caller(node: Node, users: Any) -> None:
    daemon, spool = node.daemon, node.spool
    alice, _ = users
    secret = daemon.home / ".aws" / "credentials"
    sub = _submission([_file_entry(secret, "credentials")])

    _submit_as(alice, spool, sub)

    result = result_of(spool, sub.id)
    assert result["status"] == "rejected"
    assert str(secret) in result["reason"] and "Permission denied" in result["reason"]
    assert node.blob(hashlib.md5(secret.read_bytes()).hexdigest()) is None


@local_only
def test_another_users_file_directory_and_reference_are_refused(node: Node, users: Any) -> None:
    daemon, spool, files = node.daemon, node.spool, node.files
    alice, bob = users
    theirs = _write_own(bob, files, "private.txt", b"bob's private notes")
    attempts = [
        [_file_entry(theirs, "private.txt")],
        [DirEntry("bob", str(theirs.parent))],
        [ReferenceEntry("ref", theirs.as_uri())],
    ]
    for entries in attempts:
        sub = _submission(entries)
        _submit_as(alice, spool, sub)
        result = result_of(spool, sub.id)
        assert result["status"] == "rejected", result
        assert "Permission denied" in result["reason"], result
    assert not _blob_with(daemon, b"bob's private notes")


@local_only
def test_a_submission_file_the_group_may_write_is_refused(node: Node, users: Any) -> None:
    spool = node.spool
    alice, _ = users
    sub = _submission([])

    def submit_writable() -> None:
        path = spool.write_tmp(sub)
        os.chmod(path, 0o660)  # as submissions were written before: anyone could change it
        spool.publish(path)

    as_user(alice, submit_writable)

    result = result_of(spool, sub.id)
    assert result["status"] == "rejected", result
    assert "may be written by others than its owner (mode 660)" in result["reason"]


def test_a_snapshot_whose_digest_is_not_its_content_is_refused(node: Node, users: Any) -> None:
    spool = node.spool
    alice, _ = users
    victim = b"the victim's real data!"
    forged = b"poison of the same size!"[: len(victim)]

    def log_forged() -> str:
        sub = staged_submission(spool, "shared", "data", {"data.bin": forged})
        sub.entries[0].digest = base64.b64encode(hashlib.md5(victim).digest()).decode()
        drop(spool, sub)
        return sub.id

    sub_id = as_user(alice, log_forged)

    result = result_of(spool, sub_id)
    assert result["status"] == "rejected"
    assert "does not match the digest it was logged with" in result["reason"]
    assert node.blob(hashlib.md5(victim).hexdigest()) is None


@local_only
def test_a_link_where_a_snapshot_belongs_is_refused(node: Node, users: Any) -> None:
    daemon, spool = node.daemon, node.spool
    alice, _ = users
    secret = daemon.home / ".aws" / "credentials"

    def log_link() -> str:
        sub = staged_submission(spool, "shared", "data", {"c": secret.read_bytes()})
        snapshot = spool.root / sub.entries[0].staged
        snapshot.unlink()
        snapshot.symlink_to(secret)
        drop(spool, sub)
        return sub.id

    # Alice cannot read the secret to snapshot it: the test writes her bytes for her.
    secret_bytes = secret.read_bytes()
    os.chmod(secret, 0o644)
    os.chmod(secret.parent, 0o755)
    try:
        sub_id = as_user(alice, log_link)
    finally:
        os.chmod(secret.parent, 0o700)
        os.chmod(secret, 0o600)

    result = result_of(spool, sub_id)
    assert result["status"] == "rejected"
    assert "symbolic link" in result["reason"] or "Permission denied" in result["reason"]
    assert not _blob_with(daemon, secret_bytes)


@local_only
def test_another_users_snapshot_is_copied_into_the_store_never_taken(
    node: Node, users: Any
) -> None:
    daemon, spool = node.daemon, node.spool
    alice, _ = users

    def log() -> str:
        sub = staged_submission(spool, "shared", "snap", {"x.bin": b"alice's snapshot"})
        # Through the socket, as the SDK does while the daemon is up.
        tmp = spool.write_tmp(sub)
        conn = UnixHTTPConnection(daemon.config.socket, timeout=30)
        conn.request("POST", "/v1/submissions", body=f'{{"tmp": "{tmp.name}"}}')
        assert conn.getresponse().status == 202
        return sub.id

    sub_id = as_user(alice, log)
    assert result_of(spool, sub_id)["status"] == "committed"
    blob = _blob_with(daemon, b"alice's snapshot")
    assert blob is not None
    assert blob.stat().st_uid == os.geteuid(), "the store's copy is the daemon's, not hers"
    assert blob.stat().st_nlink == 1


def test_a_daemon_without_the_capabilities_reads_for_its_own_user_only() -> None:
    nobody = caller_of(65534)
    reasons: list[str | None] = []
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65533)  # neither root nor the caller
            why = cannot_act_as(nobody) or ""
            os.write(write, why.encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        reasons.append(pipe.read().decode() or None)
    os.waitpid(pid, 0)
    assert reasons[0] is not None and "CAP_SETUID" in reasons[0]
    assert cannot_act_as(nobody) is None, "root may read as anyone"
    assert _core.can_act_as((65534, 65534, []))


def _blob_with(daemon: DaemonProcess, data: bytes) -> Path | None:
    md5_hex = hashlib.md5(data).hexdigest()
    blob = daemon.home / "store" / "blobs" / "md5" / md5_hex[:2] / md5_hex
    return blob if blob.exists() else None


@local_only
def test_members_write_only_where_clients_write_and_never_touch_each_others_files(
    node: Node, users: Any
) -> None:
    alice, bob = users
    spool = node.spool
    sub = _submission([])
    as_user(alice, lambda: spool.write_tmp(sub) and None)
    theirs = spool.root / "tmp" / f"{sub.id}.json"

    def meddle() -> None:
        with pytest.raises(PermissionError):
            theirs.write_text("{}")  # 0640: the group reads a submission, never changes it
        with pytest.raises(PermissionError):
            theirs.unlink()  # sticky: only its owner (or the daemon) removes it
        with pytest.raises(PermissionError):
            os.rename(theirs, spool.root / "tmp" / "mine.json")
        for folder in ("done", "failed", "work"):
            with pytest.raises(PermissionError):  # no forged receipts
                (spool.root / folder / f"x-{sub.id}.json").write_text("{}")
        (spool.root / "tmp" / "bobs.json").write_text("{}")  # his own: fine

    as_user(bob, meddle)
    modes = {f: (spool.root / f).stat().st_mode & 0o7777 for f in ("tmp", "new", "done")}
    assert modes == {"tmp": 0o3770, "new": 0o3770, "done": 0o2750}
