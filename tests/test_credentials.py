"""Credentials from each ecosystem's usual places, through a real daemon, and one clear
error when they are wrong.

S3: a named profile alone (``AWS_PROFILE`` with its keys and endpoint in the files
``AWS_CONFIG_FILE`` and ``AWS_SHARED_CREDENTIALS_FILE`` point at, no ``AWS_ACCESS_KEY_ID``
or ``AWS_ENDPOINT_URL``) reaches moto for the store and for references; a profile name
that does not exist stops the daemon, or rejects the version, with one sentence.
GCS: ``GOOGLE_APPLICATION_CREDENTIALS`` naming a file that cannot be a key does the same.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import artisync
from artisync.errors import RejectedError
from daemon_harness import DaemonProcess
from remote_versions import download_version
from servers import S3, hide_aws_environment

PROFILE = "artisync-test"


@pytest.fixture
def daemon(home: Path) -> Iterator[DaemonProcess]:
    d = DaemonProcess(home)
    yield d
    d.kill()


@pytest.fixture
def aws_profile(s3: S3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Only a profile in the AWS files (no ``AWS_*`` keys or endpoint): its name."""
    hide_aws_environment(monkeypatch, tmp_path)
    (tmp_path / "aws-config").write_text(
        f"[profile {PROFILE}]\n"
        "region = us-east-1\n"
        f"endpoint_url = {s3.endpoint}\n"
        "s3 =\n"
        "    addressing_style = path\n"
    )
    (tmp_path / "aws-credentials").write_text(
        f"[{PROFILE}]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    monkeypatch.setenv("AWS_PROFILE", PROFILE)
    return PROFILE


def test_an_aws_profile_alone_reaches_the_store_and_the_references(
    s3: S3, aws_profile: str, daemon: DaemonProcess, tmp_path: Path
) -> None:
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"} & set(os.environ)
    bucket = s3.bucket()
    s3.put(bucket, "refs/labels.csv", b"cat,dog")
    store_url = f"s3://{bucket}/node1"
    daemon.start(store=store_url)
    data = tmp_path / "weights.bin"
    data.write_bytes(os.urandom(10_000))
    with artisync.init(project="proj", home=daemon.home) as run:
        artifact = artisync.Artifact("model", "model")
        artifact.add_file(str(data))
        artifact.add_reference(f"s3://{bucket}/refs/labels.csv")
        run.log_artifact(artifact)
        artifact.wait(timeout=60)
    with daemon.registry() as registry:
        (version,) = registry.list_versions("proj", "model")
    root = tmp_path / "out"
    download_version(daemon.home, store_url, f"proj/model:{version.version}", root)
    assert (root / "weights.bin").read_bytes() == data.read_bytes()
    assert (root / "labels.csv").read_bytes() == b"cat,dog"


def test_a_wrong_aws_profile_name_is_one_clear_error(
    s3: S3, aws_profile: str, daemon: DaemonProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3.bucket()
    s3.put(bucket, "a.txt", b"a")
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")

    daemon.start(store=f"s3://{bucket}", wait_ready=False)
    assert daemon.wait_exit() == 2
    said = [line for line in daemon.logs().splitlines() if line.startswith("artisync:")]
    assert len(said) == 1, daemon.logs()
    assert "(no-such-profile) could not be found" in said[0]
    assert "set AWS_PROFILE to a profile" in said[0]

    # On the local store the daemon runs; a reference that needs the profile is refused.
    daemon.start(store=str(daemon.home / "store"))
    # finish() raises the rejection of what the run logged; wait() says it again.
    with pytest.raises(RejectedError), artisync.init(project="proj", home=daemon.home) as run:
        artifact = artisync.Artifact("refs", "dataset")
        artifact.add_reference(f"s3://{bucket}/a.txt")
        run.log_artifact(artifact)
    with pytest.raises(RejectedError) as rejected:
        artifact.wait(timeout=60)
    assert "(no-such-profile) could not be found" in str(rejected.value)
    assert "AWS_PROFILE" in str(rejected.value)


@pytest.mark.parametrize(
    ("content", "says"),
    [(None, "cannot read it"), ("{not json", "not a JSON credentials file")],
)
def test_an_unusable_google_credentials_file_is_one_clear_error(
    daemon: DaemonProcess,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    content: str | None,
    says: str,
) -> None:
    key = tmp_path / "key.json"
    if content is not None:
        key.write_text(content)
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))

    daemon.start(store="gs://some-bucket/x", wait_ready=False)
    assert daemon.wait_exit() == 2
    said = [line for line in daemon.logs().splitlines() if line.startswith("artisync:")]
    assert len(said) == 1, daemon.logs()
    assert f"GOOGLE_APPLICATION_CREDENTIALS={key}: {says}" in said[0]

    daemon.start(store=str(daemon.home / "store"))
    # finish() raises the rejection of what the run logged; wait() says it again.
    with pytest.raises(RejectedError), artisync.init(project="proj", home=daemon.home) as run:
        artifact = artisync.Artifact("gs-refs", "dataset")
        artifact.add_reference("gs://some-bucket/a.txt")
        run.log_artifact(artifact)
    with pytest.raises(RejectedError) as rejected:
        artifact.wait(timeout=60)
    assert "GOOGLE_APPLICATION_CREDENTIALS" in str(rejected.value)
    assert str(key) in str(rejected.value)
