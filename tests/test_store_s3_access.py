"""Opening the S3 store: one clear error, at once, for a store that cannot work.

Against the moto fixture, a second moto that checks credentials, and a real daemon.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from artisync.store import open_store
from artisync.store.remote import StoreAccessError
from artisync.store.s3 import S3Store
from daemon_harness import DaemonProcess
from servers import S3, ServerProcess, free_port, hide_aws_environment


@pytest.fixture
def bucket(s3: S3) -> str:
    return s3.bucket()


@pytest.mark.parametrize(
    ("setup", "says"),
    [
        ("no_credentials", "no AWS credentials found: set AWS_ACCESS_KEY_ID"),
        ("unknown_profile", "set AWS_PROFILE to a profile"),
        ("missing_bucket", "does not exist at http://127.0.0.1:"),
        ("dead_endpoint", "cannot connect to http://127.0.0.1:"),
    ],
)
def test_a_store_that_cannot_work_is_one_clear_error_when_opened(
    s3: S3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setup: str, says: str
) -> None:
    bucket = s3.bucket()
    if setup == "no_credentials":
        hide_aws_environment(monkeypatch, tmp_path)
        monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    elif setup == "unknown_profile":
        monkeypatch.setenv("AWS_PROFILE", "nobody")
    elif setup == "missing_bucket":
        bucket = "no-such-bucket"
    else:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(StoreAccessError) as caught:
        open_store(f"s3://{bucket}/x", tmp_path)
    assert says in str(caught.value)
    assert str(caught.value).count("\n") == 0


def test_wrong_credentials_are_one_clear_error_when_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A moto that checks credentials after its first request (the bucket's creation).
    monkeypatch.setenv("INITIAL_NO_AUTH_ACTION_COUNT", "1")
    server = ServerProcess(
        lambda port: ["moto_server", "-H", "127.0.0.1", "-p", str(port)],
        "/moto-api/",
        tmp_path / "moto.log",
    )
    server.start()
    try:
        S3(server.url).client.create_bucket(Bucket="guarded")
        hide_aws_environment(monkeypatch, tmp_path)
        monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG0")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        with pytest.raises(StoreAccessError, match=r"access denied to bucket 'guarded'.*env"):
            open_store("s3://guarded", tmp_path)
    finally:
        server.stop()


def test_open_store_gives_an_s3_store_journaling_under_the_home(
    s3: S3, bucket: str, tmp_path: Path
) -> None:
    store = open_store(f"s3://{bucket}/some/prefix/", tmp_path, upload_concurrency=5)
    assert isinstance(store, S3Store)
    assert store.url == f"s3://{bucket}/some/prefix"
    assert store.prefix == "some/prefix/" and store.concurrency == 5
    assert store.journal.dir == tmp_path / "uploads" / "s3"


def test_the_daemon_refuses_to_start_on_a_bucket_that_does_not_exist(s3: S3, home: Path) -> None:
    daemon = DaemonProcess(home)
    daemon.start(store="s3://no-such-bucket/x", wait_ready=False)
    assert daemon.wait_exit() == 2
    assert "bucket 'no-such-bucket' does not exist" in daemon.logs()
