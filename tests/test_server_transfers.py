"""Nodes without bucket credentials: the server's presigned grants, and what it checks
before it commits (server/routes_transfers.py, server/content.py, server/blob_index.py).

A real server on a real PostgreSQL, its store a moto bucket; the "nodes" here are bare
HTTP clients holding nothing but their API key, so every step a node takes is visible.
The bucket-level refusals (an expired URL, another key, another size) are
tests/test_store_grants.py's, on rclone, which checks presigned requests as S3 does.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import urllib3

from artisync.errors import InvalidInputError, NotFoundError
from artisync.manifest import Manifest, ManifestEntry, artifact_digest, md5_hex_to_b64
from artisync.registry import NewVersion
from artisync.registry.http import HttpRegistry
from artisync.server.access.directory import Directory
from artisync.server.access.secret import load_secret
from artisync.store.base import manifest_key
from server_process import Server
from servers import S3

_http = urllib3.PoolManager()
PART = 5 << 20  # the smallest S3 part
THRESHOLD = PART + 1  # blobs from here on go up in parts


def declared(data: bytes, sent: bytes | None = None) -> dict[str, Any]:
    """``data`` as a node declares it (in parts from the threshold on); ``sent``: the
    part MD5s of other bytes, declared as ``data``'s."""
    blob: dict[str, Any] = {"md5": hashlib.md5(data).hexdigest(), "size": len(data)}
    if len(data) >= THRESHOLD:
        parts = sent or data
        blob["part_size"] = PART
        blob["part_md5s"] = [
            hashlib.md5(parts[i : i + PART]).hexdigest() for i in range(0, len(parts), PART)
        ]
    return blob


@dataclass
class Node:
    """A node as the server sees it: an API key, and the bare HTTP it sends."""

    server: Server
    key: str
    entity: str

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = _http.request(
            method,
            self.server.url + path,
            body=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
            retries=False,
        )
        answer = json.loads(response.data or b"null")
        if response.status == 404:
            raise NotFoundError(answer["error"])
        if response.status == 400:
            raise InvalidInputError(answer["error"])
        assert response.status == 200, (response.status, answer)
        return answer

    def grants(self, project: str, *blobs: bytes) -> list[dict[str, Any]]:
        asked = [declared(b) for b in blobs]
        body = {"entity": self.entity, "project": project, "blobs": asked}
        answer: list[dict[str, Any]] = self.call("POST", "/api/v1/uploads", body)["grants"]
        return answer

    def upload(self, project: str, *blobs: bytes, sent: bytes | None = None) -> list[str]:
        """Upload each blob its grant asks for (``sent``: other bytes instead); the
        kinds of the grants."""
        kinds = []
        for data, grant in zip(blobs, self.grants(project, *blobs), strict=True):
            kinds.append(grant["kind"])
            if grant["kind"] == "put":
                put = _http.request(
                    "PUT", grant["url"], body=sent or data, headers=grant["headers"], retries=False
                )
                assert put.status == 200, put.data
            if grant["kind"] == "parts":
                body = sent or data
                for part in grant["parts"]:
                    start = (part["number"] - 1) * PART
                    put = _http.request(
                        "PUT",
                        part["url"],
                        body=body[start : start + PART],
                        headers=part["headers"],
                        retries=False,
                    )
                    assert put.status == 200, put.data
                completion = {
                    "entity": self.entity,
                    "project": project,
                    "blob": declared(data, sent),
                    "upload_id": grant["upload_id"],
                }
                self.call("POST", "/api/v1/uploads/complete", completion)
        return kinds

    def log(self, project: str, name: str, *blobs: bytes) -> NewVersion:
        """Store the manifest of a version of ``blobs`` (through its grant) and the
        version it would commit."""
        entries = {
            f"f{i}": ManifestEntry(
                path=f"f{i}", digest=md5_hex_to_b64(hashlib.md5(b).hexdigest()), size=len(b)
            )
            for i, b in enumerate(blobs)
        }
        digest = artifact_digest(entries.values())
        data = json.dumps(Manifest(entries=entries).to_json()).encode()
        body = {"entity": self.entity, "project": project, "digest": digest,
                "md5": hashlib.md5(data).hexdigest(), "size": len(data)}  # fmt: skip
        grant = self.call("POST", "/api/v1/manifests/uploads", body)
        put = _http.request("PUT", grant["url"], body=data, headers=grant["headers"], retries=False)
        assert put.status in (200, 412), put.data  # 412: the manifest is there already
        return NewVersion(
            submission_id=uuid.uuid4().hex,
            project=project,
            entity=self.entity,
            name=name,
            type="dataset",
            digest=digest,
            manifest_key=manifest_key(digest),
            size=sum(map(len, blobs)),
            file_count=len(blobs),
            store=self.server_store(),
        )

    def commit(self, version: NewVersion) -> None:
        with HttpRegistry(self.server.url, api_key=self.key) as registry:
            registry.commit_version(version)

    def server_store(self) -> str:
        url: str = self.call("GET", "/api/v1/store")["url"]
        return url

    def download(self, *blobs: bytes) -> list[bytes | None]:
        md5s = [hashlib.md5(b).hexdigest() for b in blobs]
        grants = self.call("POST", "/api/v1/downloads", {"blobs": md5s})["grants"]
        return [
            None if g["url"] is None else _http.request("GET", g["url"], retries=False).data
            for g in grants
        ]


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
    sizes = {"ARTISYNC_SERVER_MULTIPART_THRESHOLD": str(THRESHOLD),
             "ARTISYNC_SERVER_PART_SIZE": str(PART)}  # fmt: skip
    server = Server(dsn, tmp_path / "server.log", "--store", f"s3://{bucket}/team", env=sizes)
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
