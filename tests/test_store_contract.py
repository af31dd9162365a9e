"""The store contract: what every backend's :class:`Store` does, checked on each.

Each test runs against the local store, the S3 store on a real moto server and the GCS
store on a real fake-gcs-server (tests/servers.py), through the ``store`` fixture;
``backend`` (tests/store_backends.py) looks at the raw objects around it. What only one
backend does (multipart resume, resumable sessions, in-place writes and their journal,
credentials) is tested in that backend's own file: test_store_local.py,
test_store_s3*.py, test_store_gcs.py.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from artisync import tracking
from artisync.download import BlobCache, download_manifest
from artisync.errors import InvalidInputError
from artisync.manifest import Manifest, ManifestEntry
from artisync.store import (
    BlobItem,
    ObjectNotFoundError,
    SourceChangedError,
    Store,
    blob_key,
    manifest_key,
)
from store_backends import (
    S3_PART,
    Backend,
    GCSBackend,
    LocalBackend,
    S3Backend,
    blob,
    small_gcs_store,
    small_s3_store,
)

MiB = 1 << 20
KiB = 1 << 10
BACKENDS = ["local", "s3", "gcs"]
REMOTE = ["s3", "gcs"]


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """The store under test, one per backend; servers start only for their backend."""
    made: Backend
    if request.param == "local":
        made = LocalBackend(tmp_path / "store")
    elif request.param == "s3":
        made = S3Backend(request.getfixturevalue("s3"), tmp_path / "uploads")
    else:
        made = GCSBackend(request.getfixturevalue("gcs"), tmp_path / "uploads")
    try:
        yield made
    finally:
        await made.store.close()


@pytest.fixture
def store(backend: Backend) -> Store:
    """The :class:`Store` of ``backend``: what the contract is about."""
    return backend.store


def source(directory: Path, data: bytes, name: str | None = None) -> tuple[str, Path]:
    """A file holding ``data``, and its MD5 hex."""
    md5_hex = hashlib.md5(data).hexdigest()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (name or md5_hex)
    path.write_bytes(data)
    return md5_hex, path


# -- blobs ---------------------------------------------------------------------------


async def test_a_blob_is_stored_under_blobs_md5_prefix_hex_with_its_content(
    store: Store, backend: Backend, tmp_path: Path
) -> None:
    md5_hex, path = source(tmp_path / "src", b"model weights")

    assert await store.put_blob(md5_hex, path, 13) is True
    await store.sync()

    assert blob_key(md5_hex) == f"blobs/md5/{md5_hex[:2]}/{md5_hex}"
    assert backend.read_object(blob_key(md5_hex)) == b"model weights"
    assert path.read_bytes() == b"model weights", "a copy leaves the source alone"
    assert await store.has_blob(md5_hex)
    assert await backend.read_blob(md5_hex, tmp_path) == b"model weights"
    assert backend.leftovers() == []


async def test_an_empty_file_is_a_blob_too(store: Store, backend: Backend, tmp_path: Path) -> None:
    md5_hex, path = source(tmp_path / "src", b"")

    assert await store.put_blob(md5_hex, path, 0)

    assert backend.read_object(blob_key(md5_hex)) == b""


@pytest.mark.parametrize("move", [False, True], ids=["copy", "move"])
async def test_a_second_put_of_the_same_digest_writes_nothing_and_returns_false(
    store: Store, backend: Backend, tmp_path: Path, move: bool
) -> None:
    md5_hex, first = source(tmp_path / "a", b"same content")
    _, second = source(tmp_path / "b", b"same content")
    await store.put_blob(md5_hex, first, 12)
    before = backend.stamp(blob_key(md5_hex))

    assert await store.put_blob(md5_hex, second, 12, move=move) is False
    assert await store.put_blobs([BlobItem(md5_hex, second, 12, move)]) == 0

    assert backend.stamp(blob_key(md5_hex)) == before
    assert second.exists(), "a source whose blob is present is left alone, even with move"
    assert backend.leftovers() == []


async def test_a_changed_source_is_refused_naming_the_file(store: Store, tmp_path: Path) -> None:
    small = blob(tmp_path / "small", b"0123456789")
    large = blob(tmp_path / "large", os.urandom(2 * S3_PART))
    # A source modified after hashing (its mtime moved) is refused before it is
    # stored, even at the same size: small (one write) and large (in parts).
    for item, after in ((small, b"9876543210"), (large, os.urandom(2 * S3_PART))):
        hashed = item.source.stat().st_mtime_ns
        item.source.write_bytes(after)
        os.utime(item.source, ns=(hashed + 10**9, hashed + 10**9))
        changed = BlobItem(item.md5_hex, item.source, item.size, False, hashed)
        with pytest.raises(SourceChangedError, match="modified after it was hashed") as caught:
            await store.put_blobs([changed])
        assert caught.value.filename == str(item.source)
        assert not await store.has_blobs([item.md5_hex])
    gone = BlobItem("0" * 32, tmp_path / "missing", 3)
    with pytest.raises(FileNotFoundError) as missing:
        await store.put_blobs([gone])
    assert missing.value.filename == str(tmp_path / "missing")
    assert await store.list_blobs() == []


@pytest.mark.parametrize("backend", REMOTE, indirect=True)
async def test_a_source_rewritten_at_its_size_is_refused_by_the_servers_md5(
    store: Store, tmp_path: Path
) -> None:
    """Remote stores only: the server reports the MD5 of what it received, so a source
    rewritten at the same size (mtime unchecked) is caught there. The local store
    copies a source whose digest is given without hashing it again (the caller hashed
    it in the same read), so catching this is the caller's job."""
    small = blob(tmp_path / "small", b"0123456789")
    small.source.write_bytes(b"9876543210")  # same size, other bytes
    with pytest.raises(SourceChangedError) as caught:
        await store.put_blobs([small])
    assert caught.value.filename == str(small.source)
    assert await store.list_blobs() == [], "the wrong object was removed"
    with pytest.raises(FileNotFoundError):
        await store.put_blobs([BlobItem("0" * 32, tmp_path / "missing", 1)])


