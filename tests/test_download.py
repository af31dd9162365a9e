"""Downloads write an artifact version's files into a directory, every byte verified.

Stores here are real local stores filled through ``LocalStore.put_blobs``; the other
download test files import :func:`build_version` from this one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from artisync.download import (
    BlobCache,
    CorruptBlobError,
    MissingContentError,
    ReferenceChangedError,
    UnsupportedEntryError,
    download_manifest,
    read_entry_bytes,
)
from artisync.errors import ArtisyncError, InvalidInputError
from artisync.manifest import ManifestEntry
from download_harness import FILES, blob_file, build_version, digest_of, tree


@pytest.fixture
def cache(tmp_path: Path) -> BlobCache:
    return BlobCache(tmp_path / "cache")


def test_download_writes_every_file_nested_and_empty_ones_included(
    tmp_path: Path, cache: BlobCache
) -> None:
    store, manifest = build_version(tmp_path / "store", FILES)
    report = download_manifest(store, manifest, tmp_path / "out", cache=cache)
    assert tree(tmp_path / "out") == FILES
    assert (report.entries, report.written, report.skipped) == (len(FILES), len(FILES), 0)
    assert report.bytes_written == sum(len(d) for d in FILES.values())


def test_downloaded_files_are_independent_writable_copies(tmp_path: Path, cache: BlobCache) -> None:
    store, manifest = build_version(tmp_path / "store", {"m.bin": b"weights"})
    download_manifest(store, manifest, tmp_path / "out", cache=cache)
    out = tmp_path / "out" / "m.bin"
    blob = blob_file(store, b"weights")
    assert out.stat().st_ino != blob.stat().st_ino
    out.write_bytes(b"edited")
    assert blob.read_bytes() == b"weights"


def test_local_store_downloads_do_not_fill_the_cache(tmp_path: Path, cache: BlobCache) -> None:
    store, manifest = build_version(tmp_path / "store", FILES)
    report = download_manifest(store, manifest, tmp_path / "out", cache=cache)
    assert (report.cache_hits, report.fetched) == (0, 0)
    assert not (cache.directory / "blobs").exists()


def test_a_store_url_is_opened_like_the_daemon_opens_it(tmp_path: Path, cache: BlobCache) -> None:
    store, manifest = build_version(tmp_path / "store", FILES)
    download_manifest(store.url, manifest, tmp_path / "a", cache=cache)
    download_manifest("store", manifest, tmp_path / "b", cache=cache, home=tmp_path)
    assert tree(tmp_path / "a") == tree(tmp_path / "b") == FILES


def test_path_prefix_downloads_only_entries_whose_path_starts_with_it(
    tmp_path: Path, cache: BlobCache
) -> None:
    store, manifest = build_version(tmp_path / "store", FILES)
    report = download_manifest(
        store, manifest, tmp_path / "out", path_prefix="images/cat", cache=cache
    )
    assert set(tree(tmp_path / "out")) == {"images/cat.png", "images/cats/1.png"}
    assert report.entries == 2


def test_file_references_are_copied_from_the_referenced_file(
    tmp_path: Path, cache: BlobCache
) -> None:
    outside = tmp_path / "data" / "table.csv"
    outside.parent.mkdir()
    outside.write_bytes(b"x,y\n1,2\n")
    store, manifest = build_version(tmp_path / "store", {"a.txt": b"a"}, {"ref/t.csv": outside})
    download_manifest(store, manifest, tmp_path / "out", cache=cache)
    assert tree(tmp_path / "out") == {"a.txt": b"a", "ref/t.csv": b"x,y\n1,2\n"}


def test_a_changed_reference_is_an_error_naming_entry_and_file_and_nothing_at_its_name(
    tmp_path: Path, cache: BlobCache
) -> None:
    outside = tmp_path / "t.csv"
    outside.write_bytes(b"logged")
    store, manifest = build_version(tmp_path / "store", {"a.txt": b"a"}, {"t.csv": outside})
    outside.write_bytes(b"edited")
    with pytest.raises(ReferenceChangedError) as caught:
        download_manifest(store, manifest, tmp_path / "out", cache=cache)
    assert "'t.csv'" in str(caught.value) and str(outside) in str(caught.value)
    assert tree(tmp_path / "out") == {"a.txt": b"a"}  # the other entries are there


def test_a_missing_reference_is_an_error_naming_the_file(tmp_path: Path, cache: BlobCache) -> None:
    outside = tmp_path / "t.csv"
    outside.write_bytes(b"logged")
    store, manifest = build_version(tmp_path / "store", {}, {"t.csv": outside})
    outside.unlink()
    with pytest.raises(MissingContentError, match=r"'t\.csv'.*t\.csv"):
        download_manifest(store, manifest, tmp_path / "out", cache=cache)


def test_a_corrupt_blob_is_an_error_naming_entry_and_blob_with_nothing_at_its_name(
    tmp_path: Path, cache: BlobCache
) -> None:
    store, manifest = build_version(tmp_path / "store", FILES)
    blob = blob_file(store, FILES["nested/c.txt"])
    data = bytearray(blob.read_bytes())
    data[100] ^= 0x01
    blob.write_bytes(bytes(data))
    with pytest.raises(CorruptBlobError) as caught:
        download_manifest(store, manifest, tmp_path / "out", cache=cache)
    message = str(caught.value)
    assert "'nested/c.txt'" in message and str(blob) in message
    assert caught.value.path == "nested/c.txt"
    got = tree(tmp_path / "out")
    # Nothing under the entry's name, no temporary left, every other file in place.
    assert got == {p: d for p, d in FILES.items() if p != "nested/c.txt"}


def test_a_corrupt_blob_leaves_the_file_already_at_its_name_alone(
    tmp_path: Path, cache: BlobCache
) -> None:
    store, manifest = build_version(tmp_path / "store", {"a.txt": b"good"})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.txt").write_bytes(b"mine")
    blob_file(store, b"good").write_bytes(b"evil")
    with pytest.raises(CorruptBlobError):
        download_manifest(store, manifest, tmp_path / "out", cache=cache)
    assert tree(tmp_path / "out") == {"a.txt": b"mine"}


def test_every_failing_entry_is_counted_in_the_error(tmp_path: Path, cache: BlobCache) -> None:
    store, manifest = build_version(tmp_path / "store", {"a": b"1", "b": b"2", "c": b"3"})
    for data in (b"1", b"3"):
        blob_file(store, data).write_bytes(b"x")
    with pytest.raises(CorruptBlobError) as caught:
        download_manifest(store, manifest, tmp_path / "out", cache=cache)
    assert caught.value.path == "a"
    assert any("1 other entries failed too" in note for note in caught.value.__notes__)
    assert tree(tmp_path / "out") == {"b": b"2"}


def test_a_blob_missing_from_the_store_is_an_error_naming_entry_and_blob(
    tmp_path: Path, cache: BlobCache
) -> None:
    store, manifest = build_version(tmp_path / "store", {"a.txt": b"a"})
    blob_file(store, b"a").unlink()
    with pytest.raises(MissingContentError, match=r"'a\.txt'.*store has no blob") as caught:
        download_manifest(store, manifest, tmp_path / "out", cache=cache)
    assert isinstance(caught.value, LookupError)


@pytest.mark.parametrize(("ref", "words"), [("s3://bucket/key", "S3"), ("gs://bucket/key", "GCS")])
def test_bucket_references_without_checksum_are_refused_by_name_before_anything_is_written(
    tmp_path: Path, cache: BlobCache, ref: str, words: str
) -> None:
    store, manifest = build_version(tmp_path / "store", {"a.txt": b"a"})
    manifest.entries["remote"] = ManifestEntry("remote", ref, None, ref=ref)
    with pytest.raises(UnsupportedEntryError, match=f"'remote'.*checksum=False.*{words}"):
        download_manifest(store, manifest, tmp_path / "out", cache=cache)
    assert not (tmp_path / "out" / "a.txt").exists()


def test_a_reference_logged_without_checksum_is_refused_by_name(
    tmp_path: Path, cache: BlobCache
) -> None:
    store, manifest = build_version(tmp_path / "store", {})
    uri = (tmp_path / "x").as_uri()
    manifest.entries["x"] = ManifestEntry("x", uri, None, ref=uri)
    with pytest.raises(UnsupportedEntryError, match=r"'x'.*checksum=False"):
        download_manifest(store, manifest, tmp_path / "out", cache=cache)


def test_an_entry_path_escaping_the_root_is_refused(tmp_path: Path, cache: BlobCache) -> None:
    store, manifest = build_version(tmp_path / "store", {"a": b"a"})
    manifest.entries["../escape"] = ManifestEntry("../escape", digest_of(b"a"), 1)
    with pytest.raises(InvalidInputError, match=r"'\.\.'"):
        download_manifest(store, manifest, tmp_path / "out", cache=cache)
    assert not (tmp_path / "escape").exists()


def test_a_directory_in_the_way_is_an_os_error_naming_it(tmp_path: Path, cache: BlobCache) -> None:
    store, manifest = build_version(tmp_path / "store", {"a.txt": b"a"})
    (tmp_path / "out" / "a.txt").mkdir(parents=True)
    with pytest.raises(IsADirectoryError) as caught:
        download_manifest(store, manifest, tmp_path / "out", cache=cache)
    assert caught.value.filename == str(tmp_path / "out" / "a.txt")
    assert not isinstance(caught.value, ArtisyncError)


def test_read_entry_bytes_returns_verified_content(tmp_path: Path, cache: BlobCache) -> None:
    outside = tmp_path / "t.csv"
    outside.write_bytes(b"x,y\n")
    store, manifest = build_version(tmp_path / "store", FILES, {"t.csv": outside})
    assert read_entry_bytes(store, manifest.entries["t.csv"], cache=cache) == b"x,y\n"
    assert (
        read_entry_bytes(store, manifest.entries["nested/c.txt"], cache=cache)
        == FILES["nested/c.txt"]
    )
    blob_file(store, b"alpha\n").write_bytes(b"beta\n\n")
    with pytest.raises(CorruptBlobError, match=r"'a\.txt'"):
        read_entry_bytes(store.url, manifest.entries["a.txt"], cache=cache)
