"""http(s):// references against a real aiohttp file server on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from artisync.references import (
    ReferenceChangedError,
    ReferenceNotFoundError,
    ReferenceUnavailableError,
)
from artisync.references.remote import RemoteReferences
from servers import HttpFiles, free_port


async def expand(uri: str, name: str = "", **kw: object) -> dict[str, dict[str, object]]:
    async with RemoteReferences() as refs:
        found = await refs.expand(uri, name, **kw)  # type: ignore[arg-type]
    return {e.path: {"ref": e.ref, "digest": e.digest, "size": e.size, **e.extra} for e in found}


async def test_etag_is_the_digest_without_quotes(http_files: HttpFiles) -> None:
    url = http_files.write("data/train.csv", b"a,b\n1,2\n")
    got = await expand(url)
    etag = got["train.csv"]["etag"]
    assert isinstance(etag, str) and etag.startswith('"') and etag.endswith('"')
    assert got == {"train.csv": {"ref": url, "digest": etag[1:-1], "size": 8, "etag": etag}}
    assert http_files.requests == [("HEAD", "/data/train.csv")]


async def test_without_etag_the_digest_is_the_url(http_files: HttpFiles) -> None:
    http_files.etag = False
    url = http_files.write("x.bin", b"12345")
    assert await expand(url, "renamed/x.bin") == {
        "renamed/x.bin": {"ref": url, "digest": url, "size": 5}
    }


async def test_a_server_refusing_head_is_asked_with_get(http_files: HttpFiles) -> None:
    http_files.head = False
    url = http_files.write("x.bin", b"12345")
    got = await expand(url)
    assert got["x.bin"]["size"] == 5 and got["x.bin"]["etag"]
    assert http_files.requests == [("HEAD", "/x.bin"), ("GET", "/x.bin")]


async def test_checksum_false_asks_nothing(http_files: HttpFiles) -> None:
    url = http_files.url("never/there.txt")
    assert await expand(url, checksum=False) == {
        "there.txt": {"ref": url, "digest": url, "size": None}
    }
    assert http_files.requests == []


async def test_missing_url_is_not_found_and_5xx_is_transient(http_files: HttpFiles) -> None:
    with pytest.raises(ReferenceNotFoundError, match=r"nothing\.txt does not exist"):
        await expand(http_files.url("nothing.txt"))
    http_files.status = 503
    with pytest.raises(ReferenceUnavailableError, match="503"):
        await expand(http_files.url("nothing.txt"))


async def test_unreachable_host_is_transient() -> None:
    url = f"http://127.0.0.1:{free_port()}/x"
    with pytest.raises(ReferenceUnavailableError, match=url):
        await expand(url)


async def test_fetch_checks_the_etag(http_files: HttpFiles, tmp_path: Path) -> None:
    url = http_files.write("f.txt", b"one")
    async with RemoteReferences() as refs:
        [entry] = await refs.expand(url)
        assert await refs.fetch(entry.ref, entry.digest, entry.extra, tmp_path / "a") == 3
        assert (tmp_path / "a").read_bytes() == b"one"
        http_files.write("f.txt", b"three")
        with pytest.raises(ReferenceChangedError, match=r"f\.txt now has ETag"):
            await refs.fetch(entry.ref, entry.digest, entry.extra, tmp_path / "b")
        assert not (tmp_path / "b").exists()
