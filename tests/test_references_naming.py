"""The seed's naming table for references, the same in the SDK and the daemon."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import artisync
from artisync.daemon.expand import Rejected, expand
from artisync.errors import InvalidInputError
from artisync.references import ReferenceUnavailableError
from artisync.spool import ArtifactInfo, ReferenceEntry, Submission
from servers import GCS, S3, HttpFiles, free_port

# (key or prefix, name, expected entry paths); the bucket holds model.h5 and images/.
TABLE = [
    ("model.h5", None, ["model.h5"]),
    ("model.h5", "models/mymodel.h5", ["models/mymodel.h5"]),
    ("images", None, ["cat.png", "dog.png"]),
    ("images", "images", ["images/cat.png", "images/dog.png"]),
    ("images/", "pics", ["pics/cat.png", "pics/dog.png"]),
]
OBJECTS = {"model.h5": b"m", "images/cat.png": b"c", "images/dog.png": b"d", "imagesx": b"x"}


def submission(*refs: ReferenceEntry) -> Submission:
    return Submission(
        id="0" * 32,
        created_ns=time.time_ns(),
        project="p",
        artifact=ArtifactInfo(name="a", type="dataset"),
        entries=list(refs),
    )


def daemon_names(uri: str, name: str | None) -> list[str]:
    items = expand(
        submission(ReferenceEntry(path=name or "", ref=uri)), spool_root=Path("/no-spool")
    )
    return sorted(item.path for item in items)


def sdk_name(uri: str, name: str | None) -> list[str]:
    artifact = artisync.Artifact("a", "dataset")
    artifact.add_reference(uri, name=name)
    return list(artifact.manifest.entries)


@pytest.mark.parametrize(("key", "name", "expected"), TABLE)
def test_s3_naming_table(s3: S3, key: str, name: str | None, expected: list[str]) -> None:
    bucket = s3.bucket()
    s3.put_many(bucket, OBJECTS)
    uri = f"s3://{bucket}/{key}"
    assert daemon_names(uri, name) == expected
    if len(expected) == 1:  # a single object shows under its final name at once
        assert sdk_name(uri, name) == expected


@pytest.mark.parametrize(("key", "name", "expected"), TABLE)
def test_gcs_naming_table(gcs: GCS, key: str, name: str | None, expected: list[str]) -> None:
    bucket = gcs.bucket()
    gcs.put_many(bucket, OBJECTS)
    uri = f"gs://{bucket}/{key}"
    assert daemon_names(uri, name) == expected
    if len(expected) == 1:
        assert sdk_name(uri, name) == expected


def test_http_names_come_from_the_url_path(http_files: HttpFiles) -> None:
    url = http_files.write("dir/my file.txt", b"x")
    assert daemon_names(url, None) == sdk_name(url, None) == ["my file.txt"]
    assert daemon_names(url, "data/f.txt") == sdk_name(url, "data/f.txt") == ["data/f.txt"]


def test_checksum_false_names_agree_without_the_server() -> None:
    cases = {
        "s3://b/deep/model.h5": ("model.h5", "s3://b/deep/model.h5"),
        "gs://b/deep/model.h5#12": ("model.h5", "gs://b/deep/model.h5"),
        "s3://b": ("b", "s3://b/"),  # W&B's form: scheme://bucket/key
        "https://h/x.txt?sig=1": ("x.txt", "https://h/x.txt?sig=1"),
    }
    for uri, (name, digest) in cases.items():
        entry = ReferenceEntry(path="", ref=uri, checksum=False)
        [item] = expand(submission(entry), spool_root=Path("/no-spool"))
        artifact = artisync.Artifact("a", "dataset")
        artifact.add_reference(uri, checksum=False)
        [(shown_name, shown)] = artifact.manifest.entries.items()
        assert (item.path, item.digest, item.ref) == (name, digest, digest)
        assert (shown_name, shown.digest) == (name, digest)


def test_daemon_rejects_user_errors_and_raises_transient_ones(
    s3: S3, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3.bucket()
    s3.put(bucket, "p/../escape", b"x")
    with pytest.raises(Rejected, match=r"'p/\.\./escape' cannot be an entry"):
        daemon_names(f"s3://{bucket}/p", None)
    monkeypatch.setattr("artisync.daemon.expand.REMOTE_BACKOFF", 0.01)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(ReferenceUnavailableError):
        daemon_names(f"s3://{bucket}/p", None)


@pytest.mark.parametrize(
    ("uri", "words"),
    [("gs://b/k#abc", "generation after '#' must be a number"), ("s3://b/?versionId=1", "pins")],
)
def test_sdk_refuses_bad_versions_at_the_call(uri: str, words: str) -> None:
    with pytest.raises(InvalidInputError, match=words):
        artisync.Artifact("a", "dataset").add_reference(uri)
