"""gs:// references expanded against a real fake-gcs-server on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from artisync.references import (
    ReferenceAccessError,
    ReferenceNotFoundError,
    ReferenceUnavailableError,
    TooManyObjectsError,
)
from artisync.references import gcs as gcs_module
from artisync.references.remote import RemoteReferences
from servers import GCS, HttpFiles, free_port


def b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


async def expand(uri: str, name: str = "", **kw: object) -> dict[str, dict[str, object]]:
    async with RemoteReferences() as refs:
        found = await refs.expand(uri, name, **kw)  # type: ignore[arg-type]
    return {e.path: {"ref": e.ref, "digest": e.digest, "size": e.size, **e.extra} for e in found}


async def test_single_object_has_md5_digest_etag_and_generation(gcs: GCS) -> None:
    bucket = gcs.bucket()
    meta = gcs.put(bucket, "checkpoints/model.h5", b"weights")
    got = await expand(f"gs://{bucket}/checkpoints/model.h5")
    assert got == {
        "model.h5": {
            "ref": f"gs://{bucket}/checkpoints/model.h5",
            "digest": b64md5(b"weights"),
            "size": 7,
            "etag": meta["etag"],
            "versionID": int(meta["generation"]),
        }
    }
    assert list(await expand(f"gs://{bucket}/checkpoints/model.h5", "models/mymodel.h5")) == [
        "models/mymodel.h5"
    ]


async def test_prefix_is_paginated_and_named_relative_to_it(
    gcs: GCS, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = gcs.bucket()
    objects = {f"images/{i:02d}.png": b"%d" % i for i in range(25)}
    gcs.put_many(bucket, {**objects, "images2/x.png": b"x"})
    monkeypatch.setattr(gcs_module, "LIST_PAGE", 10)  # three pages
    got = await expand(f"gs://{bucket}/images")
    assert sorted(got) == sorted(k.removeprefix("images/") for k in objects)
    assert got["07.png"]["digest"] == b64md5(b"7")
    assert got["07.png"]["ref"] == f"gs://{bucket}/images/07.png"
    named = await expand(f"gs://{bucket}/images/", "images")
    assert sorted(named) == sorted(objects)


async def test_over_max_objects_across_pages_counts_them_all(
    gcs: GCS, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = gcs.bucket()
    gcs.put_many(bucket, {f"p/{i}": b"x" for i in range(12)})
    monkeypatch.setattr(gcs_module, "LIST_PAGE", 5)
    assert len(await expand(f"gs://{bucket}/p", max_objects=12)) == 12
    with pytest.raises(TooManyObjectsError, match=rf"'gs://{bucket}/p' holds 12 objects"):
        await expand(f"gs://{bucket}/p", max_objects=6)


async def test_generation_pins_one_version(gcs_versioned: GCS) -> None:
    gcs = gcs_versioned
    bucket = gcs.bucket(versioned=True)
    first = gcs.put(bucket, "m.bin", b"first")
    gcs.put(bucket, "m.bin", b"second!")
    got = await expand(f"gs://{bucket}/m.bin#{first['generation']}")
    assert got["m.bin"]["versionID"] == int(first["generation"])
    assert got["m.bin"]["digest"] == b64md5(b"first")
    assert got["m.bin"]["ref"] == f"gs://{bucket}/m.bin"
    with pytest.raises(ReferenceNotFoundError, match="generation 1 of"):
        await expand(f"gs://{bucket}/m.bin#1")


async def test_fetch_gets_the_recorded_generation(gcs_versioned: GCS, tmp_path: Path) -> None:
    gcs = gcs_versioned
    bucket = gcs.bucket(versioned=True)
    gcs.put(bucket, "f", b"one")
    async with RemoteReferences() as refs:
        [entry] = await refs.expand(f"gs://{bucket}/f")
        gcs.put(bucket, "f", b"two")
        assert await refs.fetch(entry.ref, entry.digest, entry.extra, tmp_path / "f") == 3
    assert (tmp_path / "f").read_bytes() == b"one"


async def test_a_generation_that_is_gone_is_not_found(gcs: GCS, tmp_path: Path) -> None:
    bucket = gcs.bucket()
    gcs.put(bucket, "f", b"one")
    async with RemoteReferences() as refs:
        [entry] = await refs.expand(f"gs://{bucket}/f")
        gcs.put(bucket, "f", b"two")  # unversioned: the old generation is gone
        with pytest.raises(ReferenceNotFoundError, match=f"generation {entry.extra['versionID']}"):
            await refs.fetch(entry.ref, entry.digest, entry.extra, tmp_path / "f")


async def test_missing_object_and_bucket_are_clear_errors(gcs: GCS) -> None:
    bucket = gcs.bucket()
    with pytest.raises(ReferenceNotFoundError, match="no object 'nothing' in bucket"):
        await expand(f"gs://{bucket}/nothing")
    with pytest.raises(ReferenceNotFoundError, match="no-such-bucket"):
        await expand("gs://no-such-bucket/x/")


async def test_unreadable_credentials_file_says_what_to_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(ReferenceAccessError) as e:
        await expand("gs://bucket/key")
    assert "gs://bucket/key" in str(e.value) and "GOOGLE_APPLICATION_CREDENTIALS" in str(e.value)
    (tmp_path / "bad.json").write_text("{not json")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "bad.json"))
    with pytest.raises(ReferenceAccessError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        await expand("gs://bucket/key")


async def test_unreachable_emulator_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ReferenceUnavailableError, match="gs://b/k"):
        await expand("gs://b/k")


async def test_a_rejected_service_account_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, http_files: HttpFiles
) -> None:
    # A well-formed key whose token endpoint (a local server) refuses it.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    account = {
        "type": "service_account",
        "client_email": "nobody@example.iam.gserviceaccount.com",
        "private_key": pem,
        "private_key_id": "1",
        "token_uri": http_files.url("token"),
    }
    (tmp_path / "sa.json").write_text(json.dumps(account))
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "sa.json"))
    with pytest.raises(ReferenceAccessError) as e:
        await expand("gs://bucket/key")
    assert "cannot get a Google access token to read gs://bucket/key" in str(e.value)
    assert ("POST", "/token") in http_files.requests
