"""The GCS store against a real fake-gcs-server on 127.0.0.1 (DESIGN.md: no mocked
clients). Resumable sessions use 256 KiB chunks so large uploads stay small here. The
contract every store keeps is tested on GCS too, in test_store_contract.py; this file
holds what is GCS's own."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from artisync.store import BlobItem, open_store
from artisync.store.base import StoreAccessError, StoreUnavailableError
from artisync.store.gcs import GCSStore
from artisync.store.gcs_errors import on_gce
from servers import GCS, ServerProcess, ThreadServer
from store_backends import GCS_CHUNK, blob, gcs_objects, small_gcs_store

KiB = 1 << 10
CHUNK = GCS_CHUNK


@pytest.fixture
def bucket(gcs: GCS) -> str:
    return gcs.bucket()


async def test_small_and_resumable_blobs_round_trip(gcs: GCS, bucket: str, tmp_path: Path) -> None:
    store = small_gcs_store(f"gs://{bucket}/team/a", tmp_path / "uploads")
    items = [
        blob(tmp_path / "empty", b""),
        blob(tmp_path / "small", b"hello"),
        blob(tmp_path / "streamed", os.urandom(500 * KiB + 3)),
        blob(tmp_path / "chunked", os.urandom(4 * CHUNK + 12345)),
    ]
    try:
        assert await store.put_blobs(items) == 4
        assert await store.put_blobs(items) == 0, "present blobs are skipped"
        for item in items:
            out = tmp_path / f"{item.source.name}.out"
            await store.get_blob(item.md5_hex, out)
            assert out.read_bytes() == item.source.read_bytes()
        assert store.resumable.chunks_sent == 5
    finally:
        await store.close()
    stored = gcs_objects(gcs, bucket)
    for item in items:
        meta = stored[f"team/a/blobs/md5/{item.md5_hex[:2]}/{item.md5_hex}"]
        assert base64.b64decode(meta["md5Hash"]).hex() == item.md5_hex
    assert not any((tmp_path / "uploads").glob("*.json"))


def test_each_event_loop_gets_its_own_client_closed_when_the_loop_ends(
    gcs: GCS, bucket: str, tmp_path: Path
) -> None:
    """Downloads run one ``asyncio.run`` per call on one store: a loop's HTTP session
    must not outlive it (unclosed sockets), nor be used by the next loop."""
    store = small_gcs_store(f"gs://{bucket}/loops", tmp_path / "uploads")
    items = [blob(tmp_path / f"f{i}", b"loop %d" % i) for i in range(4)]

    async def put(item: BlobItem) -> aiohttp.ClientSession:
        session = await store.session()
        assert await store.put_blobs([item]) == 1
        assert await store.session() is session, "one session per loop"
        return session

    first = asyncio.run(put(items[0]))
    assert first.closed, "closed by its own loop as that loop shut down"
    second = asyncio.run(put(items[1]))
    assert second is not first and second.closed

    # Two loops at once (two threads): each uses its own session, both are closed.
    both = threading.Barrier(2, timeout=30)

    async def put_together(item: BlobItem) -> aiohttp.ClientSession:
        session = await store.session()
        both.wait()  # both loops hold a session now
        assert await store.put_blobs([item]) == 1
        return session

    with ThreadPoolExecutor(2) as pool:
        sessions = list(pool.map(lambda i: asyncio.run(put_together(i)), items[2:]))
    assert sessions[0] is not sessions[1] and all(s.closed for s in sessions)
    names = set(gcs_objects(gcs, bucket))
    assert {f"loops/blobs/md5/{i.md5_hex[:2]}/{i.md5_hex}" for i in items} <= names


async def test_close_closes_the_client_of_another_loop_on_that_loop(
    gcs: GCS, bucket: str, tmp_path: Path
) -> None:
    store = small_gcs_store(f"gs://{bucket}/other", tmp_path / "uploads")
    opened = threading.Event()
    finish = threading.Event()

    async def hold() -> aiohttp.ClientSession:
        session = await store.session()
        opened.set()
        while not finish.is_set() and not session.closed:
            await asyncio.sleep(0.01)
        return session

    with ThreadPoolExecutor(1) as pool:
        other = pool.submit(asyncio.run, hold())
        assert await asyncio.to_thread(opened.wait, 30)
        mine = await store.session()
        await store.close()
        assert mine.closed
        try:
            session = await asyncio.wrap_future(other)
        finally:
            finish.set()
    assert session.closed


class Killed(BaseException):
    """What the daemon's crash point does (SIGKILL), in process: stop right there."""


