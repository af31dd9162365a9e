"""Every store backend behind one test-side face, for the store contract suite.

tests/test_store_contract.py runs each test once per backend (local directory, S3 on
moto, GCS on fake-gcs-server). A :class:`Backend` holds the :class:`Store` under test
and the few things a test must do *around* the store rather than through it: look at
the raw objects it wrote, put objects there behind its back, and see what an operation
left behind. Each backend answers them with its own tools (the filesystem, boto3, the
GCS JSON API), so a contract test never asks which backend it runs on.

Remote stores are made as their own test files make them: small multipart and resumable
thresholds, so that large-file paths run with files of a few MiB.
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.request
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any
from urllib.parse import quote

from artisync.store import BlobItem, LocalStore, Store, blob_key
from artisync.store.gcs import GCSStore
from artisync.store.s3 import S3Store
from servers import GCS, S3

MiB = 1 << 20
KiB = 1 << 10
S3_PART = 5 * MiB
GCS_CHUNK = 256 * KiB

# Every remote store in the suite lives under this prefix, so prefixed keys are tested.
PREFIX = "contract/"


def blob(path: Path, data: bytes) -> BlobItem:
    """Write ``data`` to ``path`` and return it as a blob to store (digest, size)."""
    path.write_bytes(data)
    return BlobItem(hashlib.md5(data).hexdigest(), path, len(data))


def small_s3_store(url: str, state: Path, **options: Any) -> S3Store:
    """An S3 store whose multipart uploads start at 6 MiB, in 5 MiB parts."""
    options.setdefault("multipart_threshold", 6 * MiB)
    options.setdefault("part_size", S3_PART)
    return S3Store(url, state_dir=state, **options)


def small_gcs_store(url: str, state: Path, **options: Any) -> GCSStore:
    """A GCS store whose resumable sessions start at 600 KiB, in 256 KiB chunks."""
    options.setdefault("resumable_threshold", 600 * KiB)
    options.setdefault("chunk_size", GCS_CHUNK)
    return GCSStore(url, state_dir=state, **options)


def gcs_objects(gcs: GCS, bucket: str) -> dict[str, dict[str, Any]]:
    """Every object's metadata in a GCS bucket, by name (fake-gcs-server pages by
    maxResults)."""
    found: dict[str, dict[str, Any]] = {}
    token = ""
    while True:
        page = gcs._call("GET", f"/storage/v1/b/{bucket}/o?maxResults=1000&pageToken={token}",
                         None, "")  # fmt: skip
        found |= {o["name"]: o for o in page.get("items", [])}
        token = page.get("nextPageToken") or ""
        if not token:
            return found


class Backend(ABC):
    """A store under test and the test's own view of what it holds.

    Keys are the store's layout keys (``blobs/md5/ab/ab…``, ``manifests/…``), without
    a remote store's prefix.
    """

    name: str
    store: Store
    url: str
    # Blobs below this size go up in one request, which counts as a stored file in
    # the submission's progress; larger ones go in parts, which count bytes only.
    single_write_max: int

    @abstractmethod
    def read_object(self, key: str) -> bytes:
        """The raw bytes stored at ``key``, read without the store."""

    @abstractmethod
    def stored_keys(self) -> set[str]:
        """Every key the store holds an object at (whole or not)."""

    @abstractmethod
    def seed(self, objects: dict[str, bytes]) -> None:
        """Put ``objects`` (key: bytes) where the store keeps them, behind its back."""

    @abstractmethod
    def seed_outside(self, objects: dict[str, bytes]) -> None:
        """Put ``objects`` next to the store (another prefix, another directory): the
        store must never list or delete them."""

    @abstractmethod
    def leftovers(self) -> list[str]:
        """What the store's writes left on the side: the local store's ``tmp/``, a
        remote store's upload journal. Empty after every finished call."""

    @abstractmethod
    def stamp(self, key: str) -> Any:
        """Something that changes whenever the object at ``key`` is written again."""

    @abstractmethod
    async def read_blob(self, md5_hex: str, scratch: Path) -> bytes:
        """The blob's bytes through the store's own read path (``ObjectNotFoundError``
        when it is absent); ``scratch`` is a directory the read may write in."""


