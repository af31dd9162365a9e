"""part_md5s: per-part Content-MD5s and the S3 multipart ETag they add up to."""

from __future__ import annotations

import base64
import hashlib
import random
from pathlib import Path

import pytest

from artisync._core import part_md5s

# Not a multiple of the core's 1 MiB read buffer, so parts straddle its reads.
PART = (1 << 20) + 7


def expected_parts(data: bytes, part_size: int) -> tuple[list[str], str]:
    """The parts' base64 MD5s and the ETag, computed with hashlib alone."""
    slices = [data[i : i + part_size] for i in range(0, len(data), part_size)] or [b""]
    raw = [hashlib.md5(s).digest() for s in slices]
    etag = hashlib.md5(b"".join(raw)).hexdigest() + f"-{len(raw)}"
    return [base64.b64encode(d).decode() for d in raw], etag


@pytest.mark.parametrize(
    ("size", "part_size", "count"),
    [
        (3 * PART, PART, 3),
        (3 * PART + 1234, PART, 4),
        (PART // 2, PART, 1),
        (0, PART, 1),
        (100, 1, 100),
    ],
    ids=[
        "a_file_an_exact_multiple_of_the_part_size",
        "a_file_not_a_multiple_of_the_part_size",
        "a_file_smaller_than_one_part",
        "an_empty_file_as_one_empty_part",
        "one_byte_parts",
    ],
)
def test_parts_and_etag_equal_an_independent_computation_for(
    tmp_path: Path, size: int, part_size: int, count: int
) -> None:
    data = random.Random(size).randbytes(size)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    parts, etag = expected_parts(data, part_size)

    result = part_md5s(path, part_size)

    assert len(result.parts) == count
    assert result.parts == parts
    assert result.etag == etag
    assert result.part_size == part_size
    assert result.size == size


def test_an_empty_file_has_the_empty_md5_as_its_only_part(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")

    result = part_md5s(str(path), PART)

    assert result.parts == ["1B2M2Y8AsgTpgAmY7PhCfg=="]
    assert result.etag == hashlib.md5(hashlib.md5(b"").digest()).hexdigest() + "-1"


def test_one_thread_gives_the_same_results_as_many(tmp_path: Path) -> None:
    data = random.Random(5).randbytes(5 * PART + 99)
    path = tmp_path / "f.bin"
    path.write_bytes(data)

    one, three, default = (part_md5s(path, PART, threads=t) for t in (1, 3, None))

    assert one.parts == three.parts == default.parts == expected_parts(data, PART)[0]
    assert one.etag == three.etag == default.etag == expected_parts(data, PART)[1]


def test_a_zero_part_size_raises_value_error(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"data")

    with pytest.raises(ValueError):
        part_md5s(path, 0)


def test_a_missing_file_raises_file_not_found_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "missing"

    with pytest.raises(FileNotFoundError) as caught:
        part_md5s(missing, PART)

    assert caught.value.filename == str(missing)
