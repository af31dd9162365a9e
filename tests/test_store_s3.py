"""The S3 store against a real moto server on 127.0.0.1 (DESIGN.md: no mocked clients).

Parts are 5 MiB (S3's minimum) and files a few parts long, so multipart uploads are
real and the tests stay fast. Requests are counted "at the server" through
``CountingProxy`` (moto keeps no request log). The contract every store keeps is
tested on S3 too, in test_store_contract.py; this file holds what is S3's own.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web

from artisync import _core, tracking
from artisync.store.base import ManifestTooLargeError, StoreUnavailableError
from artisync.store.s3 import S3Store
from daemon_harness import DaemonProcess, drop, result_of, staged_submission, wait_for
from servers import S3, CountingProxy, ServerProcess
from store_backends import S3_PART, blob, small_s3_store

MiB = 1 << 20
PART = S3_PART


def parts_sent(proxy: InFlightProxy) -> int:
    return sum(1 for m, _, q in proxy.requests if m == "PUT" and "partNumber=" in q)


class InFlightProxy(CountingProxy):
    """A counting proxy that also records the most requests it had in flight at once,
    and forwards large bodies as streams (aiohttp warns about large raw bytes)."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.in_flight = 0
        self.most_in_flight = 0

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path, request.query_string))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self._session is None:
                self._session = ClientSession(auto_decompress=False)
            body = await request.read()
            headers = {k: v for k, v in request.headers.items() if k.lower() != "transfer-encoding"}
            async with self._session.request(
                request.method,
                self.target + request.rel_url.raw_path_qs,
                headers=headers,
                data=io.BytesIO(body) if body else None,
                allow_redirects=False,
            ) as upstream:
                payload = await upstream.read()
                dropped = ("transfer-encoding", "content-length", "connection")
                out = {k: v for k, v in upstream.headers.items() if k.lower() not in dropped}
                return web.Response(status=upstream.status, body=payload, headers=out)
        finally:
            self.in_flight -= 1


@pytest.fixture
def bucket(s3: S3) -> str:
    return s3.bucket()


@pytest.fixture
def proxy(s3: S3) -> Iterator[InFlightProxy]:
    server = InFlightProxy(s3.endpoint)
    server.start()
    yield server
    server.stop()


async def test_small_and_multipart_blobs_round_trip(s3: S3, bucket: str, tmp_path: Path) -> None:
    store = small_s3_store(f"s3://{bucket}/team/a", tmp_path / "uploads")
    items = [
        blob(tmp_path / "empty", b""),
        blob(tmp_path / "small", b"hello"),
        blob(tmp_path / "streamed", os.urandom(2 * MiB + 3)),
        blob(tmp_path / "parts", os.urandom(2 * PART + 12345)),
    ]
    try:
        assert await store.put_blobs(items) == 4
        for item in items:
            out = tmp_path / f"{item.source.name}.out"
            await store.get_blob(item.md5_hex, out)
            assert out.read_bytes() == item.source.read_bytes()
    finally:
        await store.close()

    head = s3.client.head_object(Bucket=bucket, Key=f"team/a/{_key(items[3].md5_hex)}")
    assert head["ETag"].strip('"') == _core.part_md5s(items[3].source, PART).etag
    assert head["ETag"].endswith('-3"')
    assert not any((tmp_path / "uploads").glob("*.json")), "the journal entry is gone"


async def test_blobs_already_in_the_bucket_are_not_sent_again(
    bucket: str, tmp_path: Path, proxy: InFlightProxy
) -> None:
    store = small_s3_store(f"s3://{bucket}", tmp_path / "uploads", endpoint_url=proxy.url)
    items = [blob(tmp_path / f"f{i}", os.urandom(100 + i)) for i in range(20)]
    try:
        assert await store.put_blobs(items[:10]) == 10
        proxy.requests.clear()
        assert await store.put_blobs(items) == 10
        puts = [r for r in proxy.requests if r[0] == "PUT"]
        assert len(puts) == 10, "only the ten new blobs are sent"
        assert await store.put_blob(items[0].md5_hex, items[0].source, items[0].size) is False
    finally:
        await store.close()


