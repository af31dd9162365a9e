"""The store of a node without bucket credentials (store/granted.py), in process: how it
asks grants, what it refuses, and when a node uses it (daemon/store_choice.py).

The server, its moto bucket behind a counting proxy, and its users are
``granted_team.py``'s; this process holds no bucket credentials once the team exists.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from artisync.config import Config
from artisync.daemon.gc import collect
from artisync.daemon.store_choice import REMEMBERED, open_node_store
from artisync.errors import InvalidInputError
from artisync.registry.http import HttpRegistry
from artisync.spool import Spool
from artisync.store import (
    BlobItem,
    ObjectNotFoundError,
    SourceChangedError,
    Store,
    granted,
    granted_uploads,
    shared_store,
)
from artisync.store.base import StoreAccessError
from artisync.store.granted import NotCollectedHereError
from artisync.store.project_scope import writing_for
from granted_team import BIG, Team
from servers import CountingProxy


@pytest.fixture
def server_proxy(s3_team: Team, counting_proxy: Callable[[str], CountingProxy]) -> CountingProxy:
    """A counting proxy in front of the artisync server: the JSON calls a node makes."""
    return counting_proxy(s3_team.server.url)


@pytest.fixture
def store(
    s3_team: Team, server_proxy: CountingProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Store]:
    monkeypatch.setenv("ARTISYNC_API_KEY", s3_team.keys["alice"])
    yield shared_store(s3_team.store, tmp_path, server=server_proxy.url)


def _files(root: Path, contents: list[bytes]) -> list[BlobItem]:
    root.mkdir(exist_ok=True)
    items = []
    for i, data in enumerate(contents):
        path = root / f"f{i}"
        path.write_bytes(data)
        items.append(BlobItem(hashlib.md5(data).hexdigest(), path, len(data)))
    return items


def _put(store: Store, items: list[BlobItem]) -> int:
    async def put() -> int:
        with writing_for("vision", "detector"):
            return await store.put_blobs(items)

    return asyncio.run(put())


def test_grants_are_asked_a_thousand_blobs_at_a_time(
    s3_team: Team, store: Store, server_proxy: CountingProxy, tmp_path: Path
) -> None:
    items = _files(tmp_path / "src", [f"blob {i}".encode() for i in range(1001)])
    assert _put(store, items + items[:5]) == 1001  # each blob once
    assert server_proxy.count("POST") == 2
    assert s3_team.proxy is not None and s3_team.proxy.blob_puts() == 1001


def test_a_source_changed_since_it_was_hashed_is_refused_not_stored(
    s3_team: Team, store: Store, tmp_path: Path
) -> None:
    small, big = b"rows 1..10\n", os.urandom(BIG)
    items = _files(tmp_path / "src", [small, big])
    resized = BlobItem(items[0].md5_hex, items[0].source, len(small) + 1)
    with pytest.raises(SourceChangedError, match="hashed at 12 bytes and now has 11"):
        _put(store, [resized])
    touched = BlobItem(items[1].md5_hex, items[1].source, len(big), mtime_ns=1)
    with pytest.raises(SourceChangedError, match="modified after it was hashed"):
        _put(store, [touched])
    assert s3_team.proxy is not None
    assert s3_team.proxy.blob_puts() == 0 and s3_team.proxy.parts() == []


def test_uploads_are_for_a_project_named_by_writing_for(store: Store, tmp_path: Path) -> None:
    items = _files(tmp_path / "src", [b"x"])
    with pytest.raises(InvalidInputError, match="writing_for"):
        asyncio.run(store.put_blobs(items))


def test_a_manifest_goes_up_once_and_reads_only_once_a_version_holds_it(store: Store) -> None:
    digest = hashlib.md5(b"an artifact").hexdigest()
    data = b'{"version": 1, "storagePolicy": "wandb-storage-policy-v1", "contents": {}}'

    async def twice() -> list[str]:
        with writing_for("vision", "detector"):
            return [await store.put_manifest(digest, data), await store.put_manifest(digest, data)]

    first, again = asyncio.run(twice())  # the second: 412 from the bucket, kept
    assert first == again == f"manifests/{digest[:2]}/{digest}.json"
    with pytest.raises(ObjectNotFoundError):  # no committed version holds it yet
        asyncio.run(store.get_manifest(first))


def test_garbage_collection_of_the_bucket_is_refused_before_anything_is_done(
    s3_team: Team, store: Store, tmp_path: Path
) -> None:
    with pytest.raises(NotCollectedHereError, match="on the server host"):
        asyncio.run(store.list_blobs())
    with pytest.raises(NotCollectedHereError):
        asyncio.run(store.delete_blobs(["0" * 32]))
    with (
        HttpRegistry(s3_team.server.url) as registry,
        pytest.raises(NotCollectedHereError, match="`artisync gc`"),
    ):
        asyncio.run(collect(store, registry, Spool(tmp_path / "spool"), dry_run=True))


def _config(home: Path, team: Team, store: str | None = None) -> Config:
    home.mkdir(parents=True, exist_ok=True)
    lines = [f'registry = "{team.server.url}"'] + ([f'store = "{store}"'] if store else [])
    (home / "config.toml").write_text("\n".join(lines) + "\n")
    return Config.load(home)


def test_a_node_whose_store_is_the_servers_bucket_goes_through_its_grants_too(
    s3_team: Team, tmp_path: Path
) -> None:
    # Blobs a node writes with credentials of its own carry no uploader: the server
    # would refuse them, so the same bucket goes through the grants whatever the node has.
    config = _config(tmp_path / "node", s3_team, s3_team.store + "/")
    opened = asyncio.run(open_node_store(config))
    assert opened.url == s3_team.store
    assert opened.refuses_collection() is not None  # no credentials used: none to list with


def test_a_node_whose_store_is_another_bucket_uses_its_own_credentials(
    s3_team: Team, tmp_path: Path
) -> None:
    config = _config(tmp_path / "node", s3_team, "s3://another-bucket/x")
    with pytest.raises(StoreAccessError):  # none here: it says what to set
        asyncio.run(open_node_store(config))


def test_a_daemon_starting_while_the_server_is_down_writes_where_it_wrote_before(
    s3_team: Team, tmp_path: Path
) -> None:
    config = _config(tmp_path / "node", s3_team)
    assert asyncio.run(open_node_store(config)).url == s3_team.store
    assert (config.home / REMEMBERED).exists()
    s3_team.server.stop()
    assert asyncio.run(open_node_store(config)).url == s3_team.store


def test_urls_about_to_expire_are_asked_for_again_before_they_are_used(
    s3_team: Team,
    store: Store,
    server_proxy: CountingProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every grant seems about to expire: each PUT and each part asks for a new one first.
    monkeypatch.setattr(granted, "RENEW_BEFORE", 10**9)
    monkeypatch.setattr(granted_uploads, "RENEW_BEFORE", 10**9)
    items = _files(tmp_path / "src", [b"small", os.urandom(BIG)])
    assert _put(store, items) == 2
    # The small blob's batch and its renewal; the large blob's grant, a renewal before
    # each of its 4 parts, and its completion.
    assert server_proxy.count("POST") == 1 + 1 + 1 + 4 + 1
    assert s3_team.proxy is not None
    assert s3_team.proxy.blob_puts() == 1 and sorted(s3_team.proxy.parts()) == [1, 2, 3, 4]