async def test_an_interrupted_resumable_upload_resumes_from_the_committed_offset(
    gcs: GCS, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "uploads"
    item = blob(tmp_path / "weights.bin", os.urandom(12 * CHUNK + 7))
    journal = state / f"{item.md5_hex}.json"
    passed: list[str] = []

    def crash_point(name: str) -> None:  # ARTISYNC_CRASH_AT=after_part:3
        passed.append(name)
        if len(passed) == 3:
            raise Killed()

    monkeypatch.setattr("artisync.store.gcs_upload.crash_point", crash_point)
    first = small_gcs_store(f"gs://{bucket}", state)
    try:
        with pytest.raises(Killed):
            await first.put_blobs([item])
    finally:
        await first.close()
    offset = int(json.loads(journal.read_bytes())["offset"])
    assert offset == 3 * CHUNK, "the server's committed offset, journaled"
    assert f"blobs/md5/{item.md5_hex[:2]}/{item.md5_hex}" not in gcs_objects(gcs, bucket)

    monkeypatch.setattr("artisync.store.gcs_upload.crash_point", lambda name: None)
    second = small_gcs_store(f"gs://{bucket}", state)
    try:
        assert await second.put_blobs([item]) == 1
        assert second.resumable.chunks_sent == 10, "13 chunks, 3 of them sent before"
        await second.get_blob(item.md5_hex, tmp_path / "back")
    finally:
        await second.close()
    assert (tmp_path / "back").read_bytes() == item.source.read_bytes()
    assert not journal.exists()


async def test_a_store_outage_mid_upload_ends_with_every_blob_stored_once(
    gcs: GCS, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fake-gcs-server stopped during a batch and started again on its data: the
    daemon's way of retrying ends with each blob stored, and none twice."""
    data = tmp_path / "data"
    data.mkdir()
    from servers import fake_gcs_binary

    binary = str(fake_gcs_binary())

    def command(port: int) -> list[str]:
        url = f"http://127.0.0.1:{port}"
        return [binary, "-scheme", "http", "-host", "127.0.0.1", "-port", str(port),
                "-backend", "filesystem", "-filesystem-root", str(data), "-external-url",
                url, "-public-host", f"127.0.0.1:{port}", "-log-level", "warn"]  # fmt: skip

    server = ServerProcess(command, "/storage/v1/b", tmp_path / "gcs.log")
    server.start()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.url)
    helper = GCS(server.url)
    helper._call("POST", "/storage/v1/b?project=t", b'{"name": "outage"}', "application/json")
    store = small_gcs_store("gs://outage", tmp_path / "u", concurrency=1)
    items = [blob(tmp_path / f"f{i}", os.urandom(200 * KiB + i)) for i in range(40)]
    items.append(blob(tmp_path / "big", os.urandom(8 * CHUNK)))
    failures: list[str] = []

    async def as_the_daemon_does() -> int:
        written = 0
        while True:
            try:
                return written + await store.put_blobs(items)
            except StoreUnavailableError as e:
                failures.append(str(e))
                await asyncio.sleep(0.05)

    try:
        task = asyncio.ensure_future(as_the_daemon_does())
        while len(await asyncio.to_thread(gcs_objects, helper, "outage")) < 3:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(server.stop)
        assert not task.done(), "the batch finished before the outage"
        while not failures:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(server.start)
        await asyncio.wait_for(task, 60)
        stored = await asyncio.to_thread(gcs_objects, helper, "outage")
    finally:
        await store.close()
        server.stop()
    assert sorted(stored) == sorted(f"blobs/md5/{i.md5_hex[:2]}/{i.md5_hex}" for i in items)
    assert all(int(meta["generation"]) for meta in stored.values())
    assert "cannot use the store at gs://outage/" in failures[0]


async def test_cleanup_forgets_sessions_of_stored_blobs(bucket: str, tmp_path: Path) -> None:
    store = small_gcs_store(f"gs://{bucket}", tmp_path / "u")
    done = blob(tmp_path / "done", b"stored already")
    live = blob(tmp_path / "live", b"still wanted")
    try:
        await store.put_blobs([done])
        for item in (done, live):
            entry = {"session": "http://127.0.0.1:1/x", "size": item.size, "offset": 0}
            store.journal.save(item.md5_hex, store.blob_object(item.md5_hex), entry)
        assert await store.cleanup_tmp() == 1
    finally:
        await store.close()
    assert [p.name for p in (tmp_path / "u").iterdir()] == [f"{live.md5_hex}.json"]


def test_open_store_gives_a_gcs_store(gcs: GCS, bucket: str, tmp_path: Path) -> None:
    store = open_store(f"gs://{bucket}/p/q", tmp_path)
    assert isinstance(store, GCSStore)
    assert store.prefix == "p/q/" and store.journal.dir == tmp_path / "uploads" / "gcs"


def test_a_missing_bucket_is_one_clear_error_when_opened(gcs: GCS, tmp_path: Path) -> None:
    with pytest.raises(StoreAccessError, match="bucket 'no-such-bucket' does not exist"):
        open_store("gs://no-such-bucket/x", tmp_path)


@pytest.mark.parametrize(
    ("credentials", "says"),
    [
        (None, "GOOGLE_APPLICATION_CREDENTIALS=.*cannot read it"),
        ("not json", "not a JSON credentials file"),
        ('{"no": "type"}', "has no 'type'"),
    ],
)
def test_unusable_google_credentials_are_one_clear_error_when_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, credentials: str | None, says: str
) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    path = tmp_path / "key.json"
    if credentials is not None:
        path.write_text(credentials)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    with pytest.raises(StoreAccessError, match=says):
        open_store("gs://bucket/x", tmp_path)


@pytest.mark.skipif(on_gce(), reason="on GCE the metadata server gives credentials")
def test_no_google_credentials_at_all_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    with pytest.raises(StoreAccessError, match="no Google Cloud credentials found: set GOOGLE"):
        open_store("gs://bucket/x", tmp_path)


def test_refused_google_credentials_are_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def token(request: web.Request) -> web.Response:
        return web.json_response({"error": "invalid_grant"}, status=400)

    app = web.Application()
    app.router.add_post("/token", token)
    server = ThreadServer(app)
    server.start()
    try:
        key = tmp_path / "user.json"
        key.write_text(
            json.dumps(
                {
                    "type": "authorized_user",
                    "client_id": "x",
                    "client_secret": "y",
                    "refresh_token": "revoked",
                    "token_uri": f"{server.url}/token",
                }
            )
        )
        monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
        with pytest.raises(StoreAccessError, match=r"credentials were refused.*400"):
            open_store("gs://bucket/x", tmp_path)
    finally:
        server.stop()
