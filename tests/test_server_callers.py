"""On a shared node whose registry is ``artisync server``, the daemon commits each user's
versions with that user's own key, so the server applies their rights, not the daemon's.

Two real users (made here with ``useradd``; the tests run as root, as CI does) in the
daemon's group, each a user of the server with a key of their own (one in
``ARTISYNC_API_KEY``, one kept by ``artisync login``), log through one daemon running as
root, whose own key is the server's site admin: what the daemon would be allowed with
its own key, a user is refused with theirs. No key is ever in the home in clear.
"""

from __future__ import annotations

import base64
import grp
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

import artisync
import artisync.sdk.api  # imported before a child drops its rights
from artisync.config import Config
from artisync.credentials import save_key
from artisync.daemon.callers import caller_of
from artisync.errors import NotFoundError
from artisync.registry.http import HttpRegistry
from artisync.sdk.client import DaemonClient
from artisync.sealed_keys import KeyOpener, ensure_key_pair, read_public_key, seal
from artisync.server.access.directory import Directory
from artisync.server.access.secret import load_secret
from artisync.spool import ArtifactInfo, FileEntry, SealedKey, Spool, Submission
from conftest import TEST_API_KEY
from daemon_harness import DaemonProcess, drop, result_of, short_home, wait_for
from local_users import GROUP, User, as_user, ensure_user, needs_users
from server_process import Server

pytestmark = needs_users

USERS = ("artisync-t-alice", "artisync-t-bob")
# Their names on the server; each has an entity of that name, private by default.
ON_SERVER = {"artisync-t-alice": "alice", "artisync-t-bob": "bob"}
UNKNOWN_KEY = "ask_" + "u" * 43


@pytest.fixture(scope="module")
def users(tmp_path_factory: pytest.TempPathFactory) -> tuple[User, User]:
    alice, bob = (ensure_user(name) for name in USERS)
    caller_of.cache_clear()
    # A child cannot import what it has not yet (this Python lives in 0700 /root), and
    # cryptography imports its OpenSSL backend at the first key it loads: seal once here.
    opener, _ = ensure_key_pair(tmp_path_factory.mktemp("warm"))
    sealed = seal(_public(opener), "k", submission_id="s", uid=0, server="http://h")
    opener.open(sealed, submission_id="s", uid=0, server="http://h")
    return alice, bob


def _public(opener: KeyOpener) -> X25519PublicKey:
    return X25519PublicKey.from_public_bytes(base64.b64decode(opener.public_text()))


@dataclass
class Node:
    """A server, and a node whose daemon (root, site admin on the server) commits to it."""

    server: Server
    daemon: DaemonProcess
    spool: Spool
    keys: dict[str, str]  # local user name: their key on the server

    @property
    def home(self) -> Path:
        return self.daemon.home

    def files(self, user: User) -> Path:
        return self.home / "users" / user.name

    def versions(self, project: str, entity: str, name: str) -> list[str]:
        """What the server holds, as its site admin sees it."""
        with HttpRegistry(self.server.url, api_key=TEST_API_KEY) as admin:
            try:
                return [v.version for v in admin.list_versions(project, name, entity)]
            except NotFoundError:
                return []


@pytest.fixture
def node(
    users: tuple[User, User], postgres_dsn: str, start_server: Callable[..., Server]
) -> Iterator[Node]:
    server = start_server(postgres_dsn)
    server.wait_until("/readyz", 200)
    directory = Directory(postgres_dsn, load_secret(server.log_path.parent / "server-secret"))
    keys = {}
    for user in users:
        directory.create_user(ON_SERVER[user.name])
        keys[user.name] = directory.create_key(ON_SERVER[user.name])
    for home in short_home():
        os.chown(home, 0, grp.getgrnam(GROUP).gr_gid)
        os.chmod(home, 0o2770)
        (home / "config.toml").write_text(
            f'registry = "{server.url}"\nstore = "file://{home / "store"}"\nstore_shared = true\n'
        )
        (home / "users").mkdir(mode=0o755)
        for user in users:
            (home / "users" / user.name).mkdir(mode=0o700)
            os.chown(home / "users" / user.name, user.uid, user.gid)
        daemon = DaemonProcess(home)
        old = os.umask(0o007)  # the unit's UMask: the spool stays the group's
        try:
            daemon.start()  # with the tests' key: the server's site admin
        finally:
            os.umask(old)
        try:
            yield Node(server, daemon, Spool(daemon.config.spool), keys)
        finally:
            daemon.stop()