async def test_presence_of_many_blobs_is_listed_not_asked_one_by_one(
    s3: S3, bucket: str, tmp_path: Path, proxy: InFlightProxy
) -> None:
    stored = [hashlib.md5(str(i).encode()).hexdigest() for i in range(300)]
    s3.put_many(bucket, {f"p/{_key(h)}": b"x" for h in stored})
    absent = [hashlib.md5(f"no{i}".encode()).hexdigest() for i in range(300)]
    store = S3Store(f"s3://{bucket}/p", state_dir=tmp_path, endpoint_url=proxy.url)
    try:
        await store.client()  # connecting asks where the bucket is (one HEAD)
        proxy.requests.clear()
        assert await store.has_blobs(stored + absent) == set(stored)
        assert proxy.count("GET", "list-type=2") == 1, "one page answers for 600 blobs"
        assert proxy.count("HEAD") == 0
        proxy.requests.clear()
        assert await store.has_blobs(absent[:2] + stored[:1]) == set(stored[:1])
        assert proxy.count("HEAD") == 3 and proxy.count("GET") == 0, "a few: one HEAD each"
    finally:
        await store.close()


async def test_a_sparse_question_about_a_big_bucket_costs_at_most_one_request_per_blob(
    s3: S3, bucket: str, tmp_path: Path
) -> None:
    stored = [hashlib.md5(str(i).encode()).hexdigest() for i in range(1200)]
    s3.put_many(bucket, {_key(h): b"x" for h in stored}, threads=32)
    asked = stored[:10] + [hashlib.md5(f"no{i}".encode()).hexdigest() for i in range(10)]
    store = S3Store(f"s3://{bucket}", state_dir=tmp_path)
    try:
        assert await store.has_blobs(asked) == set(stored[:10])
        stats = store.presence_stats
        assert stats.lists + stats.heads <= len(asked)
    finally:
        await store.close()


async def test_concurrent_uploads_stay_under_the_bound_and_send_each_blob_once(
    bucket: str, tmp_path: Path, proxy: InFlightProxy
) -> None:
    store = small_s3_store(f"s3://{bucket}", tmp_path / "u", endpoint_url=proxy.url, concurrency=3)
    items = [blob(tmp_path / f"f{i}", os.urandom(64 * 1024 + i)) for i in range(24)]
    items.append(blob(tmp_path / "big", os.urandom(3 * PART)))
    try:
        # Two submissions sharing blobs, at once: each blob goes up once.
        written = await asyncio.gather(store.put_blobs(items[:16]), store.put_blobs(items[8:]))
    finally:
        await store.close()
    assert sum(written) == len(items)
    small_puts = [r for r in proxy.requests if r[0] == "PUT" and "partNumber" not in r[2]]
    assert len(small_puts) == 24 and parts_sent(proxy) == 3
    assert 1 < proxy.most_in_flight <= 3


async def test_an_interrupted_multipart_upload_resumes_sending_only_missing_parts(
    s3: S3, bucket: str, tmp_path: Path, proxy: InFlightProxy
) -> None:
    state = tmp_path / "uploads"
    item = blob(tmp_path / "weights.bin", os.urandom(6 * PART + 1))
    first = small_s3_store(f"s3://{bucket}", state, endpoint_url=proxy.url, concurrency=1)
    upload = asyncio.ensure_future(first.put_blobs([item]))
    journal = state / f"{item.md5_hex}.json"

    def journaled_parts() -> int:
        try:
            return len(json.loads(journal.read_bytes())["parts"])
        except (OSError, ValueError):
            return 0

    try:
        while journaled_parts() < 2:
            assert not upload.done(), "the upload finished before it could be interrupted"
            await asyncio.sleep(0.005)
        upload.cancel()  # a kill: nothing is cleaned up
        await asyncio.gather(upload, return_exceptions=True)
    finally:
        await first.close()
    entry = json.loads(journal.read_bytes())
    at_server = s3.client.list_parts(Bucket=bucket, Key=entry["key"], UploadId=entry["upload_id"])
    held = len(at_server.get("Parts", []))
    assert 2 <= held < 7

    proxy.requests.clear()
    second = small_s3_store(f"s3://{bucket}", state, endpoint_url=proxy.url)
    try:
        assert await second.put_blobs([item]) == 1
    finally:
        await second.close()
    assert parts_sent(proxy) == 7 - held, "only the missing parts are sent again"
    assert proxy.count("POST", "uploads") == 0, "the same upload was completed"
    head = s3.client.head_object(Bucket=bucket, Key=entry["key"])
    assert head["ETag"].strip('"') == _core.part_md5s(item.source, PART).etag
    assert not journal.exists()


