"""The local store: blob and manifest layout, atomic and idempotent writes, batching,
durability, and which errors blame the source (reject) and which the store (retry)."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from artisync.errors import InvalidInputError
from artisync.store import (
    BlobItem,
    LocalStore,
    ObjectNotFoundError,
    SourceChangedError,
    StoreUnavailableError,
    blob_key,
    manifest_key,
    open_store,
)
from artisync.store import local as local_module


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def source(directory: Path, data: bytes, name: str | None = None) -> tuple[str, Path]:
    """A file holding ``data``, and its MD5 hex."""
    md5_hex = hashlib.md5(data).hexdigest()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (name or md5_hex)
    path.write_bytes(data)
    return md5_hex, path


def blob_path(store: LocalStore, md5_hex: str) -> Path:
    return store.root / "blobs" / "md5" / md5_hex[:2] / md5_hex


def tmp_entries(store: LocalStore) -> list[str]:
    return sorted(os.listdir(store.root / "tmp"))


# -- blobs ---------------------------------------------------------------------------


async def test_a_blob_is_stored_under_blobs_md5_prefix_hex_with_its_content(
    store: LocalStore, tmp_path: Path
) -> None:
    md5_hex, path = source(tmp_path / "src", b"model weights")

    assert await store.put_blob(md5_hex, path, 13) is True
    await store.sync()

    assert blob_key(md5_hex) == f"blobs/md5/{md5_hex[:2]}/{md5_hex}"
    assert (store.root / blob_key(md5_hex)).read_bytes() == b"model weights"
    assert path.read_bytes() == b"model weights", "a copy leaves the source alone"
    assert await store.has_blob(md5_hex)
    assert await store.open_blob_path(md5_hex) == blob_path(store, md5_hex)
    assert tmp_entries(store) == []


async def test_an_empty_file_is_a_blob_too(store: LocalStore, tmp_path: Path) -> None:
    md5_hex, path = source(tmp_path / "src", b"")

    assert await store.put_blob(md5_hex, path, 0)

    assert blob_path(store, md5_hex).read_bytes() == b""


@pytest.mark.parametrize("move", [False, True], ids=["copy", "move"])
async def test_a_second_put_of_the_same_digest_writes_nothing_and_returns_false(
    store: LocalStore, tmp_path: Path, move: bool
) -> None:
    md5_hex, first = source(tmp_path / "a", b"same content")
    _, second = source(tmp_path / "b", b"same content")
    await store.put_blob(md5_hex, first, 12)
    before = os.stat(blob_path(store, md5_hex))

    assert await store.put_blob(md5_hex, second, 12, move=move) is False
    assert await store.put_blobs([(md5_hex, second, 12, move)]) == 0

    after = os.stat(blob_path(store, md5_hex))
    assert (after.st_ino, after.st_mtime_ns, after.st_ctime_ns) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_ctime_ns,
    )
    assert second.exists(), "a source whose blob is present is left alone, even with move"
    assert tmp_entries(store) == []


async def test_move_renames_the_source_into_place(store: LocalStore, tmp_path: Path) -> None:
    md5_hex, staged = source(tmp_path / "staging", b"a staged snapshot")
    inode = staged.stat().st_ino

    assert await store.put_blob(md5_hex, staged, 17, move=True)

    assert not staged.exists()
    assert blob_path(store, md5_hex).stat().st_ino == inode, "renamed, not copied"
    assert blob_path(store, md5_hex).read_bytes() == b"a staged snapshot"


async def test_move_falls_back_to_a_copy_when_the_rename_crosses_filesystems(
    store: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    md5_hex, staged = source(tmp_path / "staging", b"on another mount")
    real_replace = os.replace

    def replace(src: Any, dst: Any) -> None:
        # What a bind mount does: same st_dev, yet the kernel refuses the rename.
        if Path(src) == staged:
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), str(src), str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)

    assert await store.put_blob(md5_hex, staged, 16, move=True)

    assert blob_path(store, md5_hex).read_bytes() == b"on another mount"
    assert blob_path(store, md5_hex).stat().st_ino != staged.stat().st_ino
    assert tmp_entries(store) == []


async def test_move_from_another_filesystem_copies(store: LocalStore) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == store.root.stat().st_dev:
        pytest.skip("needs /dev/shm on another filesystem than the test's tmp_path")
    directory = shm / f"artisync-test-{os.getpid()}"
    try:
        md5_hex, staged = source(directory, b"from tmpfs")

        assert await store.put_blob(md5_hex, staged, 10, move=True)

        assert blob_path(store, md5_hex).read_bytes() == b"from tmpfs"
        assert tmp_entries(store) == []
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def copy_file_range_that(then: Callable[[], None], monkeypatch: pytest.MonkeyPatch) -> None:
    """Make copies go 1,000 bytes at a time and call ``then`` after the first chunk."""
    real = os.copy_file_range
    calls = 0

    def copy_file_range(src: int, dst: int, count: int, *args: Any) -> int:
        nonlocal calls
        calls += 1
        if calls == 2:
            then()
        return real(src, dst, min(count, 1000), *args)

    monkeypatch.setattr(os, "copy_file_range", copy_file_range)


async def test_a_copy_that_fails_midway_leaves_no_blob_and_no_tmp_file(
    store: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    md5_hex, path = source(tmp_path / "src", os.urandom(5000))

    def disk_full() -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    copy_file_range_that(disk_full, monkeypatch)

    with pytest.raises(StoreUnavailableError) as caught:
        await store.put_blob(md5_hex, path, 5000)

    assert "No space left on device" in str(caught.value)
    assert caught.value.path.startswith(str(store.root / "tmp"))
    assert not blob_path(store, md5_hex).exists()
    assert tmp_entries(store) == []
    monkeypatch.undo()
    assert await store.put_blob(md5_hex, path, 5000), "a retry succeeds"


async def test_a_source_truncated_while_being_copied_leaves_no_blob_and_is_blamed(
    store: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    md5_hex, path = source(tmp_path / "src", os.urandom(5000))
    copy_file_range_that(lambda: os.truncate(path, 1000), monkeypatch)

    with pytest.raises(SourceChangedError) as caught:
        await store.put_blob(md5_hex, path, 5000)

    assert isinstance(caught.value, OSError), "the daemon rejects sources' OSErrors"
    assert caught.value.filename == str(path)
    assert "5000" in str(caught.value) and "1000" in str(caught.value)
    assert not blob_path(store, md5_hex).exists()
    assert tmp_entries(store) == []


async def test_a_read_error_on_the_source_is_blamed_on_the_source(
    store: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    md5_hex, path = source(tmp_path / "src", b"bad sector")

    def io_error(*args: Any) -> int:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "copy_file_range", io_error)
    monkeypatch.setattr(os, "pread", io_error)

    with pytest.raises(OSError) as caught:
        await store.put_blob(md5_hex, path, 10)

    assert not isinstance(caught.value, StoreUnavailableError)
    assert (caught.value.errno, caught.value.filename) == (errno.EIO, str(path))
    assert tmp_entries(store) == []


@pytest.mark.parametrize("move", [False, True], ids=["copy", "move"])
async def test_a_source_of_another_size_than_hashed_is_refused(
    store: LocalStore, tmp_path: Path, move: bool
) -> None:
    md5_hex, path = source(tmp_path / "src", b"grew after hashing")

    with pytest.raises(SourceChangedError) as caught:
        await store.put_blob(md5_hex, path, 4, move=move)

    assert caught.value.filename == str(path)
    assert (caught.value.expected, caught.value.actual) == (4, 18)
    assert path.exists()
    assert not blob_path(store, md5_hex).exists()
    assert tmp_entries(store) == []


@pytest.mark.parametrize("move", [False, True], ids=["copy", "move"])
async def test_a_missing_source_raises_file_not_found_naming_it(
    store: LocalStore, tmp_path: Path, move: bool
) -> None:
    missing = tmp_path / "gone.bin"

    with pytest.raises(FileNotFoundError) as caught:
        await store.put_blob("0" * 32, missing, 3, move=move)

    assert caught.value.filename == str(missing)
    assert tmp_entries(store) == []


async def test_a_directory_source_raises_is_a_directory(store: LocalStore, tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError) as caught:
        await store.put_blob("0" * 32, tmp_path, None)

    assert caught.value.filename == str(tmp_path)


@pytest.mark.parametrize("bad", ["", "ABCDEF" * 5 + "AB", "../" * 10 + "ab", "0" * 31])
async def test_a_digest_that_is_not_md5_hex_is_refused_before_anything_is_written(
    store: LocalStore, tmp_path: Path, bad: str
) -> None:
    md5_hex, path = source(tmp_path / "src", b"ok")

    with pytest.raises(InvalidInputError):
        await store.put_blobs([(md5_hex, path, 2, False), (bad, path, 2, False)])
    with pytest.raises(InvalidInputError):
        await store.has_blobs([bad])

    assert not blob_path(store, md5_hex).exists()


# -- batches -------------------------------------------------------------------------


async def test_has_blobs_returns_the_present_subset(store: LocalStore, tmp_path: Path) -> None:
    stored = [source(tmp_path / "src", f"stored {i}".encode()) for i in range(5)]
    await store.put_blobs([(h, p, None, False) for h, p in stored])
    absent = [hashlib.md5(f"absent {i}".encode()).hexdigest() for i in range(5)]
    present = [h for h, _ in stored]

    asked = [*absent, *present, present[0], absent[0]]  # duplicates are fine
    assert await store.has_blobs(asked) == set(present)
    assert await store.has_blobs([]) == set()
    assert not await store.has_blob(absent[0])


async def test_put_blobs_of_2000_small_files_is_one_batch(
    store: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [source(tmp_path / "src", f"small file {i}".encode()) for i in range(2000)]
    items = [(h, p, p.stat().st_size, False) for h, p in files]
    real_to_thread = asyncio.to_thread
    hops: list[str] = []

    async def to_thread(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(func, "__name__", repr(func)))
        return await real_to_thread(func, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", to_thread)
    fsyncs = count_calls(os, "fsync", monkeypatch)

    assert await store.put_blobs(items) == 2000

    assert len(hops) == 1, "one thread hop for the whole batch, not one per file"
    assert fsyncs == [], "one syncfs for the batch, not an fsync per file"
    for h, p in files:
        assert blob_path(store, h).read_bytes() == p.read_bytes()
    assert await store.has_blobs([h for h, _ in files]) == {h for h, _ in files}
    assert await store.put_blobs(items) == 0
    assert tmp_entries(store) == []


async def test_put_blobs_over_the_batch_limits_stores_everything(
    store: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_module, "BATCH_FILES", 7)
    monkeypatch.setattr(local_module, "BATCH_BYTES", 100)
    files = [source(tmp_path / "src", f"file {i} ".encode() * (i % 5 * 8)) for i in range(40)]
    items = [(h, p, p.stat().st_size, False) for h, p in files]
    items.append(items[3])  # a duplicate within the call counts once

    assert await store.put_blobs(items) == len({h for h, _ in files})

    for h, p in files:
        assert blob_path(store, h).read_bytes() == p.read_bytes()


# -- manifests -----------------------------------------------------------------------


async def test_a_manifest_round_trips_under_its_artifact_digest(store: LocalStore) -> None:
    digest = hashlib.md5(b"an artifact").hexdigest()
    data = json.dumps({"version": 1, "contents": {}}).encode()

    key = await store.put_manifest(digest, data)
    await store.sync()

    assert key == manifest_key(digest) == f"manifests/{digest[:2]}/{digest}.json"
    assert (store.root / key).read_bytes() == data
    assert await store.get_manifest(key) == data
    assert tmp_entries(store) == []


async def test_a_manifest_already_stored_is_kept_as_it_is(store: LocalStore) -> None:
    digest = hashlib.md5(b"an artifact").hexdigest()
    key = await store.put_manifest(digest, b'{"first": true}')
    inode = (store.root / key).stat().st_ino

    assert await store.put_manifest(digest, b'{"second": true}') == key

    assert await store.get_manifest(key) == b'{"first": true}'
    assert (store.root / key).stat().st_ino == inode
    assert tmp_entries(store) == []


async def test_missing_objects_and_foreign_keys_are_refused(store: LocalStore) -> None:
    absent = hashlib.md5(b"never stored").hexdigest()

    with pytest.raises(ObjectNotFoundError) as caught:
        await store.get_manifest(manifest_key(absent))
    assert manifest_key(absent) in str(caught.value) and store.url in str(caught.value)
    with pytest.raises(ObjectNotFoundError):
        await store.open_blob_path(absent)
    for key in ["../../etc/passwd", f"manifests/00/{absent}.json", f"blobs/md5/x/{absent}"]:
        with pytest.raises(InvalidInputError):
            await store.get_manifest(key)


# -- durability and leftovers --------------------------------------------------------


def count_calls(module: Any, name: str, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record the first argument of every call to ``module.name`` (still calling it)."""
    real = getattr(module, name)
    calls: list[Any] = []

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[0] if args else None)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


