"""Remote references through the whole system: SDK → real daemon → registry → download.

S3 (moto) and HTTP (an aiohttp file server, with and without ETag) here, on the local
store; GCS references on a GCS store are in test_daemon_remote_gcs.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import artisync
from artisync.download import MissingContentError
from artisync.download.downloader import RemoteReferenceChangedError
from artisync.errors import RejectedError
from daemon_harness import DaemonProcess
from servers import S3, HttpFiles


@pytest.fixture
def local_daemon(home: Path) -> Iterator[DaemonProcess]:
    """A daemon on the local store, for references that need no bucket."""
    daemon = DaemonProcess(home)
    daemon.start()
    yield daemon
    daemon.kill()


@pytest.fixture
def s3_daemon(s3: S3, home: Path) -> Iterator[DaemonProcess]:
    """A daemon started after ``s3`` set the AWS_* environment, which it inherits."""
    daemon = DaemonProcess(home)
    daemon.start()
    yield daemon
    daemon.kill()


def test_logged_s3_references_download_back_as_the_logged_versions(
    s3: S3, s3_daemon: DaemonProcess, tmp_path: Path
) -> None:
    bucket = s3.bucket(versioned=True)
    files = {"images/cat.png": os.urandom(3000), "images/sub/dog.png": b"woof", "model.h5": b"w"}
    s3.put_many(bucket, files)
    with artisync.init(project="proj", home=s3_daemon.home) as run:
        artifact = artisync.Artifact("data", "dataset")
        artifact.add_reference(f"s3://{bucket}/images", name="images")
        artifact.add_reference(f"s3://{bucket}/model.h5")
        assert sorted(artifact.manifest.entries) == ["images", "model.h5"]  # before expansion
        run.log_artifact(artifact).wait(timeout=60)

    logged = artisync.Api(home=s3_daemon.home).artifact("proj/data:v0")
    entries = logged.manifest.entries
    assert sorted(entries) == ["images/cat.png", "images/sub/dog.png", "model.h5"]
    cat = entries["images/cat.png"]
    assert cat.ref == f"s3://{bucket}/images/cat.png"
    assert cat.size == 3000 and cat.extra["etag"] == cat.digest and cat.extra["versionID"]

    s3.put(bucket, "images/cat.png", b"overwritten after logging")
    root = Path(logged.download(root=tmp_path / "out"))
    for key, data in files.items():
        name = key if key.startswith("images/") else "model.h5"
        assert (root / name).read_bytes() == data
    assert logged.download(root=tmp_path / "out") == str(root)  # unchanged: skipped

    version = entries["model.h5"].extra["versionID"]
    s3.client.delete_object(Bucket=bucket, Key="model.h5", VersionId=version)
    with pytest.raises(MissingContentError, match=r"'model\.h5'.*does not exist"):
        logged.download(root=tmp_path / "again")


def test_an_unversioned_object_that_changed_is_a_download_error_naming_it(
    s3: S3, s3_daemon: DaemonProcess, tmp_path: Path
) -> None:
    bucket = s3.bucket()
    s3.put(bucket, "a.txt", b"one")
    with artisync.init(project="proj", home=s3_daemon.home) as run:
        artifact = artisync.Artifact("plain", "dataset")
        artifact.add_reference(f"s3://{bucket}/a.txt")
        run.log_artifact(artifact).wait(timeout=60)
    s3.put(bucket, "a.txt", b"two")
    logged = artisync.Api(home=s3_daemon.home).artifact("proj/plain:v0")
    with pytest.raises(RemoteReferenceChangedError, match=rf"s3://{bucket}/a\.txt has ETag"):
        logged.download(root=tmp_path / "out")
    assert not (tmp_path / "out" / "a.txt").exists()


def test_bad_references_reject_the_version_with_a_reason(s3: S3, s3_daemon: DaemonProcess) -> None:
    bucket = s3.bucket()
    s3.put_many(bucket, {f"p/{i}": b"x" for i in range(3)})
    # finish() raises the first rejection of what the run logged; wait() says each again.
    with (
        pytest.raises(RejectedError, match="holds 3 objects"),
        artisync.init(project="proj", home=s3_daemon.home) as run,
    ):
        too_many = artisync.Artifact("many", "dataset")
        too_many.add_reference(f"s3://{bucket}/p", max_objects=2)
        missing = artisync.Artifact("missing", "dataset")
        missing.add_reference("s3://no-such-bucket/x")
        fine = artisync.Artifact("fine", "dataset")
        fine.add_reference(f"s3://{bucket}/p")
        for artifact in (too_many, missing, fine):
            run.log_artifact(artifact)
    with pytest.raises(RejectedError, match=rf"'s3://{bucket}/p' holds 3 objects"):
        too_many.wait(timeout=60)
    with pytest.raises(RejectedError, match="bucket 'no-such-bucket' does not exist"):
        missing.wait(timeout=60)
    assert fine.wait(timeout=60).version == "v0"


def test_http_references_keep_the_etag_and_download_checked_against_it(
    http_files: HttpFiles, local_daemon: DaemonProcess, tmp_path: Path
) -> None:
    url = http_files.write("data/train.csv", b"a,b\n1,2\n")
    with artisync.init(project="proj", home=local_daemon.home) as run:
        artifact = artisync.Artifact("web", "dataset")
        artifact.add_reference(url)
        artifact.add_reference(url, name="copies/train.csv")
        run.log_artifact(artifact).wait(timeout=60)

    logged = artisync.Api(home=local_daemon.home).artifact("proj/web:v0")
    entry = logged.manifest.entries["train.csv"]
    etag = entry.extra["etag"]
    assert entry.ref == url and entry.size == 8
    assert etag.startswith('"') and entry.digest == etag.strip('"')
    assert logged.manifest.entries["copies/train.csv"].digest == entry.digest
    root = Path(logged.download(root=tmp_path / "out"))
    assert (root / "train.csv").read_bytes() == b"a,b\n1,2\n"
    assert (root / "copies" / "train.csv").read_bytes() == b"a,b\n1,2\n"

    http_files.write("data/train.csv", b"a,b\n3,4,5\n")  # a new ETag (mtime and size)
    with pytest.raises(RemoteReferenceChangedError, match=f"{url} now has ETag"):
        logged.download(root=tmp_path / "again")
    assert not (tmp_path / "again" / "train.csv").exists()


def test_http_references_without_an_etag_are_named_by_their_url(
    http_files: HttpFiles, local_daemon: DaemonProcess, tmp_path: Path
) -> None:
    http_files.etag = False
    http_files.head = False  # and a server that answers HEAD with 405: asked with GET
    url = http_files.write("weights.bin", b"w" * 5000)
    with artisync.init(project="proj", home=local_daemon.home) as run:
        artifact = artisync.Artifact("plain-web", "model")
        artifact.add_reference(url)
        run.log_artifact(artifact).wait(timeout=60)
    assert ("GET", "/weights.bin") in http_files.requests

    logged = artisync.Api(home=local_daemon.home).artifact("proj/plain-web:v0")
    entry = logged.manifest.entries["weights.bin"]
    assert (entry.digest, entry.size, entry.extra) == (url, 5000, {})
    root = Path(logged.download(root=tmp_path / "out"))
    assert (root / "weights.bin").read_bytes() == b"w" * 5000
    # Only the size was recorded: new bytes of the same size come as they are (as in
    # W&B), another size is refused.
    http_files.write("weights.bin", b"v" * 5000)
    assert (Path(logged.download(root=tmp_path / "v2")) / "weights.bin").read_bytes() == b"v" * 5000
    http_files.write("weights.bin", b"v3")
    with pytest.raises(RemoteReferenceChangedError, match="now has 2 bytes, not 5000"):
        logged.download(root=tmp_path / "v3")
