"""Presigned transfers (issue 17): what a server hands a node so that the node, with no
bucket credentials, moves blobs itself; against real servers on 127.0.0.1.

The node's side is a bare urllib3 client: no credentials, no ``AWS_*`` variable read,
no signing. The buckets differ in what they refuse by themselves, so each refusal test
says which layer refuses:

- ``rclone serve s3`` checks presigned requests as S3 does: the signature (the key,
  the signed ``Content-MD5`` and ``Content-Length``, the expiry), and ``Content-MD5``
  against the body;
- moto checks none of that on presigned requests, and fake-gcs-server checks neither
  a session's ``md5Hash``, nor its declared size, nor ``ifGenerationMatch=0``: there
  the server's ``verify``, which reads what the bucket holds, refuses the blob before
  a version is committed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import urllib3
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from artisync.errors import InvalidInputError
from artisync.store.base import StoreAccessError
from artisync.store.gcs import GCSStore
from artisync.store.grants import (
    BlobSpec,
    DownloadGrant,
    PartsGrant,
    PutGrant,
    SessionGrant,
)
from artisync.store.grants_for import grants_for
from artisync.store.s3 import S3Store
from artisync.store.s3_grants import S3Grants
from servers import GCS, S3
from store_backends import GCS_CHUNK, S3_PART, blob, small_gcs_store, small_s3_store

PART = S3_PART
ALICE, BOB = "alice", "bob"  # the server users grants are made out to

_http = urllib3.PoolManager()


async def send(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """One request as a node sends it: a bare HTTP client, no credentials."""

    def request() -> tuple[int, bytes]:
        r = _http.request(method, url, body=body, headers=headers or {}, retries=False)
        return r.status, r.data

    return await asyncio.to_thread(request)


def spec(data: bytes, part_size: int | None = None) -> BlobSpec:
    """``data`` declared as a node declares it (with part MD5s if ``part_size``)."""
    parts: tuple[str, ...] = ()
    if part_size is not None:
        starts = range(0, max(len(data), 1), part_size)
        parts = tuple(hashlib.md5(data[i : i + part_size]).hexdigest() for i in starts)
    return BlobSpec(hashlib.md5(data).hexdigest(), len(data), part_size, parts)


def other_bytes(data: bytes) -> bytes:
    """Bytes of the same size as ``data`` with another MD5."""
    return bytes([data[0] ^ 0xFF]) + data[1:]


@dataclass
class S3Bucket:
    """A server's S3 store on one S3 server, and how that server differs from S3."""

    store: S3Store
    # rclone refuses bad presigned requests as S3 does; moto lets them through.
    checks_presigned: bool
    # rclone gives a completed multipart upload its whole MD5 for an ETag, where S3
    # (and moto) give md5(part MD5s)-N.
    whole_md5_etags: bool

    @property
    def grants(self) -> S3Grants:
        found = grants_for(self.store)
        assert isinstance(found, S3Grants)
        return found


