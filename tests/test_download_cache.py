"""Remote stores are read through the blob cache: verified, size-bounded, LRU-evicted,
shared safely by processes downloading at once.

The remote store is a real store reached only through ``get_blob``, as S3 will be,
whose bytes live in a real local store directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from artisync.download import (
    BlobCache,
    BlobReader,
    CorruptBlobError,
    MissingContentError,
    download_manifest,
    read_entry_bytes,
    verify_root,
)
from artisync.manifest import Manifest
from artisync.store import BlobItem, LocalStore, ObjectNotFoundError, Store, blob_key
from download_harness import FILES, blob_file, build_version, tree

KiB = 1024


class ReadThroughStore(Store):
    """A store read only through ``get_blob``; its bytes are a real local store's."""

    def __init__(self, local: LocalStore) -> None:
        self.local = local
        self.url = f"remote+{local.url}"
        self.gets: list[str] = []

    async def get_blob(self, md5_hex: str, dest: Path) -> None:
        source = self.local.root / blob_key(md5_hex)
        try:
            data = await asyncio.to_thread(source.read_bytes)
        except FileNotFoundError:
            raise ObjectNotFoundError(blob_key(md5_hex), self.url) from None
        await asyncio.to_thread(dest.write_bytes, data)
        self.gets.append(md5_hex)

    async def has_blobs(self, md5_hexes: Sequence[str]) -> set[str]:
        return await self.local.has_blobs(md5_hexes)

    async def put_blobs(self, items: Sequence[BlobItem]) -> int:
        return await self.local.put_blobs(items)

    async def put_manifest(self, artifact_digest: str, data: bytes) -> str:
        return await self.local.put_manifest(artifact_digest, data)

    async def get_manifest(self, key: str) -> bytes:
        return await self.local.get_manifest(key)

    async def sync(self) -> None:
        await self.local.sync()

    async def cleanup_tmp(self) -> int:
        return await self.local.cleanup_tmp()

    async def list_blobs(self) -> list[tuple[str, int, float]]:
        return await self.local.list_blobs()

    async def delete_blobs(self, md5_hexes: Sequence[str]) -> None:
        await self.local.delete_blobs(md5_hexes)

    async def list_manifests(self) -> list[tuple[str, float]]:
        return await self.local.list_manifests()

    async def delete_manifests(self, keys: Sequence[str]) -> None:
        await self.local.delete_manifests(keys)


def remote_version(tmp_path: Path, files: dict[str, bytes]) -> tuple[ReadThroughStore, Manifest]:
    local, manifest = build_version(tmp_path / "store", files)
    return ReadThroughStore(local), manifest


def cached_blobs(cache: BlobCache) -> set[str]:
    blobs = cache.directory / "blobs"
    return {p.name for p in blobs.rglob("*") if p.is_file()} if blobs.exists() else set()


def test_the_test_store_is_what_downloads_expect_of_a_remote_store(tmp_path: Path) -> None:
    store, _ = remote_version(tmp_path, {})
    assert isinstance(store, BlobReader)
    assert not isinstance(store.local, BlobReader)


def test_a_remote_store_is_read_once_then_served_from_the_cache(tmp_path: Path) -> None:
    store, manifest = remote_version(tmp_path, FILES)
    cache = BlobCache(tmp_path / "cache")
    first = download_manifest(store, manifest, tmp_path / "a", cache=cache)
    assert tree(tmp_path / "a") == FILES
    assert first.fetched == len(FILES) and first.cache_hits == 0
    assert len(cached_blobs(cache)) == len(FILES)
    second = download_manifest(store, manifest, tmp_path / "b", cache=cache)
    assert tree(tmp_path / "b") == FILES
    assert second.cache_hits == len(FILES) and second.fetched == 0
    assert len(store.gets) == len(FILES)


def test_use_cache_reads_a_local_store_the_way_a_remote_one_is_read(tmp_path: Path) -> None:
    store, manifest = build_version(tmp_path / "store", FILES)
    cache = BlobCache(tmp_path / "cache")
    first = download_manifest(store, manifest, tmp_path / "a", cache=cache, use_cache=True)
    second = download_manifest(store, manifest, tmp_path / "b", cache=cache, use_cache=True)
    assert tree(tmp_path / "a") == tree(tmp_path / "b") == FILES
    assert (first.fetched, second.cache_hits) == (len(FILES), len(FILES))


def test_a_corrupt_remote_blob_never_enters_the_cache_or_the_root(tmp_path: Path) -> None:
    store, manifest = remote_version(tmp_path, FILES)
    blob = blob_file(store.local, FILES["a.txt"])
    blob.write_bytes(b"ALPHA\n")
    cache = BlobCache(tmp_path / "cache")
    with pytest.raises(CorruptBlobError) as caught:
        download_manifest(store, manifest, tmp_path / "out", cache=cache)
    assert "'a.txt'" in str(caught.value) and store.url in str(caught.value)
    assert blob.name not in cached_blobs(cache)
    assert not (tmp_path / "out" / "a.txt").exists()
    assert not list((cache.directory / "tmp").iterdir())


def test_a_blob_missing_from_a_remote_store_is_an_error_naming_the_entry(tmp_path: Path) -> None:
    store, manifest = remote_version(tmp_path, {"a.txt": b"a"})
    blob_file(store.local, b"a").unlink()
    with pytest.raises(MissingContentError, match=r"'a\.txt'"):
        download_manifest(store, manifest, tmp_path / "out", cache=BlobCache(tmp_path / "c"))


