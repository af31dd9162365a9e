"""Versions in real local stores for the download tests: files, digests, trees."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from pathlib import Path

from artisync.manifest import Manifest, ManifestEntry
from artisync.store import BlobItem, LocalStore

FILES = {
    "a.txt": b"alpha\n",
    "empty.bin": b"",
    "nested/deeper/b.bin": os.urandom(3000),
    "nested/c.txt": b"gamma" * 1000,
    "images/cat.png": b"meow" * 100,
    "images/cats/1.png": b"1" * 10,
    "images/dog.png": b"woof" * 100,
}


def digest_of(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def blob_file(store: LocalStore, data: bytes) -> Path:
    md5_hex = hashlib.md5(data).hexdigest()
    return store.root / "blobs" / "md5" / md5_hex[:2] / md5_hex


def build_version(
    store_dir: Path, files: dict[str, bytes], refs: dict[str, Path] | None = None
) -> tuple[LocalStore, Manifest]:
    """A local store holding ``files`` as blobs, and the manifest of that version;
    ``refs`` adds ``file://`` reference entries to existing files."""
    store = LocalStore(store_dir)
    sources = store_dir.parent / f"{store_dir.name}-sources"
    sources.mkdir(exist_ok=True)
    items, entries = [], {}
    for i, (path, data) in enumerate(files.items()):
        source = sources / str(i)
        source.write_bytes(data)
        items.append(BlobItem(hashlib.md5(data).hexdigest(), source, len(data)))
        entries[path] = ManifestEntry(path, digest_of(data), len(data))
    asyncio.run(store.put_blobs(items))
    for path, target in (refs or {}).items():
        data = target.read_bytes()
        entries[path] = ManifestEntry(path, digest_of(data), len(data), ref=target.as_uri())
    return store, Manifest(entries)


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root``, hidden ones included, by relative path."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }
