"""A secret file made once, whole, readable by its owner alone: :func:`create_private`.

The server's secret and a daemon's key pair are made at a first start, which may be two
processes' first start at the same instant. The bytes are written and synced under a
temporary name and then hard-linked to the final one: the link is atomic and fails when
the name exists, so both processes agree on one file and neither reads half of it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["create_private"]


def create_private(path: Path, data: bytes) -> bool:
    """Make ``path`` (mode 0600) holding ``data`` unless it exists; True when this
    call made it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return False
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o600)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temp, path)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(temp)
