"""The test servers themselves: each answers on 127.0.0.1 as the real service does."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from servers import GCS, S3, HttpFiles


def test_moto_buckets_are_fresh_and_versioned_on_request(s3: S3) -> None:
    plain, versioned = s3.bucket(), s3.bucket(versioned=True)
    assert s3.put(plain, "a", b"1").get("VersionId") is None
    assert s3.put(versioned, "a", b"1")["VersionId"]
    assert s3.endpoint.startswith("http://127.0.0.1:")


def test_fake_gcs_objects_have_generations(gcs: GCS) -> None:
    bucket = gcs.bucket()
    first = gcs.put(bucket, "dir/a.txt", b"one")
    second = gcs.put(bucket, "dir/a.txt", b"two")
    assert int(second["generation"]) > int(first["generation"])
    assert first["md5Hash"] != second["md5Hash"]


def test_http_files_switches(http_files: HttpFiles) -> None:
    url = http_files.write("d/x.bin", b"hello")
    with urllib.request.urlopen(urllib.request.Request(url, method="HEAD")) as r:
        assert r.headers["ETag"] and r.headers["Content-Length"] == "5"
    http_files.etag = False
    with urllib.request.urlopen(url) as r:
        assert r.headers["ETag"] is None and r.read() == b"hello"
    http_files.head = False
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"))
    assert e.value.code == 405
    e.value.close()
    assert ("GET", "/d/x.bin") in http_files.requests
