"""A second download into the same root keeps what is unchanged and replaces the rest."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from artisync.download import BlobCache, download_manifest
from download_harness import FILES, blob_file, build_version, tree


@pytest.fixture
def cache(tmp_path: Path) -> BlobCache:
    return BlobCache(tmp_path / "cache")


def test_a_second_download_skips_unchanged_files_without_rewriting_them(
    tmp_path: Path, cache: BlobCache
) -> None:
    store, manifest = build_version(tmp_path / "store", FILES)
    out = tmp_path / "out"
    download_manifest(store, manifest, out, cache=cache)
    before = {p: os.stat(out / p) for p in FILES}
    report = download_manifest(store, manifest, out, cache=cache)
    assert (report.written, report.skipped) == (0, len(FILES))
    for path, st in before.items():
        now = os.stat(out / path)
        assert (now.st_ino, now.st_mtime_ns, now.st_ctime_ns) == (
            st.st_ino,
            st.st_mtime_ns,
            st.st_ctime_ns,
        )


def test_unchanged_files_are_skipped_without_reading_the_store(
    tmp_path: Path, cache: BlobCache
) -> None:
    store, manifest = build_version(tmp_path / "store", {"a.txt": b"a"})
    out = tmp_path / "out"
    download_manifest(store, manifest, out, cache=cache)
    blob_file(store, b"a").write_bytes(b"b")  # a read would fail verification
    report = download_manifest(store, manifest, out, cache=cache)
    assert report.skipped == 1
    assert (out / "a.txt").read_bytes() == b"a"


@pytest.mark.parametrize(
    "change",
    ["same-size edit", "edit with mtime put back", "append", "delete", "replace by rename"],
)
def test_a_file_changed_since_the_download_is_replaced_by_a_fresh_copy(
    tmp_path: Path, cache: BlobCache, change: str
) -> None:
    store, manifest = build_version(tmp_path / "store", FILES)
    out = tmp_path / "out"
    download_manifest(store, manifest, out, cache=cache)
    target = out / "nested" / "c.txt"
    st = os.stat(target)
    if change == "same-size edit":
        with open(target, "r+b") as f:
            f.write(b"G")
    elif change == "edit with mtime put back":
        with open(target, "r+b") as f:
            f.write(b"G")
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    elif change == "append":
        with open(target, "ab") as f:
            f.write(b"!")
    elif change == "delete":
        target.unlink()
    else:
        other = out / "other"
        other.write_bytes(b"x" * st.st_size)
        os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
        other.replace(target)
    report = download_manifest(store, manifest, out, cache=cache)
    assert (report.written, report.skipped) == (1, len(FILES) - 1)
    assert tree(out) == FILES


def test_the_record_of_a_root_is_kept_outside_it(tmp_path: Path, cache: BlobCache) -> None:
    store, manifest = build_version(tmp_path / "store", FILES)
    download_manifest(store, manifest, tmp_path / "out", cache=cache)
    assert set(tree(tmp_path / "out")) == set(FILES)
    assert len(list((cache.directory / "roots").iterdir())) == 1


def test_a_partial_download_is_remembered_for_the_full_one(
    tmp_path: Path, cache: BlobCache
) -> None:
    store, manifest = build_version(tmp_path / "store", FILES)
    out = tmp_path / "out"
    first = download_manifest(store, manifest, out, path_prefix="images/", cache=cache)
    second = download_manifest(store, manifest, out, cache=cache)
    assert second.skipped == first.written == 3
    assert second.written == len(FILES) - 3


def test_another_version_into_the_same_root_rewrites_only_what_differs(
    tmp_path: Path, cache: BlobCache
) -> None:
    store, v1 = build_version(tmp_path / "store", FILES)
    changed = {**FILES, "a.txt": b"alpha v2\n"}
    _, v2 = build_version(tmp_path / "store", changed)
    out = tmp_path / "out"
    download_manifest(store, v1, out, cache=cache)
    report = download_manifest(store, v2, out, cache=cache)
    assert (report.written, report.skipped) == (1, len(FILES) - 1)
    assert tree(out) == changed


def test_a_root_reached_through_a_symlink_shares_its_record(
    tmp_path: Path, cache: BlobCache
) -> None:
    store, manifest = build_version(tmp_path / "store", FILES)
    download_manifest(store, manifest, tmp_path / "out", cache=cache)
    (tmp_path / "link").symlink_to(tmp_path / "out")
    report = download_manifest(store, manifest, tmp_path / "link", cache=cache)
    assert report.skipped == len(FILES)
