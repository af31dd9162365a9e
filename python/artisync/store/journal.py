"""The journal of unfinished large uploads, so that a restarted daemon resumes them.

One small JSON file per blob being uploaded in parts, ``<state_dir>/<md5_hex>.json``:
where it goes (the store's URL and the object key), the server's upload handle (an S3
multipart upload id, a GCS resumable session URI), the part size it was cut by, the
source's size, and what the server confirmed so far (S3: each part's number and ETag;
GCS: the committed offset). A store reads it before starting an upload of that blob,
checks it against the server (ListParts, or the session's answer) and sends only what
is missing; it removes it once the object is complete.

The journal is advice, never trusted on its own: a journal lost or behind the server
costs re-sent bytes, not a wrong object, because the server's own record decides.
So its writes are atomic (a rename) but not fsynced.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from artisync.store.base import StoreUnavailableError, check_md5_hex

__all__ = ["UploadJournal"]


class UploadJournal:
    """Journal entries of one store, in its state directory (created on first write)."""

    def __init__(self, state_dir: Path, store_url: str) -> None:
        self.dir = Path(state_dir)
        self.store_url = store_url

    def _path(self, md5_hex: str) -> Path:
        return self.dir / f"{check_md5_hex(md5_hex)}.json"

    def load(self, md5_hex: str, key: str) -> dict[str, Any] | None:
        """The entry for uploading blob ``md5_hex`` to ``key`` of this store, if any.

        An entry for another store or key (the daemon moved to another bucket) is
        ignored; an unreadable one too (it is only advice).
        """
        try:
            entry = json.loads(self._path(md5_hex).read_bytes())
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict):
            return None
        if entry.get("store") != self.store_url or entry.get("key") != key:
            return None
        return entry

    def save(self, md5_hex: str, key: str, entry: dict[str, Any]) -> None:
        """Write (replace) the entry for ``md5_hex`` (blocking, atomic, not fsynced)."""
        record = {**entry, "store": self.store_url, "key": key, "updated": time.time()}
        path = self._path(md5_hex)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(record, separators=(",", ":")))
            os.replace(tmp, path)
        except OSError as e:
            with contextlib.suppress(OSError):
                tmp.unlink()
            # The state directory is ours, on the node: failing to write it is like
            # failing to write the store (retried), never the source's fault.
            raise StoreUnavailableError.from_os_error(e, e.filename or path) from e

    def remove(self, md5_hex: str) -> None:
        """Forget the entry (the upload completed or was given up)."""
        with contextlib.suppress(FileNotFoundError):
            self._path(md5_hex).unlink()

    def entries(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every ``(md5_hex, entry)`` of this store; leftover temporary files go."""
        try:
            names = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return
        for name in names:
            path = self.dir / name
            if name.startswith(".") and name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            md5_hex = name.removesuffix(".json")
            if len(md5_hex) != 32 or not name.endswith(".json"):
                continue
            try:
                entry = json.loads(path.read_bytes())
            except (OSError, ValueError):
                continue
            if isinstance(entry, dict) and entry.get("store") == self.store_url:
                yield md5_hex, entry