@pytest.fixture(params=["moto", "rclone"])
async def s3_bucket(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[S3Bucket]:
    if request.param == "moto":
        url = f"s3://{request.getfixturevalue('s3').bucket()}/grants"
    else:
        request.getfixturevalue("rclone_s3")
        url = f"s3://served/{uuid.uuid4().hex}"
    store = small_s3_store(url, tmp_path / "uploads")
    try:
        rclone = request.param == "rclone"
        yield S3Bucket(store, checks_presigned=rclone, whole_md5_etags=rclone)
    finally:
        await store.close()


@pytest.fixture
async def gcs_store(gcs: GCS, tmp_path: Path) -> AsyncIterator[GCSStore]:
    store = small_gcs_store(f"gs://{gcs.bucket()}/grants", tmp_path / "uploads")
    try:
        yield store
    finally:
        await store.close()


async def read_back(store: S3Store | GCSStore, md5_hex: str, tmp_path: Path) -> bytes:
    out = tmp_path / f"{md5_hex}.out"
    await store.get_blob(md5_hex, out)
    return out.read_bytes()


async def wait_past(deadline: float) -> None:
    """Wait until the clock has passed ``deadline`` (the condition is the time itself)."""
    while time.time() <= deadline:
        await asyncio.sleep(0.1)


# -- S3: one presigned PUT -----------------------------------------------------------------


async def test_a_node_without_credentials_puts_a_blob_and_reads_it_through_its_grants(
    s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    data = os.urandom(100_000)
    declared = spec(data)
    grant = await s3_bucket.grants.upload(declared, uploader=ALICE)
    assert isinstance(grant, PutGrant)
    assert grant.headers == {"Content-MD5": base64.b64encode(hashlib.md5(data).digest()).decode(),
                             "Content-Length": str(len(data)),
                             "x-amz-meta-artisync-uploader": ALICE}  # fmt: skip
    assert time.time() + 800 < grant.expires_at <= time.time() + 900
    assert (await send("PUT", grant.url, data, grant.headers))[0] == 200
    assert (await s3_bucket.grants.verify([declared])).ok
    assert await read_back(s3_bucket.store, declared.md5_hex, tmp_path) == data
    download = await s3_bucket.grants.download(declared.md5_hex)
    assert await send("GET", download.url) == (200, data)


async def test_an_expired_put_url_is_refused_by_the_bucket(s3_bucket: S3Bucket) -> None:
    data = os.urandom(1000)
    grant = await s3_bucket.grants.upload(spec(data), expires_in=1, uploader=ALICE)
    assert isinstance(grant, PutGrant)
    await wait_past(grant.expires_at + 1)
    status, _ = await send("PUT", grant.url, data, grant.headers)
    verified = await s3_bucket.grants.verify([spec(data)])
    if s3_bucket.checks_presigned:
        assert status in (400, 403)  # rclone, as S3: "Request has expired"
        assert verified.missing == (spec(data).md5_hex,)
    else:
        # moto does not expire presigned URLs. What a late PUT can store is still the
        # blob's own bytes (the signed Content-MD5, and verify), so nothing wrong can
        # reach a commit through it.
        assert status == 200 and verified.ok


async def test_a_put_url_used_for_another_key_is_refused(s3_bucket: S3Bucket) -> None:
    mine, theirs = os.urandom(1000), os.urandom(1000)
    grant = await s3_bucket.grants.upload(spec(mine), uploader=ALICE)
    assert isinstance(grant, PutGrant)
    mine_key = s3_bucket.store.blob_object(spec(mine).md5_hex)
    theirs_key = s3_bucket.store.blob_object(spec(theirs).md5_hex)
    elsewhere = grant.url.replace(mine_key, theirs_key)
    assert elsewhere != grant.url
    status, _ = await send("PUT", elsewhere, mine, grant.headers)
    verified = await s3_bucket.grants.verify([spec(theirs)])
    if s3_bucket.checks_presigned:
        assert status == 403  # the key is in the signature
        assert verified.missing == (spec(theirs).md5_hex,)
    else:
        # moto checks no signature: "their" key now holds my bytes; verify refuses it.
        assert status == 200 and verified.wrong_md5 == (spec(theirs).md5_hex,)


async def test_a_put_of_other_bytes_than_its_signed_md5_is_refused(s3_bucket: S3Bucket) -> None:
    data = os.urandom(1000)
    declared = spec(data)
    grant = await s3_bucket.grants.upload(declared, uploader=ALICE)
    assert isinstance(grant, PutGrant)
    status, answer = await send("PUT", grant.url, other_bytes(data), grant.headers)
    verified = await s3_bucket.grants.verify([declared])
    if s3_bucket.checks_presigned:
        assert status == 400 and b"BadDigest" in answer
        assert verified.missing == (declared.md5_hex,)
    else:
        # moto does not compare Content-MD5 with the body; verify reads the ETag.
        assert status == 200 and verified.wrong_md5 == (declared.md5_hex,)


async def test_a_put_of_another_size_is_refused(s3_bucket: S3Bucket) -> None:
    data = os.urandom(1000)
    declared = spec(data)
    grant = await s3_bucket.grants.upload(declared, uploader=ALICE)
    assert isinstance(grant, PutGrant)
    longer = data + b"more"
    # The node tells the truth about the length it sends: the signed one is 1000.
    headers = {**grant.headers, "Content-Length": str(len(longer))}
    status, _ = await send("PUT", grant.url, longer, headers)
    verified = await s3_bucket.grants.verify([declared])
    if s3_bucket.checks_presigned:
        assert status == 403  # Content-Length is signed
        assert verified.missing == (declared.md5_hex,)
    else:
        # moto checks neither the signature nor Content-MD5 (which other bytes could
        # never match on S3): verify finds another size.
        assert status == 200 and verified.wrong_size == (declared.md5_hex,)


# -- S3: multipart ---------------------------------------------------------------------------


async def send_parts(grant: PartsGrant, data: bytes, numbers: list[int]) -> None:
    for part in grant.parts:
        if part.number in numbers:
            body = data[(part.number - 1) * PART : part.number * PART]
            assert (await send("PUT", part.url, body, part.headers))[0] == 200


async def start_parts(grants: S3Grants) -> tuple[bytes, BlobSpec, PartsGrant]:
    """A blob of three parts (the last of 1000 bytes), and the grant that starts it."""
    data = os.urandom(2 * PART + 1000)
    declared = spec(data, PART)
    grant = await grants.upload(declared, uploader=ALICE)
    assert isinstance(grant, PartsGrant)
    return data, declared, grant


async def test_a_multipart_upload_resumes_after_a_crash_with_urls_for_missing_parts_only(
    s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    grants = s3_bucket.grants
    data, declared, grant = await start_parts(grants)
    assert [p.number for p in grant.parts] == [1, 2, 3]
    assert grant.parts[2].headers["Content-Length"] == "1000"
    await send_parts(grant, data, [1, 2])
    upload_id = grant.upload_id
    del grant  # the node crashes: it kept the upload id, nothing else

    with pytest.raises(InvalidInputError, match=rf"{declared.md5_hex}.*parts 3 of upload"):
        await grants.complete(declared, upload_id)
    again = await grants.upload(declared, upload_id=upload_id, uploader=ALICE)
    assert isinstance(again, PartsGrant) and again.upload_id == upload_id
    assert [p.number for p in again.parts] == [3]
    await send_parts(again, data, [3])
    await grants.complete(declared, upload_id)
    await grants.complete(declared, upload_id)  # an answer lost, asked again: fine

    assert (await grants.verify([declared])).ok
    assert await read_back(s3_bucket.store, declared.md5_hex, tmp_path) == data
    # On S3 only the parts are proven (the ETag is theirs): declared in other parts,
    # the same blob does not pass; rclone's ETag is the whole MD5, which does.
    other_cut = spec(data, PART + GCS_CHUNK)
    assert (await grants.verify([other_cut])).ok is s3_bucket.whole_md5_etags


async def test_a_part_sent_with_other_bytes_is_refused_and_granted_again(
    s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    grants = s3_bucket.grants
    data, declared, grant = await start_parts(grants)
    await send_parts(grant, data, [1, 3])
    second = grant.parts[1]
    status, answer = await send("PUT", second.url, other_bytes(data[PART : 2 * PART]),
                                second.headers)  # fmt: skip
    if s3_bucket.checks_presigned:
        assert status == 400 and b"BadDigest" in answer
        # rclone drops the whole upload on a bad part (S3 keeps it): start again.
        with pytest.raises(InvalidInputError, match="no unfinished upload of it"):
            await grants.complete(declared, grant.upload_id)
        grant = await grants.upload(declared, uploader=ALICE)
        assert isinstance(grant, PartsGrant)
        await send_parts(grant, data, [1, 2, 3])
    else:
        assert status == 200  # moto keeps it: complete finds its ETag wrong
        with pytest.raises(InvalidInputError, match=r"parts 2 of upload .* send them again"):
            await grants.complete(declared, grant.upload_id)
        again = await grants.upload(declared, upload_id=grant.upload_id, uploader=ALICE)
        assert isinstance(again, PartsGrant) and [p.number for p in again.parts] == [2]
        await send_parts(again, data, [2])
    await grants.complete(declared, grant.upload_id)
    assert (await grants.verify([declared])).ok
    assert await read_back(s3_bucket.store, declared.md5_hex, tmp_path) == data


async def test_an_upload_id_is_good_only_for_its_own_blob(s3_bucket: S3Bucket) -> None:
    mine, theirs = (spec(os.urandom(PART + (2 << 20)), PART) for _ in range(2))
    grant = await s3_bucket.grants.upload(mine, uploader=ALICE)
    assert isinstance(grant, PartsGrant)
    with pytest.raises(InvalidInputError, match=rf"{theirs.md5_hex}.*no unfinished upload"):
        await s3_bucket.grants.upload(theirs, upload_id=grant.upload_id, uploader=ALICE)
    with pytest.raises(InvalidInputError, match=rf"{theirs.md5_hex}.*no unfinished upload"):
        await s3_bucket.grants.complete(theirs, grant.upload_id)


async def test_each_upload_records_its_uploader_and_verify_tells_another_ones(
    s3_bucket: S3Bucket,
) -> None:
    data = os.urandom(5000)
    declared = spec(data)
    grant = await s3_bucket.grants.upload(declared, uploader=ALICE)
    assert isinstance(grant, PutGrant)
    assert (await send("PUT", grant.url, data, grant.headers))[0] == 200
    assert (await s3_bucket.grants.verify([declared], uploader=ALICE)).ok
    assert (await s3_bucket.grants.verify([declared], uploader=BOB)).other_uploader == (
        declared.md5_hex,
    )
    # Bob's PUT replaces Alice's object with the same bytes (S3 takes no others).
    theirs = await s3_bucket.grants.upload(declared, uploader=BOB)
    assert isinstance(theirs, PutGrant)
    assert (await send("PUT", theirs.url, data, theirs.headers))[0] == 200
    assert (await s3_bucket.grants.verify([declared], uploader=BOB)).ok


# rclone's S3 server ignores If-None-Match on a completion (S3, GCS and MinIO honour it):
# docs/decisions.md says a server's bucket must honour conditional writes.
@pytest.mark.parametrize("s3_bucket", ["moto"], indirect=True)
async def test_a_multipart_upload_never_replaces_a_blob_and_counts_only_with_the_same_parts(
    s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    grants = s3_bucket.grants
    data, declared, grant = await start_parts(grants)
    await send_parts(grant, data, [1, 2, 3])
    await grants.complete(declared, grant.upload_id)
    assert (await grants.verify([declared], uploader=ALICE)).ok

    # The same parts again, by Bob: the object stays Alice's, the upload counts.
    again = await grants.upload(declared, uploader=BOB)
    assert isinstance(again, PartsGrant)
    await send_parts(again, data, [1, 2, 3])
    await grants.complete(declared, again.upload_id)
    assert (await grants.verify([declared], uploader=ALICE)).ok

    # Other bytes declared under the blob's MD5 (parts S3 checks, a whole it cannot):
    # refused, and the blob is not replaced.
    fake = os.urandom(len(data))
    forged = BlobSpec(
        declared.md5_hex,
        len(fake),
        PART,
        tuple(hashlib.md5(fake[i : i + PART]).hexdigest() for i in range(0, len(fake), PART)),
    )
    attempt = await grants.upload(forged, uploader=BOB)
    assert isinstance(attempt, PartsGrant)
    await send_parts(attempt, fake, [1, 2, 3])
    with pytest.raises(InvalidInputError, match="never replaced"):
        await grants.complete(forged, attempt.upload_id)
    assert await read_back(s3_bucket.store, declared.md5_hex, tmp_path) == data


async def test_s3_grants_refuse_what_s3_would_not_take(tmp_path: Path) -> None:
    store = small_s3_store("s3://never-asked/grants", tmp_path / "uploads")
    grants = grants_for(store)
    big = b"x" * (7 << 20)  # over the 6 MiB threshold of small_s3_store
    with pytest.raises(InvalidInputError, match=r"goes up in parts .* give the part size"):
        await grants.upload(spec(big), uploader=ALICE)
    with pytest.raises(InvalidInputError, match="goes up in one PUT"):
        await grants.upload(spec(b"small", PART), uploader=ALICE)
    with pytest.raises(InvalidInputError, match="at least 5,242,880"):
        await grants.upload(spec(big, 1 << 20), uploader=ALICE)
    for seconds in (0, 8 * 24 * 3600):
        with pytest.raises(InvalidInputError, match="from 1 to 604800 seconds"):
            await grants.download("0" * 32, expires_in=seconds)
    with pytest.raises(InvalidInputError, match="2 parts, but 1 part MD5s"):
        BlobSpec(hashlib.md5(big).hexdigest(), len(big), 4 << 20, ("0" * 32,))
    with pytest.raises(InvalidInputError, match="not an MD5 digest"):
        BlobSpec("../etc/passwd", 3)


# -- verify, on S3 and GCS -------------------------------------------------------------------


@pytest.fixture(params=["s3", "gcs"])
async def bucket_writer(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[S3Store | GCSStore, Callable[[str, bytes | None], Awaitable[None]]]]:
    """A server's store, and a way to write (or, with None, delete) an object under a
    blob's key behind its back, with the admin's credentials."""
    store: S3Store | GCSStore
    if request.param == "s3":
        s3: S3 = request.getfixturevalue("s3")
        s3_bucket = s3.bucket()
        store = small_s3_store(f"s3://{s3_bucket}/grants", tmp_path / "uploads")

        async def write(name: str, data: bytes | None) -> None:
            if data is None:
                await asyncio.to_thread(s3.client.delete_object, Bucket=s3_bucket, Key=name)
            else:
                await asyncio.to_thread(s3.put, s3_bucket, name, data)

    else:
        gcs: GCS = request.getfixturevalue("gcs")
        gcs_bucket = gcs.bucket()
        store = small_gcs_store(f"gs://{gcs_bucket}/grants", tmp_path / "uploads")

        async def write(name: str, data: bytes | None) -> None:
            if data is None:
                await asyncio.to_thread(gcs.delete, gcs_bucket, name)
            else:
                await asyncio.to_thread(gcs.put, gcs_bucket, name, data)

    try:
        yield store, write
    finally:
        await store.close()


async def test_verify_reports_blobs_missing_resized_or_rewritten_in_the_bucket(
    bucket_writer: tuple[S3Store | GCSStore, Callable[[str, bytes | None], Awaitable[None]]],
    tmp_path: Path,
) -> None:
    store, write = bucket_writer
    items = [blob(tmp_path / f"f{i}", os.urandom(2000 + i)) for i in range(4)]
    assert await store.put_blobs(items) == 4
    kept, gone, resized, rewritten = (spec(Path(i.source).read_bytes()) for i in items)
    await write(store.blob_object(gone.md5_hex), None)
    await write(store.blob_object(resized.md5_hex), b"shorter")
    data = Path(items[3].source).read_bytes()
    await write(store.blob_object(rewritten.md5_hex), other_bytes(data))
    grants = grants_for(store)
    assert grants is not None

    found = await grants.verify([kept, gone, resized, rewritten, kept])
    assert found.missing == (gone.md5_hex,)
    assert found.wrong_size == (resized.md5_hex,)
    assert found.wrong_md5 == (rewritten.md5_hex,)
    with pytest.raises(InvalidInputError) as refused:
        found.check(store.url)
    message = str(refused.value)
    assert all(b.md5_hex in message for b in (gone, resized, rewritten))
    assert kept.md5_hex not in message and "upload them again" in message
    assert (await grants.verify([kept])).ok


# -- GCS: resumable sessions -----------------------------------------------------------------


async def test_a_node_without_credentials_uploads_through_a_gcs_session_and_reads_it_back(
    gcs_store: GCSStore, tmp_path: Path
) -> None:
    data = os.urandom(GCS_CHUNK + 1000)
    declared = spec(data)
    grants = grants_for(gcs_store)
    grant = await grants.upload(declared, uploader=ALICE)
    assert isinstance(grant, SessionGrant) and grant.size == len(data)
    first = f"bytes 0-{GCS_CHUNK - 1}/{len(data)}"
    status, _ = await send("PUT", grant.url, data[:GCS_CHUNK], {"Content-Range": first})
    assert status == 308  # kept; the node goes on from the committed offset
    rest = f"bytes {GCS_CHUNK}-{len(data) - 1}/{len(data)}"
    status, _ = await send("PUT", grant.url, data[GCS_CHUNK:], {"Content-Range": rest})
    assert status in (200, 201)

    assert (await grants.verify([declared])).ok
    assert await read_back(gcs_store, declared.md5_hex, tmp_path) == data
    download = await grants.download(declared.md5_hex)
    # The emulator's branch: a plain media URL, no signature, no expiry.
    assert download.expires_at is None and "alt=media" in download.url
    assert await send("GET", download.url) == (200, data)


async def test_a_blob_gcs_already_holds_gets_a_session_that_replaces_only_what_was_there(
    gcs_store: GCSStore, tmp_path: Path
) -> None:
    data = os.urandom(5000)
    declared = spec(data)
    grants = grants_for(gcs_store)
    whole = {"Content-Range": f"bytes 0-{len(data) - 1}/{len(data)}"}
    first = await grants.upload(declared, uploader=ALICE)
    assert (await send("PUT", first.url, data, whole))[0] == 200
    # Bob is told nothing of Alice's object: he gets a session as for a new blob.
    second = await grants.upload(declared, uploader=BOB)
    assert isinstance(second, SessionGrant)
    assert (await grants.verify([declared], uploader=BOB)).other_uploader == (declared.md5_hex,)
    assert (await send("PUT", second.url, data, whole))[0] == 200
    assert (await grants.verify([declared], uploader=BOB)).ok
    assert (await grants.verify([declared], uploader=ALICE)).other_uploader == (declared.md5_hex,)
    assert await read_back(gcs_store, declared.md5_hex, tmp_path) == data


async def test_a_gcs_session_sent_other_bytes_is_caught_and_the_next_grant_replaces_it(
    gcs_store: GCSStore, tmp_path: Path
) -> None:
    data = os.urandom(5000)
    declared = spec(data)
    grants = grants_for(gcs_store)
    grant = await grants.upload(declared, uploader=ALICE)
    assert isinstance(grant, SessionGrant)
    whole = {"Content-Range": f"bytes 0-{len(data) - 1}/{len(data)}"}
    status, _ = await send("PUT", grant.url, other_bytes(data), whole)
    # GCS refuses to finish an object whose MD5 is not the session's md5Hash (400);
    # fake-gcs-server does not check: verify does.
    assert status == 200
    assert (await grants.verify([declared])).wrong_md5 == (declared.md5_hex,)

    again = await grants.upload(declared, uploader=ALICE)  # replaces the wrong object
    assert isinstance(again, SessionGrant)
    assert (await send("PUT", again.url, data, whole))[0] == 200
    assert (await grants.verify([declared])).ok
    assert await read_back(gcs_store, declared.md5_hex, tmp_path) == data


async def test_a_gcs_session_sent_another_size_is_caught_by_verify(gcs_store: GCSStore) -> None:
    data = os.urandom(5000)
    declared = spec(data)
    grant = await grants_for(gcs_store).upload(declared, uploader=ALICE)
    assert isinstance(grant, SessionGrant)
    short = data[:4000]
    status, _ = await send("PUT", grant.url, short, {"Content-Range": "bytes 0-3999/4000"})
    # GCS holds a session to the X-Upload-Content-Length it was opened with;
    # fake-gcs-server takes any total: verify finds another size.
    assert status == 200
    assert (await grants_for(gcs_store).verify([declared])).wrong_size == (declared.md5_hex,)


async def test_gcs_grants_have_no_upload_ids_to_resume_or_complete(gcs_store: GCSStore) -> None:
    declared = spec(b"x" * 10)
    with pytest.raises(InvalidInputError, match="Content-Range: bytes"):
        await grants_for(gcs_store).upload(declared, upload_id="some-id", uploader=ALICE)
    with pytest.raises(InvalidInputError, match="completes with its last chunk"):
        await grants_for(gcs_store).complete(declared, "some-id")


# -- GCS: signed downloads -------------------------------------------------------------------


def service_account(path: Path, key: rsa.RSAPrivateKey | None) -> Path:
    """A credentials file: a service account's with ``key``, or (None) a user's."""
    if key is None:
        data = {"type": "authorized_user", "client_id": "c", "client_secret": "s",
                "refresh_token": "r"}  # fmt: skip
    else:
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        data = {"type": "service_account", "client_email": "grants@p.iam.gserviceaccount.com",
                "private_key": pem, "token_uri": "https://oauth2.googleapis.com/token"}  # fmt: skip
    path.write_text(json.dumps(data))
    return path


async def test_gcs_download_urls_are_v4_signed_with_the_service_account_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Off an emulator no request is needed to sign: the URL is checked here against
    the key's public half, as GCS would check it."""
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    credentials = service_account(tmp_path / "sa.json", key)
    store = GCSStore("gs://a-bucket/p", state_dir=tmp_path / "u", service_file=str(credentials))
    md5_hex = hashlib.md5(b"signed").hexdigest()
    try:
        grant = await grants_for(store).download(md5_hex, expires_in=600)
    finally:
        await store.close()
    assert isinstance(grant, DownloadGrant) and grant.expires_at is not None
    url = urlsplit(grant.url)
    assert (url.scheme, url.netloc) == ("https", "storage.googleapis.com")
    assert url.path == f"/a-bucket/p/blobs/md5/{md5_hex[:2]}/{md5_hex}"
    query = dict(parse_qsl(url.query))
    assert query["X-Goog-Expires"] == "600"
    assert query["X-Goog-Credential"].startswith("grants@p.iam.gserviceaccount.com/")
    signed_query = url.query.rpartition("&X-Goog-Signature=")[0]
    canonical = "\n".join(
        ["GET", url.path, signed_query, "host:storage.googleapis.com\n", "host", "UNSIGNED-PAYLOAD"]
    )
    scope = query["X-Goog-Credential"].partition("/")[2]
    to_sign = "\n".join(
        ["GOOG4-RSA-SHA256", query["X-Goog-Date"], scope,
         hashlib.sha256(canonical.encode()).hexdigest()]
    )  # fmt: skip
    key.public_key().verify(
        bytes.fromhex(query["X-Goog-Signature"]),
        to_sign.encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )


async def test_gcs_credentials_without_a_key_cannot_sign_and_say_what_to_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    credentials = service_account(tmp_path / "user.json", None)
    store = GCSStore("gs://a-bucket/p", state_dir=tmp_path / "u", service_file=str(credentials))
    try:
        with pytest.raises(StoreAccessError, match=r"cannot sign URLs.*GOOGLE_APPLICATION_CRED"):
            await grants_for(store).download("0" * 32)
    finally:
        await store.close()
