"""S3 references through the whole system: SDK → real daemon → registry → download."""

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
from servers import S3


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
    with artisync.init(project="proj", home=s3_daemon.home) as run:
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