@pytest.mark.parametrize("damage", ["flipped byte", "truncated"])
def test_a_damaged_cached_copy_is_fetched_again(tmp_path: Path, damage: str) -> None:
    store, manifest = remote_version(tmp_path, FILES)
    cache = BlobCache(tmp_path / "cache")
    download_manifest(store, manifest, tmp_path / "a", cache=cache)
    cached = Path(cache.blob_path(blob_file(store.local, FILES["nested/c.txt"]).name))
    data = bytearray(cached.read_bytes())
    if damage == "flipped byte":
        data[7] ^= 0x20
    else:
        del data[-1]
    cached.write_bytes(bytes(data))
    report = download_manifest(store, manifest, tmp_path / "b", cache=cache)
    assert tree(tmp_path / "b") == FILES
    assert report.fetched == 1
    assert cached.read_bytes() == FILES["nested/c.txt"]


class EvictingCache(BlobCache):
    """A cache whose blobs vanish right after a lookup finds them, as when another
    process evicts them in between."""

    def lookup(self, md5_hex: str, size: int | None) -> str | None:
        path = super().lookup(md5_hex, size)
        if path is not None:
            os.unlink(path)
        return path


def test_a_blob_evicted_between_lookup_and_copy_is_fetched_again(tmp_path: Path) -> None:
    store, manifest = remote_version(tmp_path, FILES)
    download_manifest(store, manifest, tmp_path / "a", cache=BlobCache(tmp_path / "cache"))
    report = download_manifest(
        store, manifest, tmp_path / "b", cache=EvictingCache(tmp_path / "cache")
    )
    assert tree(tmp_path / "b") == FILES
    assert report.fetched == len(FILES)


def test_the_least_recently_used_blobs_are_evicted_at_the_bound(tmp_path: Path) -> None:
    blobs = {name: os.urandom(4 * KiB) for name in "ABCD"}
    store, manifest = remote_version(tmp_path, blobs)
    cache = BlobCache(tmp_path / "cache", max_bytes=3 * 4 * KiB + 2 * KiB)  # + root records

    roots = iter(range(10))

    def get(name: str) -> None:  # into a new root each time, so the cache is asked
        one = Manifest({name: manifest.entries[name]})
        download_manifest(store, one, tmp_path / f"root{next(roots)}", cache=cache)

    for name in "ABC":
        get(name)
    now = time.time()
    for age, name in ((300, "A"), (200, "B"), (100, "C")):
        os.utime(cache.blob_path(blob_file(store.local, blobs[name]).name), (now - age,) * 2)
    get("A")  # a hit: A becomes the most recently used
    get("D")  # over the bound: B, the least recently used, goes
    names = {blob_file(store.local, d).name: n for n, d in blobs.items()}
    assert {names[h] for h in cached_blobs(cache)} == {"A", "C", "D"}
    assert cache.usage() <= cache.max_bytes


def test_a_blob_larger_than_the_bound_is_downloaded_but_not_kept(tmp_path: Path) -> None:
    store, manifest = remote_version(tmp_path, {"big": os.urandom(64 * KiB)})
    cache = BlobCache(tmp_path / "cache", max_bytes=16 * KiB)
    download_manifest(store, manifest, tmp_path / "out", cache=cache)
    verify_root(manifest, tmp_path / "out")
    assert cached_blobs(cache) == set()
    assert cache.usage() <= cache.max_bytes


@pytest.fixture
def remote(tmp_path: Path) -> tuple[ReadThroughStore, Manifest]:
    return remote_version(tmp_path, FILES)


async def test_a_download_works_from_inside_a_running_event_loop(
    tmp_path: Path, remote: tuple[ReadThroughStore, Manifest]
) -> None:
    store, manifest = remote
    download_manifest(store, manifest, tmp_path / "out", cache=BlobCache(tmp_path / "cache"))
    assert tree(tmp_path / "out") == FILES


def test_read_entry_bytes_of_a_remote_blob_goes_through_the_cache(tmp_path: Path) -> None:
    store, manifest = remote_version(tmp_path, FILES)
    cache = BlobCache(tmp_path / "cache")
    for _ in range(2):
        assert read_entry_bytes(store, manifest.entries["a.txt"], cache=cache) == FILES["a.txt"]
    assert len(store.gets) == 1


_CHILD = textwrap.dedent(
    """
    import json, sys
    from artisync.download import BlobCache, download_manifest, verify_root
    from artisync.manifest import Manifest
    from artisync.store import LocalStore

    store, manifest_file, root, cache_dir, max_bytes = sys.argv[1:]
    manifest = Manifest.from_json(json.loads(open(manifest_file).read()))
    cache = BlobCache(cache_dir, max_bytes=int(max_bytes))
    for round in range(3):
        target = f"{root}/{round}"
        download_manifest(LocalStore(store), manifest, target, cache=cache, use_cache=True)
        verify_root(manifest, target)
    """
)


def test_two_processes_download_at_once_through_one_small_shared_cache(tmp_path: Path) -> None:
    files = {f"d{i // 50}/f{i:03d}.bin": os.urandom(4 * KiB) for i in range(300)}
    store, manifest = build_version(tmp_path / "store", files)
    manifest_file = tmp_path / "manifest.json"
    manifest_file.write_text(json.dumps(manifest.to_json()))
    cache_dir, max_bytes = tmp_path / "cache", 400 * KiB  # a third of the version
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _CHILD,
                str(store.root),
                str(manifest_file),
                str(tmp_path / f"p{n}"),
                str(cache_dir),
                str(max_bytes),
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    for child in children:
        _, err = child.communicate(timeout=90)
        assert child.returncode == 0, err
    for n in range(2):
        for round in range(3):
            assert tree(tmp_path / f"p{n}" / str(round)) == files
    assert BlobCache(cache_dir).usage() <= max_bytes
