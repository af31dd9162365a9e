"""MD5 in SIMD lanes: every level this CPU runs gives hashlib's digests, in any batch.

``hash_files`` and ``part_md5s`` hash many streams at once (``rust/hash_lanes.rs``);
``simd=`` forces a level, so each one (scalar, SSE, AVX2, AVX-512 where the CPU has it)
is checked against ``hashlib.md5`` and against the others.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from artisync._core import hash_files, part_md5s, simd_levels

# The sizes around MD5's 64-byte block and its 56-byte padding limit, a page, and one
# past the core's 1 MiB buffer (and its 128 KiB lane piece).
ISSUE_SIZES = [0, 1, 55, 56, 63, 64, 65, 119, 120, 4096, (1 << 20) + 1]
PIECE = 128 << 10
LEVELS = ["auto", *simd_levels()]


def content(size: int, seed: int) -> bytes:
    """``size`` bytes that differ from one ``seed`` to the next (a 251-byte cycle)."""
    cycle = bytes((i * 31 + seed * 7) % 251 for i in range(251))
    return (cycle * (size // 251 + 1))[:size]


def write_batch(root: Path, sizes: list[int]) -> tuple[list[Path], list[str]]:
    paths, want = [], []
    for i, size in enumerate(sizes):
        data = content(size, i)
        path = root / f"{i:04d}"
        path.write_bytes(data)
        paths.append(path)
        want.append(hashlib.md5(data).hexdigest())
    return paths, want


def test_the_levels_are_named_best_first_and_scalar_is_always_there() -> None:
    levels = simd_levels()
    assert levels[-1] == "scalar"
    assert set(levels) <= {"avx512", "avx2", "sse4.2", "sse2", "neon", "scalar"}


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("threads", [1, 2])
def test_the_issue_sizes_mixed_in_one_batch_give_hashlib_digests(
    tmp_path: Path, level: str, threads: int
) -> None:
    # Three of each, shuffled by a fixed permutation: lanes of every length side by side.
    sizes = [ISSUE_SIZES[(i * 7) % len(ISSUE_SIZES)] for i in range(3 * len(ISSUE_SIZES))]
    paths, want = write_batch(tmp_path, sizes)
    got = hash_files(paths, threads=threads, simd=level)
    assert [d.md5_hex for d in got] == want
    assert [d.size for d in got] == sizes
    assert [d.path for d in got] == [str(p) for p in paths]


@pytest.mark.parametrize("level", LEVELS)
def test_a_lone_file_and_a_full_worker_of_one_size_give_hashlib_digests(
    tmp_path: Path, level: str
) -> None:
    for size in [0, 65, PIECE + 1]:
        for count in [1, 53]:  # one file alone; more than a worker's 48 slots
            root = tmp_path / f"{count}x{size}"
            root.mkdir()
            paths, want = write_batch(root, [size] * count)
            assert [d.md5_hex for d in hash_files(paths, threads=1, simd=level)] == want


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    sizes=st.lists(
        st.one_of(
            st.integers(0, 200),
            st.integers(0, 9000),
            st.integers(0, 3 * PIECE),
            st.integers(0, 40).map(lambda blocks: 64 * blocks),
        ),
        min_size=1,
        max_size=70,
    ),
    threads=st.integers(1, 3),
)
def test_random_batches_give_the_same_digests_on_every_level(
    tmp_path_factory: pytest.TempPathFactory, sizes: list[int], threads: int
) -> None:
    paths, want = write_batch(tmp_path_factory.mktemp("batch"), sizes)
    for level in LEVELS:
        got = [d.md5_hex for d in hash_files(paths, threads=threads, simd=level)]
        assert got == want, f"level {level}"


@pytest.mark.parametrize("level", LEVELS)
def test_part_digests_on_every_level_match_hashlib_per_part(tmp_path: Path, level: str) -> None:
    data = content(3 * (1 << 20) + 12_345, 5)
    path = tmp_path / "f"
    path.write_bytes(data)
    part = 100_003  # not a multiple of a block: parts end mid-block
    got = part_md5s(path, part, simd=level)
    want = [hashlib.md5(data[i : i + part]).digest() for i in range(0, len(data), part)]
    assert [base64.b64decode(p) for p in got.parts] == want
    joined = hashlib.md5(b"".join(want)).hexdigest()
    assert got.etag == f"{joined}-{len(want)}"


def test_an_unknown_or_missing_level_is_a_value_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    with pytest.raises(
        ValueError, match='"avx9000" is not a SIMD level: expected auto or one of avx512'
    ):
        hash_files([path], simd="avx9000")
    with pytest.raises(ValueError, match="not a SIMD level"):
        part_md5s(path, 10, simd="avx9000")
    missing = [n for n in ("avx512", "avx2", "neon") if n not in simd_levels()]
    with pytest.raises(ValueError, match=rf"this CPU cannot run {missing[0]}: it runs "):
        hash_files([path], simd=missing[0])


def test_a_failing_file_in_a_batch_is_named_and_the_batch_hashes_again(tmp_path: Path) -> None:
    paths, want = write_batch(tmp_path, [100 * i for i in range(60)])
    paths[17].unlink()
    with pytest.raises(FileNotFoundError) as raised:
        hash_files(paths)
    assert raised.value.filename == str(paths[17])
    paths[17].write_bytes(content(1700, 17))
    assert [d.md5_hex for d in hash_files(paths)] == want