@pytest.mark.parametrize("move", [False, True], ids=["copy", "move"])
async def test_a_source_of_another_size_than_hashed_is_refused(
    store: Store, backend: Backend, tmp_path: Path, move: bool
) -> None:
    md5_hex, path = source(tmp_path / "src", b"grew after hashing")

    with pytest.raises(SourceChangedError) as caught:
        await store.put_blob(md5_hex, path, 4, move=move)

    assert caught.value.filename == str(path)
    assert (caught.value.expected, caught.value.actual) == (4, 18)
    assert path.exists()
    assert blob_key(md5_hex) not in backend.stored_keys()
    assert backend.leftovers() == []


@pytest.mark.parametrize("move", [False, True], ids=["copy", "move"])
async def test_a_missing_source_raises_file_not_found_naming_it(
    store: Store, backend: Backend, tmp_path: Path, move: bool
) -> None:
    missing = tmp_path / "gone.bin"

    with pytest.raises(FileNotFoundError) as caught:
        await store.put_blob("0" * 32, missing, 3, move=move)

    assert caught.value.filename == str(missing)
    assert backend.leftovers() == []


@pytest.mark.parametrize("bad", ["", "ABCDEF" * 5 + "AB", "../" * 10 + "ab", "0" * 31])
async def test_a_digest_that_is_not_md5_hex_is_refused_before_anything_is_written(
    store: Store, backend: Backend, tmp_path: Path, bad: str
) -> None:
    md5_hex, path = source(tmp_path / "src", b"ok")

    with pytest.raises(InvalidInputError):
        await store.put_blobs([BlobItem(md5_hex, path, 2), BlobItem(bad, path, 2)])
    with pytest.raises(InvalidInputError):
        await store.has_blobs([bad])

    assert blob_key(md5_hex) not in backend.stored_keys()


async def test_has_blobs_returns_the_present_subset(store: Store, tmp_path: Path) -> None:
    stored = [source(tmp_path / "src", f"stored {i}".encode()) for i in range(5)]
    await store.put_blobs([BlobItem(h, p, None) for h, p in stored])
    absent = [hashlib.md5(f"absent {i}".encode()).hexdigest() for i in range(5)]
    present = [h for h, _ in stored]

    asked = [*absent, *present, present[0], absent[0]]  # duplicates are fine
    assert await store.has_blobs(asked) == set(present)
    assert await store.has_blobs([]) == set()
    assert not await store.has_blob(absent[0])


