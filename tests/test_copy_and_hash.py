"""copy_and_hash and copy_tree_and_hash: identical copies, hashed in the same pass."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

import file_digests
from artisync._core import FileDigest, copy_and_hash, copy_tree_and_hash

MIB = 1 << 20

# An mtime with non-zero nanoseconds, so copying the destination's stat (or rounding) shows.
MTIME_NS = 1_600_000_000_987_654_321


def write(path: Path, data: bytes) -> Path:
    return file_digests.write(path, data, MTIME_NS)


def assert_digest_of_source(result: FileDigest, src: Path, data: bytes) -> None:
    file_digests.assert_digest_of(result, src, data, MTIME_NS)


@pytest.mark.parametrize(
    "size",
    [0, 1, 2 * MIB, 2 * MIB + 1, 20 * MIB + 5],
    ids=[
        "an_empty_file",
        "a_one_byte_file",
        "the_largest_small_path_file",
        "the_smallest_pipelined_file",
        "a_large_pipelined_file",
    ],
)
def test_copy_is_identical_and_digest_equals_hashlib_for(tmp_path: Path, size: int) -> None:
    data = random.Random(size).randbytes(size)
    src = write(tmp_path / "src.bin", data)
    dst = tmp_path / "dst.bin"

    result = copy_and_hash(src, dst)

    assert dst.read_bytes() == data
    assert result.path == str(src)
    assert_digest_of_source(result, src, data)


def test_stat_fields_are_the_sources_not_the_copys(tmp_path: Path) -> None:
    data = b"stat me"
    src = write(tmp_path / "src", data)
    dst = tmp_path / "dst"

    result = copy_and_hash(src, dst)

    assert result.inode != os.stat(dst).st_ino
    assert_digest_of_source(result, src, data)


def test_an_existing_destination_raises_file_exists_and_is_left_untouched(tmp_path: Path) -> None:
    src = write(tmp_path / "src", b"new content")
    dst = write(tmp_path / "dst", b"old content")
    before = os.stat(dst)

    with pytest.raises(FileExistsError) as caught:
        copy_and_hash(src, dst)

    assert caught.value.filename == str(dst)
    assert dst.read_bytes() == b"old content"
    after = os.stat(dst)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_missing_source_raises_file_not_found_and_leaves_no_destination(tmp_path: Path) -> None:
    src = tmp_path / "missing"
    dst = tmp_path / "dst"

    with pytest.raises(FileNotFoundError) as caught:
        copy_and_hash(src, dst)

    assert caught.value.filename == str(src)
    assert not dst.exists()


def test_fsync_copies_and_hashes_the_same(tmp_path: Path) -> None:
    data = random.Random(3).randbytes(3 * MIB + 17)
    src = write(tmp_path / "src", data)
    dst = tmp_path / "dst"

    result = copy_and_hash(str(src), str(dst), fsync=True)

    assert dst.read_bytes() == data
    assert_digest_of_source(result, src, data)


TREE = {
    "top.txt": 10,
    "empty": 0,
    "dir with spaces/file with spaces.bin": 1000,
    "päth/ファイル.bin": 4096,
    "päth/sub/deeper/still/leaf": 77,
    "big/three-mib": 3 * MIB + 1,
    "a b/x": 5,  # sorts before "a/x": " " < "/" byte-wise
    "a/x": 6,
}


@pytest.mark.parametrize("threads", [1, None], ids=["one_thread", "default"])
def test_copy_tree_copies_a_nested_tree_identically_sorted_by_relative_path(
    tmp_path: Path, threads: int | None
) -> None:
    src_root = tmp_path / "src"
    dst_root = tmp_path / "out" / "dst"  # its parent does not exist yet either
    contents = {
        rel: write(src_root / rel, random.Random(rel).randbytes(size)).read_bytes()
        for rel, size in TREE.items()
    }

    results = copy_tree_and_hash(src_root, dst_root, threads=threads)

    assert [r.path for r in results] == sorted(TREE)
    for result in results:
        data = contents[result.path]
        assert (dst_root / result.path).read_bytes() == data
        assert_digest_of_source(result, src_root / result.path, data)
    copied = {
        os.path.relpath(os.path.join(d, f), dst_root)
        for d, _, files in os.walk(dst_root)
        for f in files
    }
    assert copied == set(TREE)


def test_copy_tree_groups_of_small_files_around_the_limit_match_their_sources(
    tmp_path: Path,
) -> None:
    # Files up to 64 KiB are copied 16 at a time, hashed together in SIMD lanes
    # (rust/copy.rs); 40 files of sizes around that limit cross several groups.
    sizes = [0, 1, 55, 64, 65, 4096, 65535, 65536, 65537, 200_000] * 4
    src_root, dst_root = tmp_path / "src", tmp_path / "dst"
    contents = {
        f"d{i % 3}/f{i:02d}": write(src_root / f"d{i % 3}/f{i:02d}", os.urandom(size)).read_bytes()
        for i, size in enumerate(sizes)
    }

    results = copy_tree_and_hash(src_root, dst_root)

    assert [r.path for r in results] == sorted(contents)
    for result in results:
        data = contents[result.path]
        assert (dst_root / result.path).read_bytes() == data
        assert_digest_of_source(result, src_root / result.path, data)
