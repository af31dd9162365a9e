"""Independent digests (hashlib) and files with a known mtime, for the core's tests."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from artisync._core import FileDigest


def b64_md5(data: bytes) -> str:
    """The entry digest W&B writes: base64 of the raw MD5."""
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def write(path: Path, data: bytes, mtime_ns: int) -> Path:
    """Write ``data`` (making parents) and set an mtime with non-zero nanoseconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def assert_digest_of(result: FileDigest, path: Path, data: bytes, mtime_ns: int) -> None:
    """``result`` describes ``path``'s bytes ``data`` and its stat."""
    st = os.stat(path)
    assert result.digest == b64_md5(data)
    assert result.md5_hex == hashlib.md5(data).hexdigest()
    assert result.size == len(data) == st.st_size
    assert result.mtime_ns == st.st_mtime_ns == mtime_ns
    assert result.inode == st.st_ino
