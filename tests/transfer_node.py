"""A node as ``artisync server`` sees it when it holds no bucket credentials: an API key
and bare HTTP, every step of an upload, a commit and a download visible (the server's
transfers: server/routes_transfers.py). Shared by the tests of the transfers and their
access matrix."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

import urllib3

from artisync.errors import ForbiddenError, InvalidInputError, NotFoundError, UnauthorizedError
from artisync.manifest import Manifest, ManifestEntry, artifact_digest, md5_hex_to_b64
from artisync.registry import NewVersion
from artisync.registry.http import HttpRegistry
from artisync.store.base import manifest_key
from server_process import Server

__all__ = ["PART", "THRESHOLD", "Node", "declared", "server_sizes"]

_http = urllib3.PoolManager()
PART = 5 << 20  # the smallest S3 part
THRESHOLD = PART + 1  # blobs from here on go up in parts
_REFUSALS: dict[int, type[Exception]] = {
    400: InvalidInputError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
}


def server_sizes() -> dict[str, str]:
    """The environment of a server whose S3 store takes parts of :data:`PART` bytes
    from :data:`THRESHOLD` on (small enough for tests)."""
    return {
        "ARTISYNC_SERVER_MULTIPART_THRESHOLD": str(THRESHOLD),
        "ARTISYNC_SERVER_PART_SIZE": str(PART),
    }


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
        refusal = _REFUSALS.get(response.status)
        if refusal is not None:
            raise refusal(answer["error"])
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
