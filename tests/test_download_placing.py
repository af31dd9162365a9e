"""``_core.copy_verify_many``: verified copies given their names only when they match."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from artisync import _core


def hidden(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(".")]


def test_each_item_gets_its_own_result_in_order(tmp_path: Path) -> None:
    src = tmp_path / "src"
    sizes = [0, 5, (1 << 20) + 7, 5 << 20]  # empty, small, two buffers, a kernel copy
    items = []
    for i, size in enumerate(sizes):
        data = os.urandom(size)
        (tmp_path / f"s{i}").write_bytes(data)
        items.append((tmp_path / f"s{i}", tmp_path / f"d{i}", hashlib.md5(data).hexdigest()))
    items.append((src, tmp_path / "missing", "0" * 32))
    items.append((tmp_path / "s1", tmp_path / "wrong", "F" * 32))
    results = _core.copy_verify_many(items, tag="t", threads=2)
    for (s, d, md5_hex), result in zip(items[:4], results, strict=False):
        assert isinstance(result, _core.PlacedFile) and result.written
        assert d.read_bytes() == s.read_bytes()
        st = os.stat(d)
        assert (result.md5_hex, result.size, result.inode) == (md5_hex, st.st_size, st.st_ino)
        assert (result.mtime_ns, result.ctime_ns) == (st.st_mtime_ns, st.st_ctime_ns)
    missing, wrong = results[4], results[5]
    assert isinstance(missing, FileNotFoundError) and missing.filename == str(src)
    assert isinstance(wrong, _core.PlacedFile) and not wrong.written
    assert wrong.md5_hex == hashlib.md5((tmp_path / "s1").read_bytes()).hexdigest()
    assert not (tmp_path / "wrong").exists() and not (tmp_path / "missing").exists()
    assert hidden(tmp_path) == []


def test_a_matching_copy_replaces_what_is_at_its_name(tmp_path: Path) -> None:
    (tmp_path / "s").write_bytes(b"new")
    (tmp_path / "d").write_bytes(b"old")
    (tmp_path / "d").chmod(0o444)  # replaced by a rename: its own mode does not matter
    [result] = _core.copy_verify_many(
        [(tmp_path / "s", tmp_path / "d", hashlib.md5(b"new").hexdigest())], tag="t"
    )
    assert not isinstance(result, OSError) and result.written
    assert (tmp_path / "d").read_bytes() == b"new"


@pytest.mark.parametrize(
    ("md5_hex", "tag"), [("xyz", "t"), ("0" * 31, "t"), ("0" * 32, ""), ("0" * 32, "a/b")]
)
def test_bad_digests_and_tags_are_value_errors_before_any_copy(
    tmp_path: Path, md5_hex: str, tag: str
) -> None:
    (tmp_path / "s").write_bytes(b"x")
    with pytest.raises(ValueError):
        _core.copy_verify_many([(tmp_path / "s", tmp_path / "d", md5_hex)], tag=tag)
    assert not (tmp_path / "d").exists()
