"""The download cache on a full filesystem: a clear error, and nothing half-admitted.

The cache's own writes are directories and renames, which need an inode rather than
data pages, so the tmpfs here runs out of inodes (``nr_inodes``): the kernel says
``ENOSPC`` all the same, and so must the cache, naming the filesystem.
"""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import pytest

from artisync.download.cache import BlobCache
from artisync.errors import DiskFullError
from mount_namespace import in_mount_namespace, mount_tmpfs

DATA = b"a fetched blob\n"
MD5 = hashlib.md5(DATA).hexdigest()


def _use_every_inode(directory: Path) -> list[Path]:
    directory.mkdir()
    made = []
    try:
        while True:
            path = directory / str(len(made))
            path.touch()
            made.append(path)
    except OSError as e:
        assert e.errno == errno.ENOSPC, e
    return made


@in_mount_namespace
def test_a_cache_out_of_inodes_says_so_and_admits_nothing_half_way(tmp_path: Path) -> None:
    small = tmp_path / "small"
    mount_tmpfs(small, "1m", "nr_inodes=32")
    cache = BlobCache(small / "cache")
    tmp = cache.new_tmp(MD5)
    Path(tmp).write_bytes(DATA)
    fillers = _use_every_inode(small / "fill")

    with pytest.raises(DiskFullError) as caught:
        cache.admit(tmp, MD5, len(DATA))
    message = str(caught.value)
    assert Path(caught.value.filename).is_relative_to(small / "cache")  # what could not be made
    assert f"cannot keep blob {MD5} in the download cache" in message
    assert f"tmpfs filesystem at {small}" in message and "inodes free" in message
    assert message.endswith("disk full: free space and retry")
    assert not os.path.exists(tmp), "the fetched copy stayed in tmp/"
    assert not os.path.exists(cache.blob_path(MD5))
    with pytest.raises(DiskFullError):
        BlobCache(small / "other").new_tmp(MD5)

    for path in fillers:
        path.unlink()
    again = cache.new_tmp(MD5)
    Path(again).write_bytes(DATA)
    assert cache.admit(again, MD5, len(DATA))
    assert cache.lookup(MD5, len(DATA)) == cache.blob_path(MD5)
