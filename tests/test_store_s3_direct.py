"""Small blobs go to S3 as direct PUTs (aiohttp, our SigV4), not through botocore.

Against real servers on 127.0.0.1: the moto fixture, a second moto that checks every
signature against IAM (so a request signed wrong is refused, as AWS would), and a
fault-injecting proxy in front of moto for throttling, 5xx answers, dropped
connections and a server that ignores ``Content-MD5``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import boto3
import pytest
from aiohttp import ClientSession, web
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config as BotoConfig
from botocore.credentials import Credentials as BotoCredentials

from aiohttp_servers import CountingProxy
from artisync.store import BlobItem, SourceChangedError, open_store
from artisync.store.base import StoreUnavailableError
from artisync.store.remote import StoreAccessError
from artisync.store.s3 import S3Store
from artisync.store.s3_errors import status_of
from artisync.store.s3_sign import UNSIGNED_PAYLOAD, Credentials, SigV4Signer
from servers import S3, ServerProcess, hide_aws_environment

_SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)
_INTERNAL = b"<Error><Code>InternalError</Code><Message>We encountered an error.</Message></Error>"
_DENIED = b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"


class FaultyProxy(CountingProxy):
    """A counting proxy to S3 that can answer PUTs itself, badly.

    ``faults`` are consumed one per PUT (``"503"``: SlowDown, ``"500"``: InternalError,
    ``"403"``: AccessDenied, ``"drop"``: the connection closed without an answer);
    ``always`` answers every PUT so; ``strip_md5`` forwards PUTs without their
    ``Content-MD5`` (a server that does not check it). Every PUT's headers and body
    digest are kept in ``puts``.
    """

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.faults: list[str] = []
        self.always: str | None = None
        self.strip_md5 = False
        self.puts: list[tuple[str, dict[str, str], str]] = []

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        if request.method != "PUT":
            return await super()._forward(request)
        body = await request.read()
        self.puts.append((request.path, dict(request.headers), hashlib.md5(body).hexdigest()))
        fault = self.always or (self.faults.pop(0) if self.faults else None)
        if fault is not None:
            self.requests.append((request.method, request.path, request.query_string))
            if fault == "drop":
                assert request.transport is not None
                request.transport.close()
                return web.Response(status=500)  # never reaches the client
            status, answer = {"503": (503, _SLOW_DOWN), "500": (500, _INTERNAL)}.get(
                fault, (403, _DENIED)
            )
            return web.Response(status=status, body=answer, content_type="application/xml")
        self.requests.append((request.method, request.path, request.query_string))
        dropped = ("transfer-encoding", "content-md5") if self.strip_md5 else ("transfer-encoding",)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in dropped}
        if self._session is None:
            self._session = ClientSession(auto_decompress=False)
        async with self._session.put(
            self.target + request.rel_url.raw_path_qs, headers=headers, data=io.BytesIO(body)
        ) as upstream:
            payload = await upstream.read()
            kept = {
                k: v
                for k, v in upstream.headers.items()
                if k.lower() not in ("transfer-encoding", "content-length", "connection")
            }
            return web.Response(status=upstream.status, body=payload, headers=kept)


@pytest.fixture
def faulty(s3: S3) -> Iterator[FaultyProxy]:
    server = FaultyProxy(s3.endpoint)
    server.start()
    yield server
    server.stop()


def blobs(root: Path, count: int, size: int = 4096) -> list[BlobItem]:
    root.mkdir(parents=True, exist_ok=True)
    items = []
    for i in range(count):
        data = os.urandom(size)
        path = root / f"f{i:04d}"
        path.write_bytes(data)
        items.append(BlobItem(hashlib.md5(data).hexdigest(), path, size))
    return items


def key(item: BlobItem, prefix: str = "") -> str:
    return f"{prefix}blobs/md5/{item.md5_hex[:2]}/{item.md5_hex}"


async def upload(store: S3Store, items: list[BlobItem]) -> int:
    try:
        return await store.put_blobs(items)
    finally:
        await store.close()


# -- signing -------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("token", [None, "session/token+="])
def test_direct_requests_are_signed_as_botocore_signs_them(scheme: str, token: str | None) -> None:
    body = b"some bytes"
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    host = "127.0.0.1:9000" if scheme == "http" else "bucket.s3.eu-west-3.amazonaws.com"
    for path in ("/bucket/p/blobs/md5/ab/abc", "/my%20pre%2Bfix/%C3%BCn%C3%AF/a~b=c"):
        reference = AWSRequest("PUT", f"{scheme}://{host}{path}", data=body)
        reference.headers["Content-MD5"] = md5
        # As our botocore client is configured (s3_client.new_client): Content-MD5 is
        # signed, the payload is not, on http as on https.
        reference.context["client_config"] = BotoConfig(s3={"payload_signing_enabled": False})
        reference.context["has_streaming_input"] = True
        S3SigV4Auth(BotoCredentials("AKID", "secret", token), "s3", "eu-west-3").add_auth(reference)
        payload = reference.headers["X-Amz-Content-SHA256"]
        assert payload == UNSIGNED_PAYLOAD
        ours = SigV4Signer(host, "eu-west-3").headers(
            "PUT",
            path,
            Credentials("AKID", "secret", token),
            payload,
            {"Content-MD5": md5},
            date=reference.headers["X-Amz-Date"],
        )
        assert ours["Authorization"] == reference.headers["Authorization"]


@pytest.mark.parametrize("token", [None, "session/token+="])
def test_presigned_urls_are_signed_as_botocore_presigns_them(token: str | None) -> None:
    host, path, stamp = "127.0.0.1:9000", "/bucket/p/blobs/md5/ab/a%2Bb~c", "20261207T101112Z"
    headers = {"Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg==", "Content-Length": "12",
               "x-amz-meta-artisync-uploader": "alice"}  # fmt: skip
    params = {"partNumber": "3", "uploadId": "a/b+c="}
    reference = AWSRequest("PUT", f"http://{host}{path}", headers=dict(headers), params=params)
    auth = S3SigV4QueryAuth(BotoCredentials("AKID", "secret", token), "s3", "us-east-1", 900)
    # botocore's add_auth, with its clock fixed: the same steps, in its own code.
    reference.context["timestamp"] = stamp
    auth._modify_request_before_signing(reference)
    signature = auth.signature(
        auth.string_to_sign(reference, auth.canonical_request(reference)), reference
    )
    auth._inject_signature_to_request(reference, signature)
    ours = SigV4Signer(host, "us-east-1").presigned_query(
        "PUT", path, Credentials("AKID", "secret", token), 900, headers, params, date=stamp
    )
    theirs = dict(parse_qsl(urlsplit(reference.url).query))
    assert dict(parse_qsl(ours)) == theirs


# -- what lands ------------------------------------------------------------------------


async def test_small_blobs_land_intact_each_sent_once_with_its_content_md5(
    s3: S3, tmp_path: Path, faulty: FaultyProxy
) -> None:
    bucket = s3.bucket()
    items = blobs(tmp_path / "src", 150) + blobs(tmp_path / "odd", 3, size=0)[:1]
    items += blobs(tmp_path / "mib", 2, size=1 << 20)
    store = S3Store(f"s3://{bucket}/d", state_dir=tmp_path / "u", endpoint_url=faulty.url)
    assert await upload(store, items) == len(items)
    assert len(faulty.puts) == len(items), "one PUT per blob, no retries needed"
    for path, headers, body_md5 in faulty.puts:
        assert headers["Content-MD5"] == base64.b64encode(bytes.fromhex(body_md5)).decode()
        assert path.endswith(f"/{body_md5}")
    for item in items[::15]:
        stored = s3.client.get_object(Bucket=bucket, Key=key(item, "d/"))["Body"].read()
        assert stored == Path(item.source).read_bytes()


async def test_a_bucket_in_another_region_is_signed_for_its_region(
    s3: S3, tmp_path: Path, faulty: FaultyProxy
) -> None:
    # The environment says us-east-1; the bucket is in eu-west-3 (botocore follows it).
    bucket = s3.bucket() + "-paris"
    s3.client.create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-3"}
    )
    store = S3Store(f"s3://{bucket}", state_dir=tmp_path / "u", endpoint_url=faulty.url)
    assert await upload(store, blobs(tmp_path / "src", 5)) == 5
    scopes = {h["Authorization"].split("/")[2] for _, h, _ in faulty.puts}
    assert scopes == {"eu-west-3"}


async def test_a_missing_source_among_small_blobs_is_named(s3: S3, tmp_path: Path) -> None:
    items = blobs(tmp_path / "src", 80)
    os.unlink(items[50].source)
    store = S3Store(f"s3://{s3.bucket()}", state_dir=tmp_path / "u")
    with pytest.raises(FileNotFoundError) as caught:
        await upload(store, items)
    assert caught.value.filename == str(items[50].source)


async def test_a_server_that_ignores_content_md5_never_keeps_a_wrong_blob(
    s3: S3, tmp_path: Path, faulty: FaultyProxy
) -> None:
    bucket = s3.bucket()
    (item,) = blobs(tmp_path / "src", 1, size=100)
    Path(item.source).write_bytes(os.urandom(100))  # changed after hashing, same size
    faulty.strip_md5 = True
    store = S3Store(f"s3://{bucket}", state_dir=tmp_path / "u", endpoint_url=faulty.url)
    with pytest.raises(SourceChangedError) as caught:
        await upload(store, [item])
    assert caught.value.filename == str(item.source)
    assert "Contents" not in s3.client.list_objects_v2(Bucket=bucket), "the wrong bytes went"


async def test_batches_sharing_blobs_send_each_once(
    s3: S3, tmp_path: Path, faulty: FaultyProxy
) -> None:
    bucket = s3.bucket()
    shared = blobs(tmp_path / "shared", 30)
    store = S3Store(f"s3://{bucket}", state_dir=tmp_path / "u", endpoint_url=faulty.url)
    try:
        written = await asyncio.gather(store.put_blobs(shared[:20]), store.put_blobs(shared[10:]))
    finally:
        await store.close()
    assert sum(written) == 30 and len(faulty.puts) == 30
    stored = {o["Key"] for o in s3.client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert {key(i) for i in shared} == stored


async def test_a_batch_that_fails_leaves_its_shared_blobs_to_the_other(
    s3: S3, tmp_path: Path, faulty: FaultyProxy
) -> None:
    bucket = s3.bucket()
    broken = blobs(tmp_path / "broken", 1)
    os.unlink(broken[0].source)
    more = blobs(tmp_path / "more", 10)
    # One sender: the first batch reads its one chunk, fails on the missing file and
    # sends nothing; the second, which waited for the first's claims, sends them all.
    store = S3Store(
        f"s3://{bucket}", state_dir=tmp_path / "u", endpoint_url=faulty.url, concurrency=1
    )
    try:
        failed, sent = await asyncio.gather(
            store.small.put(broken + more), store.small.put(more), return_exceptions=True
        )
    finally:
        await store.close()
    assert isinstance(failed, FileNotFoundError) and sent == 10
    stored = {o["Key"] for o in s3.client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert {key(i) for i in more} == stored and len(faulty.puts) == 10


# -- failures --------------------------------------------------------------------------


async def test_throttling_server_errors_and_dropped_connections_are_retried(
    s3: S3, tmp_path: Path, faulty: FaultyProxy
) -> None:
    bucket = s3.bucket()
    items = blobs(tmp_path / "src", 40)
    faulty.faults = ["503", "500", "drop", "503", "500", "drop"]
    store = S3Store(f"s3://{bucket}", state_dir=tmp_path / "u", endpoint_url=faulty.url)
    assert await upload(store, items) == 40
    assert len(faulty.puts) == 46 and not faulty.faults, "each failed PUT was tried again"
    stored = {o["Key"] for o in s3.client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert stored == {key(i) for i in items}


async def test_a_lasting_outage_is_store_unavailable_after_three_attempts(
    s3: S3, tmp_path: Path, faulty: FaultyProxy
) -> None:
    (item,) = blobs(tmp_path / "src", 1)
    faulty.always = "503"
    store = S3Store(f"s3://{s3.bucket()}", state_dir=tmp_path / "u", endpoint_url=faulty.url)
    with pytest.raises(StoreUnavailableError) as caught:
        await upload(store, [item])
    assert len(faulty.puts) == 3
    assert status_of(caught.value) == 503
    assert "SlowDown (HTTP 503): Please reduce your request rate." in str(caught.value)
    assert item.md5_hex in caught.value.path


async def test_a_refusal_is_not_retried(s3: S3, tmp_path: Path, faulty: FaultyProxy) -> None:
    (item,) = blobs(tmp_path / "src", 1)
    faulty.always = "403"
    store = S3Store(f"s3://{s3.bucket()}", state_dir=tmp_path / "u", endpoint_url=faulty.url)
    with pytest.raises(StoreUnavailableError, match=r"AccessDenied \(HTTP 403\)"):
        await upload(store, [item])
    assert len(faulty.puts) == 1


# -- credentials, against a server that checks signatures ------------------------------


@pytest.fixture(scope="module")
def checking_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """A moto that checks signatures after its first four requests, which make the
    bucket ``guarded`` and an IAM user allowed to use it; yields the endpoint and
    that user's key and secret."""
    log = tmp_path_factory.mktemp("moto-auth") / "moto.log"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("INITIAL_NO_AUTH_ACTION_COUNT", "4")
        server = ServerProcess(
            lambda port: ["moto_server", "-H", "127.0.0.1", "-p", str(port)], "/moto-api/", log
        )
        server.start()
    try:
        options = {
            "endpoint_url": server.url,
            "region_name": "us-east-1",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        boto3.client("s3", **options).create_bucket(Bucket="guarded")
        iam = boto3.client("iam", **options)
        iam.create_user(UserName="writer")
        made = iam.create_access_key(UserName="writer")["AccessKey"]
        allow = {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}
        policy = {"Version": "2012-10-17", "Statement": [allow]}
        iam.put_user_policy(UserName="writer", PolicyName="s3", PolicyDocument=json.dumps(policy))
        yield server.url, made["AccessKeyId"], made["SecretAccessKey"]
    finally:
        server.stop()


def use_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, endpoint: str, key_id: str, secret: str
) -> None:
    hide_aws_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