async def test_a_journal_the_server_does_not_know_starts_a_new_upload(
    s3: S3, bucket: str, tmp_path: Path
) -> None:
    state = tmp_path / "uploads"
    item = blob(tmp_path / "weights.bin", os.urandom(2 * PART))
    store = small_s3_store(f"s3://{bucket}", state)
    store.journal.save(
        item.md5_hex, store.blob_object(item.md5_hex), {"upload_id": "gone", "part_size": PART,
                                                        "size": 2 * PART, "parts": {"1": "x"}},
    )  # fmt: skip
    try:
        assert await store.put_blobs([item]) == 1
        assert store.multipart.parts_sent == 2
    finally:
        await store.close()


async def test_a_store_outage_mid_upload_ends_with_every_blob_stored(
    s3: S3, tmp_path: Path
) -> None:
    """The server dies during a batch and comes back (moto forgets its buckets: the
    bucket is made again); the daemon's way of retrying ends with every blob stored."""
    server = ServerProcess(
        lambda port: ["moto_server", "-H", "127.0.0.1", "-p", str(port)],
        "/moto-api/",
        tmp_path / "moto.log",
    )
    server.start()
    client = S3(server.url).client
    client.create_bucket(Bucket="outage")
    store = small_s3_store("s3://outage", tmp_path / "u", endpoint_url=server.url, concurrency=1)
    items = [blob(tmp_path / f"f{i}", os.urandom(MiB + i)) for i in range(60)]
    failures: list[str] = []

    async def as_the_daemon_does() -> None:
        while True:
            try:
                await store.put_blobs(items)
                return
            except StoreUnavailableError as e:
                failures.append(str(e))
                await asyncio.sleep(0.05)

    try:
        task = asyncio.ensure_future(as_the_daemon_does())
        # (Test-side calls leave the loop free: moto waits on bodies the store streams.)
        while (await asyncio.to_thread(client.list_objects_v2, Bucket="outage")).get(
            "KeyCount", 0
        ) < 3:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(server.stop)
        assert not task.done(), "the batch finished before the outage"
        while not failures:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(server.start)
        await asyncio.to_thread(client.create_bucket, Bucket="outage")
        await asyncio.wait_for(task, 60)
        keys = [o["Key"] for o in client.list_objects_v2(Bucket="outage")["Contents"]]
    finally:
        await store.close()
        server.stop()
    assert sorted(keys) == sorted(_key(i.md5_hex) for i in items)
    assert "cannot use the store at s3://outage/" in failures[0]


async def test_cleanup_aborts_uploads_that_will_not_be_finished(
    s3: S3, bucket: str, tmp_path: Path
) -> None:
    state = tmp_path / "uploads"
    store = small_s3_store(f"s3://{bucket}", state)
    done = blob(tmp_path / "done", b"stored already")
    stale = blob(tmp_path / "stale", b"abandoned long ago")
    live = blob(tmp_path / "live", b"still wanted")
    try:
        await store.put_blobs([done])
        for item in (done, stale, live):
            name = store.blob_object(item.md5_hex)
            upload = s3.client.create_multipart_upload(Bucket=bucket, Key=name)["UploadId"]
            entry = {"upload_id": upload, "part_size": PART, "size": item.size, "parts": {}}
            store.journal.save(item.md5_hex, name, entry)
        stale_entry = state / f"{stale.md5_hex}.json"
        record = json.loads(stale_entry.read_bytes())
        stale_entry.write_text(json.dumps({**record, "updated": time.time() - 8 * 86400}))

        assert await store.cleanup_tmp() == 2
    finally:
        await store.close()
    left = s3.client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [u["Key"] for u in left] == [store.blob_object(live.md5_hex)]
    assert sorted(p.name for p in state.iterdir()) == [f"{live.md5_hex}.json"]


