"""Nodes without bucket credentials: the server's presigned grants, and what it checks
before it commits (server/routes_transfers.py, server/content.py, server/blob_index.py).

A real server on a real PostgreSQL, its store a moto bucket; the "nodes" here are bare
HTTP clients holding nothing but their API key, so every step a node takes is visible.
The bucket-level refusals (an expired URL, another key, another size) are
tests/test_store_grants.py's, on rclone, which checks presigned requests as S3 does.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from artisync.errors import ForbiddenError, InvalidInputError, NotFoundError, UnauthorizedError
from artisync.registry.http import HttpRegistry
from artisync.server.access.directory import Directory
from artisync.server.access.secret import load_secret
from server_process import Server
from servers import CREDENTIALS, S3
from transfer_node import PART, Node, server_sizes


@dataclass
class World:
    server: Server
    alice: Node  # admin of team vision
    mallory: Node  # in no team but her own
    s3: S3
    bucket: str


@pytest.fixture
def world(postgres_server: Any, s3: S3, tmp_path: Path) -> Iterator[World]:
    name = postgres_server.create_database()
    dsn = postgres_server.dsn(name)
    bucket = s3.bucket()
    store = f"s3://{bucket}/team"
    server = Server(dsn, tmp_path / "server.log", "--store", store, env=server_sizes())
    try:
        server.wait_until("/readyz", 200)
        directory = Directory(dsn, load_secret(tmp_path / "server-secret"))
        directory.create_team("vision")
        directory.create_user("alice")
        directory.add_member("vision", "alice", "admin")
        directory.create_user("mallory")
        yield World(
            server,
            Node(server, directory.create_key("alice"), "vision"),
            Node(server, directory.create_key("mallory"), "mallory"),
            s3,
            bucket,
        )
    finally:
        server.stop()
        postgres_server.drop_database(name)


def test_the_server_says_which_bucket_it_serves_and_that_nodes_use_its_grants(
    world: World,
) -> None:
    store = world.alice.call("GET", "/api/v1/store")
    assert store["url"].startswith("s3://") and store["url"].endswith("/team")
    assert store["transfers"] == "presigned"
    assert store["multipart_threshold"] > 0 and store["part_size"] >= 5 << 20
    # A node's daemon asks before any user's key reaches it: no key needed, but a bad
    # one is still refused.
    assert Node(world.server, "", "vision").call("GET", "/api/v1/store") == store
    with pytest.raises(UnauthorizedError):
        Node(world.server, "ask_" + "x" * 43, "vision").call("GET", "/api/v1/store")
    with pytest.raises(UnauthorizedError):
        Node(world.server, "", "vision").grants("secret", b"x")


def test_a_node_uploads_commits_and_reads_back_with_no_bucket_credentials(world: World) -> None:
    alice, data = world.alice, b"private weights " * 100
    assert alice.upload("secret", data) == ["put"]
    alice.commit(alice.log("secret", "weights", data))
    assert alice.download(data) == [data]
    # Having read a version that holds it, she is told it is stored.
    assert [g["kind"] for g in alice.grants("secret", data)] == ["stored"]


def test_an_outsider_naming_a_private_digest_must_upload_it_and_gains_no_read(
    world: World,
) -> None:
    alice, mallory, data = world.alice, world.mallory, b"private weights " * 100
    alice.upload("secret", data)
    alice.commit(alice.log("secret", "weights", data))

    # The digest tells Mallory nothing: a grant as for a blob never seen, no URL.
    assert [g["kind"] for g in mallory.grants("mine", data)] == ["put"]
    assert mallory.download(data) == [None]
    # Committing a version over it without sending the bytes is refused.
    with pytest.raises(InvalidInputError, match="not uploaded by this caller"):
        mallory.commit(mallory.log("mine", "stolen", data))
    # Her manifest, even when it is Alice's, reads only for those who may read Alice's.
    key = alice.log("secret", "w", data).manifest_key
    with pytest.raises(NotFoundError):
        mallory.call("GET", f"/api/v1/manifests?key={key}")
    with (
        HttpRegistry(world.server.url, api_key=mallory.key) as registry,
        pytest.raises(NotFoundError),
    ):
        registry.get_version("secret", "weights", "latest", "vision")


def test_a_blob_changed_in_the_bucket_before_the_commit_refuses_the_version(
    world: World,
) -> None:
    alice, data = world.alice, b"evaluation table " * 50
    # moto takes a presigned PUT whatever its Content-MD5 (S3 answers BadDigest):
    # the server's check before the commit is what stops it.
    alice.upload("secret", data, sent=b"x" * len(data))
    with pytest.raises(InvalidInputError, match="holding other bytes than their MD5 says"):
        alice.commit(alice.log("secret", "table", data))
    alice.upload("secret", data)
    alice.commit(alice.log("secret", "table", data))


def test_a_blob_rewritten_in_the_bucket_after_its_upload_refuses_the_version(
    world: World,
) -> None:
    alice, data = world.alice, b"checkpoint " * 100
    alice.upload("secret", data)
    # Someone with bucket credentials rewrites the object (same key, other bytes).
    key = f"team/blobs/md5/{hashlib.md5(data).hexdigest()[:2]}/{hashlib.md5(data).hexdigest()}"
    assert world.s3.client.head_object(Bucket=world.bucket, Key=key)["ContentLength"] == len(data)
    world.s3.put(world.bucket, key, b"y" * len(data))
    with pytest.raises(InvalidInputError, match="holding other bytes than their MD5 says"):
        alice.commit(alice.log("secret", "checkpoint", data))


def test_multipart_uploads_prove_a_blob_and_never_replace_one(world: World) -> None:
    alice, mallory = world.alice, world.mallory
    data = os.urandom(2 * PART + 1000)
    assert alice.upload("secret", data) == ["parts"]
    alice.commit(alice.log("secret", "big", data))
    assert alice.download(data) == [data]

    # Mallory's forged parts under the same MD5: refused, and Alice's blob stays.
    with pytest.raises(InvalidInputError, match="never replaced"):
        mallory.upload("mine", data, sent=os.urandom(len(data)))
    assert alice.download(data) == [data]
    # The same bytes, sent by Mallory: they count for her, though the object stays Alice's.
    assert mallory.upload("mine", data) == ["parts"]
    mallory.commit(mallory.log("mine", "big", data))
    assert mallory.download(data) == [data]


def test_a_version_over_blobs_never_uploaded_is_refused(world: World) -> None:
    alice, data = world.alice, b"never sent"
    alice.grants("secret", data)
    with pytest.raises(InvalidInputError, match="not in the bucket"):
        alice.commit(alice.log("secret", "ghost", data))


def test_a_caller_who_may_not_write_the_project_gets_no_grants(world: World) -> None:
    mallory = world.mallory
    body = {"entity": "vision", "project": "secret", "blobs": [{"md5": "0" * 32, "size": 1}]}
    with pytest.raises(NotFoundError, match="no project vision/secret"):
        mallory.call("POST", "/api/v1/uploads", body)


# -- who may reach content: the ACL matrix of the transfer routes ----------------------------

CONTENT_OPERATIONS = ("read manifest", "download", "upload grant")
ALL_401 = "401 401 401"
# caller -> visibility -> status of each operation, written out by hand (W&B's FAQ);
# "404" for a download is a blob answered as absent (no URL).
CONTENT_EXPECTED: dict[str, dict[str, str]] = {
    "anonymous": {"private": ALL_401, "public": ALL_401, "open": ALL_401},
    "revoked key": {"private": ALL_401, "public": ALL_401, "open": ALL_401},
    "outsider": {"private": "404 404 404", "public": "200 200 403", "open": "200 200 200"},
    "viewer": {"private": "200 200 403", "public": "200 200 403", "open": "200 200 200"},
    "member": {"private": "200 200 200", "public": "200 200 200", "open": "200 200 200"},
    "admin": {"private": "200 200 200", "public": "200 200 200", "open": "200 200 200"},
}


@dataclass
class Shared:
    server: Server
    keys: dict[str, str]
    # visibility -> the manifest key of its version, and its blob
    versions: dict[str, tuple[str, bytes]]


@pytest.fixture(scope="module")
def shared(
    postgres_server: Any, moto_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shared]:
    """Team ``vision`` (admin, member, viewer), an outsider, a revoked key, and a version
    with content in a project of each visibility, on a server with a moto bucket."""
    name = postgres_server.create_database()
    dsn = postgres_server.dsn(name)
    logs = tmp_path_factory.mktemp("content-access")
    bucket = S3(moto_server).bucket()
    env = {**CREDENTIALS, "AWS_ENDPOINT_URL": moto_server, **server_sizes()}
    server = Server(dsn, logs / "server.log", "--store", f"s3://{bucket}/team", env=env)
    try:
        server.wait_until("/readyz", 200)
        directory = Directory(dsn, load_secret(logs / "server-secret"))
        directory.create_team("vision")
        keys = {"anonymous": ""}
        for user, role in (("alice", "admin"), ("bob", "member"), ("carol", "viewer")):
            directory.create_user(user)
            directory.add_member("vision", user, role)
            keys[role] = directory.create_key(user)
        directory.create_user("mallory")
        keys["outsider"] = directory.create_key("mallory")
        directory.create_user("trent")
        directory.add_member("vision", "trent", "admin")
        revoked = directory.create_key("trent")
        directory.revoke_key(revoked[:12])
        keys["revoked key"] = revoked
        alice = Node(server, keys["admin"], "vision")
        versions = {}
        for visibility in ("private", "public", "open"):
            data = f"{visibility} content ".encode() * 20
            alice.upload(visibility, data)
            version = alice.log(visibility, "data", data)
            alice.commit(version)
            if visibility != "private":
                directory.set_visibility("vision", visibility, visibility)
            versions[visibility] = (version.manifest_key, data)
        yield Shared(server, keys, versions)
    finally:
        server.stop()
        postgres_server.drop_database(name)


def _content_status(operation: Callable[[], Any]) -> str:
    try:
        return "200" if operation() else "404"
    except UnauthorizedError:
        return "401"
    except ForbiddenError:
        return "403"
    except NotFoundError:
        return "404"


@pytest.mark.parametrize("visibility", ["private", "public", "open"])
@pytest.mark.parametrize("caller", list(CONTENT_EXPECTED))
def test_content_acl_matrix(shared: Shared, caller: str, visibility: str) -> None:
    node = Node(shared.server, shared.keys[caller], "vision")
    key, data = shared.versions[visibility]
    operations: dict[str, Callable[[], Any]] = {
        "read manifest": lambda: node.call("GET", f"/api/v1/manifests?key={key}")["url"],
        "download": lambda: node.download(data) == [data],
        "upload grant": lambda: node.grants(visibility, os.urandom(100)),
    }
    got = " ".join(_content_status(operations[name]) for name in CONTENT_OPERATIONS)
    assert got == CONTENT_EXPECTED[caller][visibility], f"{caller} on {visibility}"