def _with_key(node: Node, user: User, how: str, key: str | None = None) -> None:
    """In a user's child: where their key comes from ("env", "login" or "none")."""
    for variable in ("ARTISYNC_API_KEY", "WANDB_API_KEY"):
        os.environ.pop(variable, None)
    os.environ["XDG_CONFIG_HOME"] = str(node.files(user) / f".config-{how}")
    key = node.keys[user.name] if key is None else key
    if how == "env":
        os.environ["ARTISYNC_API_KEY"] = key
    elif how == "login":
        save_key(node.server.url, key)


def _write_own(node: Node, user: User, name: str, data: bytes) -> Path:
    path = node.files(user) / name

    def write() -> None:
        path.write_bytes(data)
        os.chmod(path, 0o600)

    as_user(user, write)
    return path


def _submission(entity: str, project: str, path: Path, name: str = "data") -> Submission:
    st = path.stat()
    return Submission(
        id=os.urandom(16).hex(),
        created_ns=1,
        project=project,
        entity=entity,
        artifact=ArtifactInfo(name=name, type="dataset"),
        entries=[FileEntry(path.name, str(path), st.st_size, st.st_mtime_ns, st.st_ino)],
    )


def _hand_over(
    node: Node, user: User, how: str, subs: list[Submission], key: str | None = None
) -> None:
    """``user`` hands ``subs`` to the daemon as the SDK does (sealing their key)."""

    def work() -> None:
        _with_key(node, user, how, key)
        client = DaemonClient(Config.load(node.home))
        for sub in subs:
            client.hand_over(sub)

    as_user(user, work)


def _no_key_in_clear(node: Node) -> None:
    """No file under the home (spool, receipts, rejections, journals, the daemon's log
    and keys) and not the server's log holds any user's key. ``users/`` stands for the
    users' own home directories, where ``artisync login`` keeps a key (0600) on purpose."""
    keys = [key.encode() for key in node.keys.values()]
    files = [
        p
        for p in node.home.rglob("*")
        if p.is_file() and not p.is_symlink() and p.parts[len(node.home.parts)] != "users"
    ]
    files.append(node.server.log_path)
    assert any("spool" in p.parts for p in files)
    for path in files:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue  # the daemon moved it on (work/ to done/) since the listing
        for key in keys:
            assert key not in data, f"{path} holds an API key in clear"


def test_each_user_commits_under_their_own_server_identity(
    node: Node, users: tuple[User, User]
) -> None:
    alice, bob = users
    weights = _write_own(node, alice, "weights.bin", b"alice's weights")

    def alice_logs() -> str:
        _with_key(node, alice, "env")
        with artisync.init(project="private", entity="alice", home=node.home) as run:
            artifact = artisync.Artifact("model", "model")
            artifact.add_file(str(weights))
            run.log_artifact(artifact)
            return str(artifact.wait(timeout=60).version)

    assert as_user(alice, alice_logs) == "v0"
    with HttpRegistry(node.server.url, api_key=node.keys[alice.name]) as as_alice:
        assert as_alice.get_version("private", "model", "latest", "alice").version == "v0"
    with (
        HttpRegistry(node.server.url, api_key=node.keys[bob.name]) as as_bob,
        pytest.raises(NotFoundError),
    ):
        as_bob.get_version("private", "model", "latest", "alice")
    _no_key_in_clear(node)


def test_a_user_cannot_commit_into_another_users_private_project(
    node: Node, users: tuple[User, User]
) -> None:
    _, bob = users
    mine = _write_own(node, bob, "notes.txt", b"bob's notes")
    sub = _submission("alice", "private", mine)

    _hand_over(node, bob, "login", [sub])

    result = result_of(node.spool, sub.id)
    assert result["status"] == "rejected", result
    assert "artisync-t-bob may not write to alice/private (or may not see it)" in result["reason"]
    assert node.versions("private", "alice", "data") == []
    _no_key_in_clear(node)


def test_a_user_cannot_get_another_users_file_into_a_version(
    node: Node, users: tuple[User, User]
) -> None:
    alice, bob = users
    theirs = _write_own(node, alice, "private.txt", b"alice's private notes")
    sub = _submission("bob", "mine", theirs)

    _hand_over(node, bob, "env", [sub])

    result = result_of(node.spool, sub.id)
    assert result["status"] == "rejected", result
    assert "Permission denied" in result["reason"], result
    assert node.versions("mine", "bob", "data") == []


