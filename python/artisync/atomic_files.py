"""Small files written whole or not at all: a reader never sees half of one.

The bytes are written and synced under a temporary name in the same directory, then:

- :func:`create_once` hard-links them to the final name, which is atomic and fails when
  the name exists: two processes making the same secret at their first start (the
  server's secret, a daemon's key pair) agree on one file, readable by its owner alone;
- :func:`replace` renames them over the final name, for a file that is written again.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["create_once", "replace"]


def create_once(path: Path, data: bytes) -> bool:
    """Make ``path`` (mode 0600) holding ``data`` unless it exists; True when this
    call made it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return False
    temp = _written(path, data, 0o600)
    try:
        os.link(temp, path)
    except FileExistsError:
        return False
    finally:
        os.unlink(temp)
    return True


def replace(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` with ``mode``, replacing what was there."""
    temp = _written(path, data, mode)
    try:
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise


def _written(path: Path, data: bytes, mode: int) -> str:
    """A temporary file beside ``path`` holding ``data`` (synced), with ``mode``."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), mode)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        os.unlink(temp)
        raise
    return temp
