"""A real daemon on an S3 store (moto on 127.0.0.1): killed in the middle of a multipart
upload, it resumes the same upload and sends only the parts the server does not hold.

Parts are 5 MiB (S3's minimum) from 6 MiB on, set through the daemon's environment
(``ARTISYNC_PART_SIZE``, ``ARTISYNC_MULTIPART_THRESHOLD``), so a 35 MiB file takes
eight parts. Requests go through a counting proxy in front of moto: the parts sent are
counted "at the server", before and after the kill.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from artisync import _core
from artisync.spool import Spool
from daemon_harness import DaemonProcess, drop, result_of, staged_submission, wait_for
from remote_versions import download_version
from servers import S3, CountingProxy

MiB = 1 << 20
PART = 5 * MiB
PARTS = 8
SIZES = {"ARTISYNC_MULTIPART_THRESHOLD": str(6 * MiB), "ARTISYNC_PART_SIZE": str(PART)}


@pytest.fixture
def proxy(s3: S3) -> Iterator[CountingProxy]:
    server = CountingProxy(s3.endpoint)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def daemon(home: Path) -> Iterator[DaemonProcess]:
    d = DaemonProcess(home)
    yield d
    d.kill()


def test_a_daemon_killed_mid_multipart_upload_resumes_without_resending_finished_parts(
    s3: S3, proxy: CountingProxy, daemon: DaemonProcess, tmp_path: Path
) -> None:
    bucket = s3.bucket()
    store_url = f"s3://{bucket}/node1"
    spool = Spool(daemon.config.spool)
    payload = os.urandom((PARTS - 1) * PART + 12345)
    files = {"model.bin": payload, "notes.txt": b"epoch 3"}
    sub = staged_submission(spool, "proj", "ckpt", files, metadata={"index": 0})
    drop(spool, sub)
    md5_hex = hashlib.md5(payload).hexdigest()
    key = f"node1/blobs/md5/{md5_hex[:2]}/{md5_hex}"
    # Two parts in flight, so one may be on its way when the daemon dies.
    env = {**SIZES, "AWS_ENDPOINT_URL": proxy.url, "ARTISYNC_UPLOAD_CONCURRENCY": "2"}

    daemon.start({**env, "ARTISYNC_CRASH_AT": "after_part:3"}, wait_ready=False, store=store_url)
    assert daemon.wait_exit() == -9, daemon.logs()
    wait_for(lambda: proxy.in_flight == 0, what="the proxy to finish forwarding")
    journal = json.loads((daemon.home / "uploads" / "s3" / f"{md5_hex}.json").read_bytes())
    journaled = {int(n) for n in journal["parts"]}
    listed = s3.client.list_parts(Bucket=bucket, Key=key, UploadId=journal["upload_id"])
    held = {int(p["PartNumber"]) for p in listed.get("Parts", [])}
    sent_before = set(proxy.parts())
    assert len(journaled) >= 3 and journaled <= held <= sent_before
    assert len(held) < PARTS, "the daemon died before the upload was complete"

    proxy.requests.clear()
    daemon.start(env)
    assert result_of(spool, sub.id)["status"] == "committed", daemon.logs()
    sent_after = proxy.parts()
    assert not set(sent_after) & held, "a part the server held was sent again"
    assert sorted(sent_after) == sorted(set(range(1, PARTS + 1)) - held), "each missing part once"
    assert proxy.count("POST", "uploads") == 0, "the journaled upload was completed, not a new one"
    assert "event=upload_resumed" in daemon.logs()

    with daemon.registry() as registry:
        versions = registry.list_versions("proj", "ckpt")
        assert registry.submission_result(sub.id) is not None
    assert [v.version for v in versions] == ["v0"], "committed exactly once"
    head = s3.client.head_object(Bucket=bucket, Key=key)
    assert head["ETag"].strip('"') == _core.part_md5s(_write(tmp_path, payload), PART).etag
    assert not s3.client.list_multipart_uploads(Bucket=bucket).get("Uploads")
    assert not list((daemon.home / "uploads" / "s3").glob("*.json")), "the journal entry went"

    root = tmp_path / "out"
    download_version(daemon.home, store_url, "proj/ckpt:v0", root)
    for name, data in files.items():
        assert (root / name).read_bytes() == data


def test_an_invalid_part_size_stops_the_daemon_with_one_clear_error(
    s3: S3, daemon: DaemonProcess
) -> None:
    bucket = s3.bucket()
    daemon.start({"ARTISYNC_PART_SIZE": "1000"}, wait_ready=False, store=f"s3://{bucket}")
    assert daemon.wait_exit() == 2
    assert "ARTISYNC_PART_SIZE='1000': a part must be at least 5 MiB" in daemon.logs()


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "payload.bin"
    path.write_bytes(data)
    return path