async def test_uploads_count_their_bytes_into_the_submissions_progress(
    store: Store, backend: Backend, tmp_path: Path
) -> None:
    """One write, streamed writes and writes in parts all move the bar as they finish."""
    items = [
        blob(tmp_path / "small", b"hello"),
        blob(tmp_path / "streamed", os.urandom(2 * MiB + 3)),
        blob(tmp_path / "parts", os.urandom(2 * S3_PART + 12345)),
    ]
    tracked = tracking.Tracked("sub")
    token = tracking.enter(tracked)
    try:
        assert await store.put_blobs(items) == 3
    finally:
        tracking.leave(token)
    assert tracked.stored.bytes == sum(item.source.stat().st_size for item in items)
    # Each blob written in one request counts a file; parts count bytes only.
    single = sum(1 for item in items if (item.size or 0) < backend.single_write_max)
    assert tracked.stored.files >= single


# -- manifests -----------------------------------------------------------------------


async def test_a_manifest_round_trips_under_its_artifact_digest(
    store: Store, backend: Backend
) -> None:
    digest = hashlib.md5(b"an artifact").hexdigest()
    data = b'{"version": 1, "contents": {}}'

    key = await store.put_manifest(digest, data)
    await store.sync()

    assert key == manifest_key(digest) == f"manifests/{digest[:2]}/{digest}.json"
    assert backend.read_object(key) == data
    assert await store.get_manifest(key) == data
    assert backend.leftovers() == []


async def test_a_manifest_already_stored_is_kept_as_it_is(store: Store, backend: Backend) -> None:
    digest = hashlib.md5(b"an artifact").hexdigest()
    key = await store.put_manifest(digest, b'{"first": true}')
    before = backend.stamp(key)

    assert await store.put_manifest(digest, b'{"second": true}') == key

    assert await store.get_manifest(key) == b'{"first": true}', "the first writer wins"
    assert backend.stamp(key) == before
    assert backend.leftovers() == []


async def test_a_manifest_file_goes_up_streamed_and_the_first_writer_wins(
    store: Store, tmp_path: Path
) -> None:
    """A manifest streamed from a file (3 MiB) reads back whole, and a second one
    under the same digest leaves the first in place."""
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    first.write_bytes(b'{"contents": "%s"}' % (b"x" * (3 << 20)))
    second.write_bytes(b'{"contents": {}}')
    digest = hashlib.md5(b"big artifact").hexdigest()
    key = await store.put_manifest_file(digest, first)
    assert await store.put_manifest_file(digest, second) == key
    assert await store.get_manifest(key) == first.read_bytes(), "the first writer wins"


async def test_missing_objects_and_foreign_keys_are_refused(
    store: Store, backend: Backend, tmp_path: Path
) -> None:
    absent = hashlib.md5(b"never stored").hexdigest()

    with pytest.raises(ObjectNotFoundError) as caught:
        await store.get_manifest(manifest_key(absent))
    assert manifest_key(absent) in str(caught.value) and store.url in str(caught.value)
    with pytest.raises(ObjectNotFoundError):
        await store.get_manifest(f"manifests/ab/ab{'0' * 30}.json")
    with pytest.raises(ObjectNotFoundError):
        await backend.read_blob(absent, tmp_path)
    with pytest.raises(ObjectNotFoundError):
        await backend.read_blob("f" * 32, tmp_path)
    for key in ["../../etc/passwd", f"manifests/00/{absent}.json", f"blobs/md5/x/{absent}"]:
        with pytest.raises(InvalidInputError):
            await store.get_manifest(key)
    await store.sync()


# -- garbage collection and leftovers ------------------------------------------------