def test_a_sealed_key_copied_into_another_users_submission_does_not_open(
    node: Node, users: tuple[User, User]
) -> None:
    alice, bob = users
    mine = _write_own(node, bob, "notes.txt", b"bob's notes")
    sub = _submission("alice", "private", mine)

    def alice_seals() -> str:
        # What alice's SDK puts in her submission file, which her group may read.
        public = read_public_key(node.home)
        assert public is not None
        return seal(
            public,
            node.keys[alice.name],
            submission_id=sub.id,
            uid=alice.uid,
            server=node.server.url,
        )

    sub.sealed_key = SealedKey(node.server.url, as_user(alice, alice_seals))
    as_user(bob, lambda: drop(node.spool, sub) and None)

    result = result_of(node.spool, sub.id)
    assert result["status"] == "rejected", result
    assert "artisync-t-bob's API key in submission" in result["reason"]
    assert "does not open" in result["reason"]
    assert node.versions("private", "alice", "data") == []


def test_another_users_submission_id_gives_no_answer_of_theirs(
    node: Node, users: tuple[User, User]
) -> None:
    alice, bob = users
    hers = _submission("alice", "private", _write_own(node, alice, "a.bin", b"alice's"))
    _hand_over(node, alice, "env", [hers])
    assert result_of(node.spool, hers.id)["status"] == "committed"
    # Her submission id is in files her group reads; bob's version takes it.
    mine = _submission("bob", "mine", _write_own(node, bob, "b.bin", b"bob's"))
    mine.id = hers.id

    _hand_over(node, bob, "env", [mine])

    rejection = wait_for(lambda: _rejection(node, hers.id), what="bob's rejection")
    assert "a submission id is used once" in rejection["reason"], rejection
    assert "private" not in json.dumps(rejection)
    assert node.versions("mine", "bob", "data") == []


def _rejection(node: Node, sub_id: str) -> dict[str, Any] | None:
    for path in node.spool.folder("failed").glob(f"*-{sub_id}.error.json"):
        return dict(json.loads(path.read_bytes()))
    return None


def test_another_users_submission_without_a_key_is_refused_saying_how_to_give_one(
    node: Node, users: tuple[User, User]
) -> None:
    _, bob = users
    mine = _write_own(node, bob, "notes.txt", b"bob's notes")
    sub = _submission("bob", "mine", mine)

    _hand_over(node, bob, "none", [sub])

    result = result_of(node.spool, sub.id)
    assert result["status"] == "rejected", result
    assert "carries no API key" in result["reason"]
    assert "run `artisync login` as artisync-t-bob on this node" in result["reason"]


def test_users_logging_together_do_not_stall_each_other_and_a_refused_key_is_rejected(
    node: Node, users: tuple[User, User]
) -> None:
    alice, bob = users
    alice_files = [_write_own(node, alice, f"{i}.bin", f"alice {i}".encode()) for i in range(4)]
    bob_files = [_write_own(node, bob, f"{i}.bin", f"bob {i}".encode()) for i in range(4)]
    alice_subs = [_submission("alice", "private", path, "shards") for path in alice_files]
    refused = [_submission("bob", "mine", path, "shards") for path in bob_files]

    _hand_over(node, alice, "env", alice_subs)
    _hand_over(node, bob, "env", refused, key=UNKNOWN_KEY)

    # Both users' submissions are in the daemon together; each ends on its own.
    results = [result_of(node.spool, sub.id) for sub in alice_subs + refused]
    assert [r["status"] for r in results[:4]] == ["committed"] * 4, results[:4]
    assert [r["version"] for r in results[:4]] == ["v0", "v1", "v2", "v3"]
    for result in results[4:]:
        assert result["status"] == "rejected", result
        assert "refused the API key of artisync-t-bob" in result["reason"], result
        assert "run `artisync login` as artisync-t-bob" in result["reason"]
    assert node.versions("mine", "bob", "shards") == []
    # With his own key bob's next version goes through: nothing was left stuck.
    again = _submission("bob", "mine", bob_files[0], "shards")
    _hand_over(node, bob, "login", [again])
    assert result_of(node.spool, again.id)["version"] == "v0"
    _no_key_in_clear(node)
