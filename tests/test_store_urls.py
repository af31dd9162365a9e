"""One way from a store URL to a store, for the daemon and the SDK alike: what the
daemon wrote under a URL, the SDK reads back under the same URL."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from artisync.errors import ArtisyncError
from artisync.sdk.manifest_view import read_committed_manifest
from artisync.spool import Spool
from artisync.store import LocalStore, manifest_key, open_store, shared_store
from daemon_harness import DaemonProcess, drop, result_of, staged_submission
from remote_versions import download_version
from servers import S3

FILES = {"weights.bin": b"\x00\x01" * 5000, "notes.txt": b"epoch 3"}


@pytest.fixture
def daemon(home: Path) -> Iterator[DaemonProcess]:
    process = DaemonProcess(home)
    yield process
    process.kill()


def _commit(daemon: DaemonProcess) -> None:
    spool = Spool(daemon.config.spool)
    sub = staged_submission(spool, "proj", "data", FILES)
    drop(spool, sub)
    assert result_of(spool, sub.id)["status"] == "committed", daemon.logs()


def _check_read_back(home: Path, tmp_path: Path, store_url: str) -> None:
    root = tmp_path / "out"
    artifact = download_version(home, store_url, "proj/data:v0", root)
    assert sorted(artifact.manifest.entries) == sorted(FILES)
    for name, data in FILES.items():
        assert (root / name).read_bytes() == data


def test_a_relative_store_in_config_toml_is_under_the_home_for_daemon_and_sdk(
    home: Path, daemon: DaemonProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (home / "config.toml").write_text('store = "blobs"\n')
    # The SDK runs elsewhere: a relative store must not be taken from the working directory.
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    daemon.start()
    _commit(daemon)
    md5_hex = hashlib.md5(FILES["notes.txt"]).hexdigest()
    assert (home / "blobs" / "blobs" / "md5" / md5_hex[:2] / md5_hex).exists()
    _check_read_back(home, tmp_path, "blobs")
    assert not (elsewhere / "blobs").exists()


def test_a_store_url_in_capitals_is_the_same_bucket_for_daemon_and_sdk(
    s3: S3, home: Path, daemon: DaemonProcess, tmp_path: Path
) -> None:
    bucket = s3.bucket()
    store_url = f"S3://{bucket}/node1"
    daemon.start(store=store_url)
    _commit(daemon)
    md5_hex = hashlib.md5(FILES["notes.txt"]).hexdigest()
    s3.client.head_object(Bucket=bucket, Key=f"node1/blobs/md5/{md5_hex[:2]}/{md5_hex}")
    _check_read_back(home, tmp_path, store_url)


def test_a_process_opens_each_store_url_once(home: Path) -> None:
    first = shared_store("blobs", home)
    assert shared_store("blobs", home) is first, "reused, not opened again"
    assert isinstance(first, LocalStore) and first.root == home / "blobs"
    assert shared_store("FILE://" + str(home / "blobs"), home) is not first  # another URL
    assert open_store("blobs", home) is not first, "open_store always opens a new one"


def test_a_missing_manifest_names_the_store_directory_a_relative_url_means(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    key = manifest_key("0" * 32)
    with pytest.raises(ArtisyncError, match="was the store moved or cleaned") as caught:
        read_committed_manifest("blobs", key, home)
    assert f"missing from the store at {home / 'blobs'}:" in str(caught.value)