def test_the_daemon_commits_to_an_s3_store(s3: S3, bucket: str, home: Path) -> None:
    daemon = DaemonProcess(home)
    daemon.start(store=f"s3://{bucket}/node1")
    try:
        files = {"a.txt": b"alpha", "b/c.bin": os.urandom(70_000)}
        sub = staged_submission(daemon_spool(daemon), "proj", "data", files)
        drop(daemon_spool(daemon), sub)
        result = result_of(daemon_spool(daemon), sub.id)
        assert result["status"] == "committed", result
        keys = wait_for(
            lambda: [o["Key"] for o in s3.client.list_objects_v2(Bucket=bucket)["Contents"]]
        )
    finally:
        daemon.stop()
    blobs = {f"node1/{_key(hashlib.md5(d).hexdigest())}" for d in files.values()}
    assert blobs <= set(keys)
    manifest = s3.client.get_object(Bucket=bucket, Key=f"node1/{result['manifest_key']}")
    contents = json.loads(manifest["Body"].read())["contents"]
    assert sorted(contents) == ["a.txt", "b/c.bin"]


async def test_a_manifest_over_the_single_put_limit_is_refused_by_name(
    bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("artisync.store.s3.SINGLE_PUT_MAX", 10)
    (tmp_path / "m.json").write_bytes(b'{"contents": {}}')
    store = S3Store(f"s3://{bucket}/mf", state_dir=tmp_path / "state")
    try:
        with pytest.raises(ManifestTooLargeError, match=r"is 16 bytes, over .* limit of 10"):
            await store.put_manifest_file(hashlib.md5(b"x").hexdigest(), tmp_path / "m.json")
    finally:
        await store.close()


def test_the_daemon_stores_a_manifest_of_many_chunks_from_its_scratch_file(
    s3: S3, bucket: str, home: Path
) -> None:
    """Above three chunks of entries the manifest is written to a scratch file and
    streamed to the bucket from there."""
    daemon = DaemonProcess(home)
    daemon.start(store=f"s3://{bucket}/big", env={"ARTISYNC_CHUNK_ENTRIES": "4"})
    files = {f"f{i:02d}.txt": b"file %d" % i for i in range(20)}
    try:
        sub = staged_submission(daemon_spool(daemon), "proj", "data", files)
        drop(daemon_spool(daemon), sub)
        result = result_of(daemon_spool(daemon), sub.id)
        assert result["status"] == "committed", result
        assert not list(daemon_spool(daemon).root.rglob("*.scratch")), "scratch left behind"
    finally:
        daemon.stop()
    manifest = s3.client.get_object(Bucket=bucket, Key=f"big/{result['manifest_key']}")
    assert manifest["ContentType"] == "application/json"
    contents = json.loads(manifest["Body"].read())["contents"]
    assert sorted(contents) == sorted(files)


def daemon_spool(daemon: DaemonProcess) -> Any:
    from artisync.spool import Spool

    return Spool(daemon.config.spool)


def _key(md5_hex: str) -> str:
    return f"blobs/md5/{md5_hex[:2]}/{md5_hex}"


async def test_parts_are_hashed_as_they_go_up_each_once_not_all_before_the_first(
    s3: S3, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 2 requests in flight and 6 parts, part 6 can only be hashed after earlier
    parts were sent: hashing overlaps the sends instead of delaying the first."""
    store = small_s3_store(f"s3://{bucket}/pipelined", tmp_path / "uploads", concurrency=2)
    item = blob(tmp_path / "parts", os.urandom(5 * PART + 777))
    hashed: list[tuple[int, int]] = []  # (offset, bytes stored before it was hashed)
    tracked = tracking.Tracked("sub")
    real = _core.part_md5

    def part_md5(path: Any, offset: int, length: int) -> str:
        hashed.append((offset, tracked.stored.bytes))
        return real(path, offset, length)

    monkeypatch.setattr(_core, "part_md5", part_md5)
    token = tracking.enter(tracked)
    try:
        assert await store.put_blobs([item]) == 1
    finally:
        tracking.leave(token)
        await store.close()
    assert sorted(offset for offset, _ in hashed) == [n * PART for n in range(6)]
    last = max(hashed)
    assert last[1] > 0, "the last part was hashed before any part was sent"
    head = s3.client.head_object(
        Bucket=bucket, Key=f"pipelined/blobs/md5/{item.md5_hex[:2]}/{item.md5_hex}"
    )
    assert head["ETag"].strip('"') == _core.part_md5s(item.source, PART).etag