async def test_a_server_that_checks_signatures_takes_direct_puts_and_heads(
    checking_moto: tuple[str, str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_credentials(monkeypatch, tmp_path, *checking_moto)
    items = blobs(tmp_path / "src", 12)
    # Batches of fewer than four blobs are asked about by HEAD, so this store sends
    # only direct requests (moto cannot check botocore's signed listings), with a
    # prefix that needs percent-encoding ('+', '=' and non-ASCII too, but moto cannot
    # check botocore's signatures of those either: the test above covers them).
    store = S3Store("s3://guarded/odd key~", state_dir=tmp_path / "u")
    try:
        for i in range(0, 12, 3):
            assert await store.put_blobs(items[i : i + 3]) == 3
        assert store.presence_stats.heads == 12 and store.presence_stats.lists == 0
        asked = [i.md5_hex for i in items[:2]] + ["0" * 32]
        assert await store.has_blobs(asked) == set(asked[:2])
    finally:
        await store.close()


async def test_a_wrong_secret_is_the_existing_clear_error(
    checking_moto: tuple[str, str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, key_id, _ = checking_moto
    use_credentials(monkeypatch, tmp_path, endpoint, key_id, "not-the-secret")
    # At open (what the daemon does first): one error saying what to set.
    with pytest.raises(StoreAccessError, match=r"access denied to bucket 'guarded'.*env"):
        await asyncio.to_thread(open_store, "s3://guarded/x", tmp_path)
    # Later (credentials changed under a running daemon): the answers botocore gives,
    # as store failures the daemon retries.
    (item,) = blobs(tmp_path / "src", 1)
    name = key(item, "x/")
    store = S3Store("s3://guarded/x", state_dir=tmp_path / "u")
    failures: dict[str, StoreUnavailableError] = {}
    try:
        requests: dict[str, Callable[[], Awaitable[object]]] = {
            "direct PUT": lambda: store.small.put([item]),
            "direct HEAD": lambda: store.has_blobs([item.md5_hex]),
            "botocore PUT": lambda: store.call("put_object", name, Key=name, Body=b"x"),
            "botocore HEAD": lambda: store.call("head_object", name, Key=name),
        }
        for label, request in requests.items():
            with pytest.raises(StoreUnavailableError) as caught:
                await request()
            failures[label] = caught.value
    finally:
        await store.close()
    assert {status_of(e) for e in failures.values()} == {403}
    assert failures["direct PUT"].reason == failures["botocore PUT"].reason
    assert failures["direct PUT"].reason.startswith("SignatureDoesNotMatch (HTTP 403)")
    assert failures["direct HEAD"].reason == failures["botocore HEAD"].reason