async def test_garbage_collection_lists_and_deletes_page_by_page(
    store: Store, backend: Backend
) -> None:
    """Over 1,000 blobs, so remote listings and deletions take more than one page."""
    hexes = [hashlib.md5(str(i).encode()).hexdigest() for i in range(1100)]
    backend.seed({blob_key(h): b"abc" for h in hexes})
    listed = await store.list_blobs()
    assert sorted(h for h, _, _ in listed) == sorted(hexes)
    assert {size for _, size, _ in listed} == {3}
    assert all(abs(mtime - time.time()) < 600 for _, _, mtime in listed)
    asked = [*hexes[:500], hashlib.md5(b"absent").hexdigest()]
    assert await store.has_blobs(asked) == set(hexes[:500])
    manifests = [hashlib.md5(f"m{i}".encode()).hexdigest() for i in range(3)]
    keys = [await store.put_manifest(d, b"{}") for d in manifests]
    assert sorted(k for k, _ in await store.list_manifests()) == sorted(keys)

    await store.delete_blobs([*hexes[:1050], "e" * 32])
    await store.delete_manifests(keys[:2])
    assert sorted(h for h, _, _ in await store.list_blobs()) == sorted(hexes[1050:])
    assert [k for k, _ in await store.list_manifests()] == keys[2:]
    await store.delete_manifests(keys[2:])
    assert await store.list_manifests() == []


async def test_cleanup_tmp_after_whole_writes_removes_nothing_stored(
    store: Store, backend: Backend, tmp_path: Path
) -> None:
    items = [blob(tmp_path / f"f{i}", b"whole %d" % i) for i in range(3)]
    assert await store.put_blobs(items) == 3
    key = await store.put_manifest(hashlib.md5(b"artifact").hexdigest(), b"{}")

    assert await store.cleanup_tmp() == 0

    assert await store.has_blobs([i.md5_hex for i in items]) == {i.md5_hex for i in items}
    assert await store.get_manifest(key) == b"{}"
    assert backend.leftovers() == []


@pytest.mark.parametrize("backend", REMOTE, indirect=True)
async def test_objects_that_are_not_blobs_or_lie_outside_the_store_are_not_listed(
    store: Store, backend: Backend
) -> None:
    """Remote stores only: the local store lists every name under ``blobs/md5/``, as
    it only ever writes blobs there (a stray file would come back from list_blobs)."""
    hexes = [hashlib.md5(str(i).encode()).hexdigest() for i in range(3)]
    backend.seed({blob_key(h): b"abc" for h in hexes})
    backend.seed({"blobs/md5/zz/not-a-blob": b""})
    backend.seed_outside({"blobs/md5/x": b"", blob_key(hexes[0]): b"abc"})

    assert sorted(h for h, _, _ in await store.list_blobs()) == sorted(hexes)
    await store.delete_blobs(hexes)
    assert await store.list_blobs() == []


# -- reading back through the cache (remote stores) ----------------------------------


@pytest.mark.parametrize("kind", REMOTE)
def test_download_through_the_cache_reads_each_blob_once(
    request: pytest.FixtureRequest, kind: str, tmp_path: Path
) -> None:
    """Remote stores only: a local store is read in place, not through the blob cache
    (test_download_cache.py covers the cache for it, with ``use_cache=True``)."""
    home = tmp_path / "home"
    if kind == "s3":
        url = f"s3://{request.getfixturevalue('s3').bucket()}/dl"
        make = small_s3_store
    else:
        url = f"gs://{request.getfixturevalue('gcs').bucket()}/dl"
        make = small_gcs_store  # type: ignore[assignment]
    files = {"a.txt": b"alpha", "d/b.bin": os.urandom(900 * KiB), "d/c.bin": os.urandom(7 * MiB)}
    items = {name: blob(tmp_path / name.replace("/", "_"), data) for name, data in files.items()}

    async def upload() -> None:
        remote = make(url, home / "uploads")
        try:
            await remote.put_blobs(list(items.values()))
        finally:
            await remote.close()

    asyncio.run(upload())
    manifest = Manifest(
        {
            name: ManifestEntry(name, base64.b64encode(bytes.fromhex(i.md5_hex)).decode(), i.size)
            for name, i in items.items()
        }
    )
    cache = BlobCache(tmp_path / "cache")
    first = download_manifest(url, manifest, tmp_path / "root", cache=cache, home=home)
    again = download_manifest(url, manifest, tmp_path / "root2", cache=cache, home=home)
    for name, data in files.items():
        assert (tmp_path / "root" / name).read_bytes() == data
        assert (tmp_path / "root2" / name).read_bytes() == data
    assert first.fetched == 3 and again.fetched == 0 and again.cache_hits == 3
