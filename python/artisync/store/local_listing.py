"""Listing and deleting what a local store holds, for garbage collection.

The fan-out layout (``blobs/md5/<hex[:2]>/<hex>``, ``manifests/<hex[:2]>/<hex>.json``)
is walked with ``os.scandir``, whose entries carry the stat the collection needs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence

from artisync.store.base import blob_key, check_manifest_key

__all__ = ["delete_files", "list_blobs", "list_manifests"]


def _walk_fanout(root: str) -> list[tuple[str, os.stat_result]]:
    found: list[tuple[str, os.stat_result]] = []
    with contextlib.suppress(FileNotFoundError), os.scandir(root) as fanout:
        for sub in fanout:
            if not sub.is_dir(follow_symlinks=False):
                continue
            with os.scandir(sub.path) as files:
                for f in files:
                    if f.is_file(follow_symlinks=False):
                        found.append((f"{sub.name}/{f.name}", f.stat(follow_symlinks=False)))
    return found


def list_blobs(store_root: str) -> list[tuple[str, int, float]]:
    """``(md5_hex, size, mtime)`` of every blob under ``store_root``."""
    blobs = os.path.join(store_root, "blobs", "md5")
    return [(name.rpartition("/")[2], st.st_size, st.st_mtime) for name, st in _walk_fanout(blobs)]


def list_manifests(store_root: str) -> list[tuple[str, float]]:
    """``(key, mtime)`` of every manifest under ``store_root``."""
    root = os.path.join(store_root, "manifests")
    return [(f"manifests/{name}", st.st_mtime) for name, st in _walk_fanout(root)]


def delete_files(store_root: str, keys: Sequence[str]) -> None:
    """Unlink each key (a blob's or a manifest's) under ``store_root``; absent is fine."""
    for key in keys:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(store_root, key))


def blob_keys(md5_hexes: Sequence[str]) -> list[str]:
    return [blob_key(h) for h in md5_hexes]


def manifest_keys(keys: Sequence[str]) -> list[str]:
    return [check_manifest_key(k) for k in keys]