async def test_a_batch_is_on_disk_before_any_blob_gets_its_name_and_sync_syncs_again(
    store: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Names before data would let a power cut leave empty files at final names, which
    # has_blobs would then report as present forever.
    events: list[str] = []
    real_syncfs = store._syncfs
    assert real_syncfs is not None, "syncfs is in every Linux libc the daemon runs on"

    def syncfs(fd: int) -> int:
        events.append("syncfs")
        return real_syncfs(fd)

    real_replace = os.replace

    def replace(src: Any, dst: Any) -> None:
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(store, "_syncfs", syncfs)
    monkeypatch.setattr(os, "replace", replace)
    files = [source(tmp_path / "src", f"file {i}".encode()) for i in range(3)]
    moved_md5, staged = source(tmp_path / "staging", b"moved")

    await store.put_blobs([*((h, p, None, False) for h, p in files), (moved_md5, staged, 5, True)])
    await store.sync()

    assert events == ["syncfs", "rename", "rename", "rename", "rename", "syncfs"]


async def test_without_syncfs_each_file_and_each_renamed_into_directory_is_fsynced(
    store: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "_syncfs", None)
    files = [source(tmp_path / "src", f"file {i}".encode()) for i in range(3)]
    digest = hashlib.md5(b"artifact").hexdigest()
    fsyncs = count_calls(os, "fsync", monkeypatch)

    await store.put_blobs([(h, p, None, False) for h, p in files])
    assert len(fsyncs) == 3, "each blob's data is durable before its name"
    await store.put_manifest(digest, b"{}")
    assert len(fsyncs) == 4
    fsyncs.clear()
    renamed_into = {blob_path(store, h).parent for h, _ in files}
    renamed_into.add((store.root / manifest_key(digest)).parent)
    opened = count_calls(os, "open", monkeypatch)

    await store.sync()

    synced = {Path(p) for p in opened}
    assert len(fsyncs) == len(opened)
    assert renamed_into <= synced, "every directory that received a rename"
    assert store.root / "blobs" / "md5" in synced, "and where new fan-out dirs were made"
    fsyncs.clear()
    await store.sync()
    assert fsyncs == [], "nothing new, nothing to sync"


async def test_cleanup_tmp_removes_what_interrupted_writes_left(store: LocalStore) -> None:
    tmp = store.root / "tmp"
    (tmp / "0123.blob.4242.deadbeef.0").write_bytes(b"half a blob")
    (tmp / "a dir").mkdir()
    (tmp / "a dir" / "inside").write_bytes(b"x")

    assert await store.cleanup_tmp() == 2

    assert tmp_entries(store) == []
    assert await store.cleanup_tmp() == 0


def test_the_layout_is_created_and_reopening_keeps_the_content(tmp_path: Path) -> None:
    root = tmp_path / "deep" / "store"
    first = LocalStore(root)
    md5_hex, path = source(tmp_path / "src", b"kept")
    asyncio.run(first.put_blob(md5_hex, path, 4))

    again = LocalStore(root)

    assert {p.name for p in root.iterdir()} == {"blobs", "manifests", "tmp"}
    assert again.root == root and again.url == root.as_uri()
    assert asyncio.run(again.has_blob(md5_hex))


# Run in a child process: as root, that child drops the capabilities that let root
# write anywhere, so a mode-555 store is read-only to it as it would be to anyone.
_UNWRITABLE_CHILD = """
import asyncio, json, sys
from pathlib import Path
from artisync.store import LocalStore, StoreUnavailableError

root, md5_hex, source, unreadable_root, unreadable = sys.argv[1:6]

async def attempt(call):
    try:
        await call()
    except StoreUnavailableError as e:
        return ["StoreUnavailableError", e.path, str(e)]
    except OSError as e:
        return [type(e).__name__, e.filename, str(e)]
    return ["no error"]

async def main():
    store = LocalStore(Path(root))
    writable = LocalStore(Path(unreadable_root))
    return {
        "copy": await attempt(lambda: store.put_blob(md5_hex, Path(source), 4)),
        "move": await attempt(lambda: store.put_blob(md5_hex, Path(source), 4, move=True)),
        "manifest": await attempt(lambda: store.put_manifest(md5_hex, b"{}")),
        "unreadable source": await attempt(
            lambda: writable.put_blob(md5_hex, Path(unreadable), 4)
        ),
    }

print(json.dumps(asyncio.run(main())))
"""


def test_an_unwritable_store_is_unavailable_and_an_unreadable_source_is_not(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    LocalStore(root)
    md5_hex, path = source(tmp_path / "src", b"data")
    # The fan-out directories exist, so the writes fail on the files themselves.
    for key in (blob_key(md5_hex), manifest_key(md5_hex)):
        (root / key).parent.mkdir(parents=True, exist_ok=True)
    for directory, _, _ in os.walk(root):
        os.chmod(directory, 0o555)
    _, unreadable = source(tmp_path / "secret", b"data")
    unreadable.chmod(0o000)
    command = [
        sys.executable,
        "-c",
        _UNWRITABLE_CHILD,
        *(str(root), md5_hex, str(path), str(tmp_path / "other"), str(unreadable)),
    ]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root and setpriv (util-linux) is not installed")
        command = [setpriv, "--bounding-set", "-dac_override,-dac_read_search", *command]

    try:
        child = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    finally:
        for directory, _, _ in os.walk(root):
            os.chmod(directory, 0o755)

    report = json.loads(child.stdout)
    for operation in ("copy", "move", "manifest"):
        kind, failed_path, message = report[operation]
        assert kind == "StoreUnavailableError", (operation, report[operation])
        assert failed_path.startswith(str(root)), (operation, failed_path)
        assert failed_path in message and "Permission denied" in message
    assert path.exists(), "a refused move leaves the source where it was"
    assert report["unreadable source"][:2] == ["PermissionError", str(unreadable)]


# -- open_store ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("{tmp}/abs", "abs"),
        ("file://{tmp}/from%20url", "from url"),
        ("file://localhost{tmp}/localhost", "localhost"),
        ("relative/st:ore", "home/relative/st:ore"),
    ],
    ids=["an_absolute_path", "a_file_url", "a_file_url_with_localhost", "a_relative_path"],
)
def test_open_store_gives_a_local_store_for(tmp_path: Path, url: str, where: str) -> None:
    store = open_store(url.format(tmp=tmp_path), tmp_path / "home")

    assert isinstance(store, LocalStore)
    assert store.root == tmp_path / where
    assert (store.root / "blobs" / "md5").is_dir()


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("s3://bucket/prefix", "not supported yet (coming in the S3/GCS issue)"),
        ("gs://bucket/prefix", "not supported yet (coming in the S3/GCS issue)"),
        ("http://example.com/store", "unknown scheme 'http'"),
        ("file://otherhost/store", "not host 'otherhost'"),
        ("file://relative", "not host 'relative'"),
        ("  ", "empty"),
    ],
)
def test_open_store_refuses_with_a_clear_error(tmp_path: Path, url: str, says: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        open_store(url, tmp_path)

    assert says in str(caught.value)
    assert not any(tmp_path.iterdir()), "nothing is created for a refused URL"


async def test_a_source_modified_after_hashing_is_refused_even_at_the_same_size(
    tmp_path: Path,
) -> None:
    store = LocalStore(tmp_path / "store")
    source = tmp_path / "weights.bin"
    source.write_bytes(b"before")
    hashed_at = source.stat().st_mtime_ns
    md5_hex = hashlib.md5(b"before").hexdigest()
    source.write_bytes(b"after!")  # same size, other bytes
    os.utime(source, ns=(hashed_at + 1_000_000, hashed_at + 1_000_000))
    with pytest.raises(SourceChangedError, match="modified after it was hashed"):
        await store.put_blobs([BlobItem(md5_hex, source, 6, False, hashed_at)])
    assert not await store.has_blobs([md5_hex])