class LocalBackend(Backend):
    """A :class:`LocalStore` in a fresh directory."""

    name = "local"
    single_write_max = sys.maxsize  # a copy is one write, whatever its size

    def __init__(self, root: Path) -> None:
        self.root = root
        self.store = self.local = LocalStore(root)
        self.url = self.store.url

    def read_object(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def stored_keys(self) -> set[str]:
        found = set()
        for directory, _, files in os.walk(self.root):
            for name in files:
                key = os.path.relpath(os.path.join(directory, name), self.root)
                if not key.startswith("tmp/"):
                    found.add(key)
        return found

    def seed(self, objects: dict[str, bytes]) -> None:
        for key, data in objects.items():
            path = self.root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    def seed_outside(self, objects: dict[str, bytes]) -> None:
        for key, data in objects.items():
            path = self.root.parent / "elsewhere" / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    def leftovers(self) -> list[str]:
        return sorted(os.listdir(self.root / "tmp"))

    def stamp(self, key: str) -> Any:
        st = os.stat(self.root / key)
        return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)

    async def read_blob(self, md5_hex: str, scratch: Path) -> bytes:
        path = await self.local.open_blob_path(md5_hex)
        assert path == self.root / blob_key(md5_hex), "read where it is stored"
        return path.read_bytes()


class S3Backend(Backend):
    """An :class:`S3Store` on a fresh moto bucket, under :data:`PREFIX`."""

    name = "s3"
    single_write_max = 6 * MiB  # small_s3_store's multipart threshold

    def __init__(self, s3: S3, state: Path) -> None:
        self.s3 = s3
        self.bucket = s3.bucket()
        self.state = state
        self.url = f"s3://{self.bucket}/{PREFIX.rstrip('/')}"
        self.store = self.remote = small_s3_store(self.url, state)

    def read_object(self, key: str) -> bytes:
        answer = self.s3.client.get_object(Bucket=self.bucket, Key=PREFIX + key)
        return bytes(answer["Body"].read())

    def stored_keys(self) -> set[str]:
        pages = self.s3.client.get_paginator("list_objects_v2")
        return {
            o["Key"].removeprefix(PREFIX)
            for page in pages.paginate(Bucket=self.bucket, Prefix=PREFIX)
            for o in page.get("Contents", [])
        }

    def seed(self, objects: dict[str, bytes]) -> None:
        self.s3.put_many(self.bucket, {PREFIX + k: v for k, v in objects.items()}, threads=32)

    def seed_outside(self, objects: dict[str, bytes]) -> None:
        self.s3.put_many(self.bucket, {f"elsewhere/{k}": v for k, v in objects.items()})

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in self.state.glob("*.json"))

    def stamp(self, key: str) -> Any:
        head = self.s3.client.head_object(Bucket=self.bucket, Key=PREFIX + key)
        return (head["ETag"], head["LastModified"])

    async def read_blob(self, md5_hex: str, scratch: Path) -> bytes:
        out = scratch / f"{md5_hex}.out"
        await self.remote.get_blob(md5_hex, out)
        return out.read_bytes()


class GCSBackend(Backend):
    """A :class:`GCSStore` on a fresh fake-gcs-server bucket, under :data:`PREFIX`."""

    name = "gcs"
    single_write_max = 600 * KiB  # small_gcs_store's resumable threshold

    def __init__(self, gcs: GCS, state: Path) -> None:
        self.gcs = gcs
        self.bucket = gcs.bucket()
        self.state = state
        self.url = f"gs://{self.bucket}/{PREFIX.rstrip('/')}"
        self.store = self.remote = small_gcs_store(self.url, state)

    def read_object(self, key: str) -> bytes:
        name = quote(PREFIX + key, safe="")
        url = f"{self.gcs.url}/storage/v1/b/{self.bucket}/o/{name}?alt=media"
        with urllib.request.urlopen(url, timeout=30) as response:
            return bytes(response.read())

    def stored_keys(self) -> set[str]:
        names = gcs_objects(self.gcs, self.bucket)
        return {n.removeprefix(PREFIX) for n in names if n.startswith(PREFIX)}

    def seed(self, objects: dict[str, bytes]) -> None:
        self.gcs.put_many(self.bucket, {PREFIX + k: v for k, v in objects.items()}, threads=16)

    def seed_outside(self, objects: dict[str, bytes]) -> None:
        self.gcs.put_many(self.bucket, {f"elsewhere/{k}": v for k, v in objects.items()})

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in self.state.glob("*.json"))

    def stamp(self, key: str) -> Any:
        meta = gcs_objects(self.gcs, self.bucket)[PREFIX + key]
        return (meta["generation"], meta.get("updated"))

    async def read_blob(self, md5_hex: str, scratch: Path) -> bytes:
        out = scratch / f"{md5_hex}.out"
        await self.remote.get_blob(md5_hex, out)
        return out.read_bytes()


__all__ = [
    "GCS_CHUNK",
    "PREFIX",
    "S3_PART",
    "Backend",
    "GCSBackend",
    "LocalBackend",
    "S3Backend",
    "blob",
    "gcs_objects",
    "small_gcs_store",
    "small_s3_store",
]
