"""The manifest-file contract every remote store keeps, checked the same way on each."""

from __future__ import annotations

import hashlib
from pathlib import Path

from artisync.store import Store


async def check_manifest_file_first_writer_wins(store: Store, tmp_path: Path) -> None:
    """A manifest streamed from a file (3 MiB) reads back whole, and a second one
    under the same digest leaves the first in place."""
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    first.write_bytes(b'{"contents": "%s"}' % (b"x" * (3 << 20)))
    second.write_bytes(b'{"contents": {}}')
    digest = hashlib.md5(b"big artifact").hexdigest()
    key = await store.put_manifest_file(digest, first)
    assert await store.put_manifest_file(digest, second) == key
    assert await store.get_manifest(key) == first.read_bytes(), "the first writer wins"
