"""A real daemon on a GCS store (``gs://bucket/prefix`` on fake-gcs-server, 127.0.0.1):
files small and large (a resumable session of our own, in chunks) and ``gs://``
references commit, and download back verified; killed in the middle of a resumable
upload, the daemon resumes it from the journaled offset.

Chunks are 5 MiB from 6 MiB on, set through the daemon's environment
(``ARTISYNC_PART_SIZE``, ``ARTISYNC_MULTIPART_THRESHOLD``).
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import artisync
from artisync.spool import Spool
from daemon_harness import DaemonProcess, drop, result_of, staged_submission
from remote_versions import download_version
from servers import GCS

MiB = 1 << 20
CHUNK = 5 * MiB
SIZES = {"ARTISYNC_MULTIPART_THRESHOLD": str(6 * MiB), "ARTISYNC_PART_SIZE": str(CHUNK)}


@pytest.fixture
def store_bucket(gcs: GCS) -> str:
    """The bucket of the daemon's store."""
    return gcs.bucket()


@pytest.fixture
def store_url(store_bucket: str) -> str:
    """What the daemon is started with: ``--store gs://bucket/prefix``."""
    return f"gs://{store_bucket}/team/node1"


@pytest.fixture
def daemon(gcs: GCS, home: Path) -> Iterator[DaemonProcess]:
    """A daemon (not started); it inherits ``STORAGE_EMULATOR_HOST`` from ``gcs``."""
    d = DaemonProcess(home)
    yield d
    d.kill()


def _objects(gcs: GCS, bucket: str) -> dict[str, dict[str, object]]:
    page = gcs._call("GET", f"/storage/v1/b/{bucket}/o?maxResults=1000", None, "")
    assert not page.get("nextPageToken")
    return {o["name"]: o for o in page.get("items", [])}


def _blob(md5_hex: str) -> str:
    return f"team/node1/blobs/md5/{md5_hex[:2]}/{md5_hex}"


def test_files_and_gcs_references_commit_to_a_gcs_store_and_download_verified(
    gcs: GCS, store_bucket: str, store_url: str, daemon: DaemonProcess, tmp_path: Path
) -> None:
    daemon.start(SIZES, store=store_url)
    data_bucket = gcs.bucket()
    referenced = {"images/cat.png": os.urandom(3000), "images/dog.png": b"woof", "labels.csv": b"a"}
    for key, data in referenced.items():
        gcs.put(data_bucket, key, data)
    small = tmp_path / "config.json"
    small.write_bytes(b'{"lr": 0.1}')
    large = tmp_path / "model.bin"
    large_data = os.urandom(2 * CHUNK + 777)  # three chunks of a resumable session
    large.write_bytes(large_data)

    with artisync.init(project="proj", home=daemon.home) as run:
        artifact = artisync.Artifact("data", "dataset")
        artifact.add_file(str(small))
        artifact.add_file(str(large), policy="immutable")
        artifact.add_reference(f"gs://{data_bucket}/images", name="images")
        artifact.add_reference(f"gs://{data_bucket}/labels.csv")
        run.log_artifact(artifact)
        artifact.wait(timeout=60)
    assert artifact.version == "v0"

    with daemon.registry() as registry:
        (version,) = registry.list_versions("proj", "data")
    stored = _objects(gcs, store_bucket)
    for data in (small.read_bytes(), large_data):
        md5 = hashlib.md5(data)
        meta = stored[_blob(md5.hexdigest())]
        assert meta["md5Hash"] == base64.b64encode(md5.digest()).decode()
    assert f"team/node1/{version.manifest_key}" in stored
    assert not list((daemon.home / "uploads" / "gcs").glob("*.json")), "no session left"

    root = tmp_path / "out"
    artifact = download_version(daemon.home, store_url, f"proj/data:{version.version}", root)
    cat = artifact.manifest.entries["images/cat.png"]
    assert cat.ref == f"gs://{data_bucket}/images/cat.png"
    assert cat.extra["versionID"] and cat.extra["etag"]
    assert (root / "config.json").read_bytes() == small.read_bytes()
    assert (root / "model.bin").read_bytes() == large_data
    assert (root / "labels.csv").read_bytes() == b"a"
    for key in ("images/cat.png", "images/dog.png"):
        assert (root / key).read_bytes() == referenced[key]


def test_a_daemon_killed_mid_resumable_upload_resumes_from_the_journaled_offset(
    gcs: GCS, store_bucket: str, store_url: str, daemon: DaemonProcess, tmp_path: Path
) -> None:
    spool = Spool(daemon.config.spool)
    payload = os.urandom(3 * CHUNK + 4321)  # four chunks
    sub = staged_submission(spool, "proj", "ckpt", {"model.bin": payload}, metadata={"index": 0})
    drop(spool, sub)
    daemon.start({**SIZES, "ARTISYNC_CRASH_AT": "after_part:2"}, wait_ready=False, store=store_url)
    assert daemon.wait_exit() == -9, daemon.logs()
    md5_hex = hashlib.md5(payload).hexdigest()
    assert (daemon.home / "uploads" / "gcs" / f"{md5_hex}.json").exists()
    assert _blob(md5_hex) not in _objects(gcs, store_bucket)

    daemon.start(SIZES)
    result = result_of(spool, sub.id)
    assert result["status"] == "committed", daemon.logs()
    # Two chunks were committed by the server before the kill: sending resumes after them.
    assert f"key={_blob(md5_hex)} offset={2 * CHUNK} " in daemon.logs()
    assert "event=upload_restarted" not in daemon.logs()
    with daemon.registry() as registry:
        versions = registry.list_versions("proj", "ckpt")
    assert [v.version for v in versions] == ["v0"], "committed exactly once"
    root = tmp_path / "out"
    download_version(daemon.home, store_url, "proj/ckpt:v0", root)
    assert (root / "model.bin").read_bytes() == payload
