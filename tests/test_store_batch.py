"""Hashing and storing in one read: the local store stages files without a digest a
batch at a time (hash, copy into tmp/), and names a batch only when asked."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from artisync import _core
from artisync.store import LocalStore, SourceChangedError, StoreUnavailableError
from artisync.store import local as local_module
from artisync.store.local import StagedFiles


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def files_in(directory: Path, contents: list[bytes]) -> list[tuple[Path, int | None]]:
    directory.mkdir(parents=True, exist_ok=True)
    out: list[tuple[Path, int | None]] = []
    for i, data in enumerate(contents):
        path = directory / f"f{i:03d}"
        path.write_bytes(data)
        out.append((path, len(data)))
    return out


async def stage_all(store: LocalStore, files: list[tuple[Path, int | None]]) -> list[StagedFiles]:
    return [batch async for batch in store.stage_files(files)]


def blob(store: LocalStore, data: bytes) -> Path:
    md5_hex = hashlib.md5(data).hexdigest()
    return store.root / "blobs" / "md5" / md5_hex[:2] / md5_hex


def tmp_entries(store: LocalStore) -> list[str]:
    return sorted(os.listdir(store.root / "tmp"))


async def test_staged_digests_are_those_of_hash_files_and_naming_stores_the_bytes(
    store: LocalStore, tmp_path: Path
) -> None:
    contents = [b"", b"small", os.urandom(3 << 20), b"small"]  # a large one, a twin
    files = files_in(tmp_path / "src", contents)

    (batch,) = await stage_all(store, files)

    expected = _core.hash_files([path for path, _ in files])
    assert [(d.digest, d.size, d.mtime_ns, d.inode) for d in batch.digests] == [
        (d.digest, d.size, d.mtime_ns, d.inode) for d in expected
    ]
    assert len(batch.files) == 3, "the twin is copied once"
    # The small ones are written at their names already, under the batch's journal;
    # the large one waits in tmp/ for its name.
    assert [blob(store, data).exists() for data in contents] == [True, True, False, True]
    assert sorted(name.rsplit(".", 1)[-1] for name in tmp_entries(store)) == ["2", "blobs"]
    assert await store.put_staged(batch) == 3
    for data in contents:
        assert blob(store, data).read_bytes() == data
    assert tmp_entries(store) == [], "the journal goes once the batch is durable"


async def test_a_file_whose_blob_is_stored_is_hashed_but_not_copied(
    store: LocalStore, tmp_path: Path
) -> None:
    files = files_in(tmp_path / "src", [b"already there", b"new"])
    (first,) = await stage_all(store, files[:1])
    await store.put_staged(first)

    (batch,) = await stage_all(store, files)

    assert [d.md5_hex for d in batch.digests] == [
        hashlib.md5(b"already there").hexdigest(),
        hashlib.md5(b"new").hexdigest(),
    ]
    assert [md5_hex for md5_hex, _ in batch.files] == [hashlib.md5(b"new").hexdigest()]


async def test_discarding_a_staged_batch_leaves_nothing_in_tmp(
    store: LocalStore, tmp_path: Path
) -> None:
    large = os.urandom(100_000)
    files = files_in(tmp_path / "src", [b"one", large])
    (batch,) = await stage_all(store, files)
    assert len(tmp_entries(store)) == 2  # the large one's copy, the small one's journal

    await store.discard_staged(batch)

    assert tmp_entries(store) == []
    assert not blob(store, large).exists()
    # Whole at its name, and perhaps trusted by another batch already: it stays.
    assert await store.has_blob(hashlib.md5(b"one").hexdigest())


async def test_batches_come_one_at_a_time_in_order(
    store: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_module, "BATCH_FILES", 3)
    contents = [f"file {i}".encode() for i in range(8)]
    files = files_in(tmp_path / "src", contents)

    batches = await stage_all(store, files)

    assert [len(b.digests) for b in batches] == [3, 3, 2]
    digests = [d.md5_hex for b in batches for d in b.digests]
    assert digests == [hashlib.md5(c).hexdigest() for c in contents]
    for b in batches:
        await store.put_staged(b)
    assert all(blob(store, c).exists() for c in contents)


async def test_a_bad_source_in_a_batch_is_raised_and_leaves_no_copy(
    store: LocalStore, tmp_path: Path
) -> None:
    files = files_in(tmp_path / "src", [b"good", b"also good"])
    missing = tmp_path / "src" / "gone"
    files.insert(1, (missing, 4))

    with pytest.raises(FileNotFoundError) as caught:
        await stage_all(store, files)

    assert caught.value.filename == str(missing)
    assert tmp_entries(store) == []
    assert not blob(store, b"good").exists()


async def test_a_staged_copy_gone_before_naming_is_the_stores_fault(
    store: LocalStore, tmp_path: Path
) -> None:
    large = os.urandom(100_000)  # a copy in tmp/, not written in place
    files = files_in(tmp_path / "src", [large])
    (batch,) = await stage_all(store, files)
    for _, copy in batch.files:
        os.unlink(copy)  # what a second daemon's cleanup of tmp/ would do

    with pytest.raises(StoreUnavailableError) as caught:
        await store.put_staged(batch)

    assert caught.value.path.startswith(str(store.root))
    assert "No such file or directory" in str(caught.value)
    assert not blob(store, large).exists()


async def test_put_blobs_reports_one_outcome_per_request_in_order(tmp_path: Path) -> None:
    store_root = tmp_path / "store"
    (store_root / "blobs").mkdir(parents=True)
    (store_root / "tmp").mkdir()
    files = files_in(tmp_path / "src", [b"a", b"b", b"a"])
    requests = [(path, None, None, None, False, False) for path, _ in files]
    requests.append(
        (tmp_path / "src" / "missing", hashlib.md5(b"m").hexdigest(), 1, None, False, False)
    )

    outcomes = _core.put_blobs(store_root / "blobs", store_root / "tmp", requests, tag="t")

    assert [o.status for o in outcomes] == ["not_stored", "not_stored", "present", "source"]
    error = outcomes[3].error
    assert isinstance(error, FileNotFoundError)
    assert error.filename == str(tmp_path / "src" / "missing")
    assert os.listdir(store_root / "tmp") == []
    with pytest.raises(ValueError, match="not an MD5"):
        _core.put_blobs(
            store_root / "blobs",
            store_root / "tmp",
            [(files[0][0], "ab", 1, None, False, False)],
            tag="t",
        )
    with pytest.raises(ValueError, match="tag"):
        _core.put_blobs(store_root / "blobs", store_root / "tmp", [], tag="a/b")


async def test_a_stored_blob_of_another_size_than_recorded_is_refused(
    store: LocalStore, tmp_path: Path
) -> None:
    """A snapshot whose recorded size is wrong must not commit just because a blob with
    its digest is stored: the manifest would carry the wrong size."""
    ((path, size),) = files_in(tmp_path / "src", [b"twelve bytes"])
    md5_hex = hashlib.md5(b"twelve bytes").hexdigest()
    await store.put_blobs([(md5_hex, path, size)])
    with pytest.raises(SourceChangedError, match="13"):
        await store.put_blobs([(md5_hex, path, size + 1, True)])
    assert await store.put_blobs([(md5_hex, path, size, True)]) == 0  # right size: present
    assert blob(store, b"twelve bytes").read_bytes() == b"twelve bytes"
