"""Another user's files, copied into the daemon's keeping before a remote store reads them.

A remote store uploads a blob by opening its source again, with the daemon's rights, a
while after it was hashed; for another user's file that second open would be the
daemon's, not theirs, and a path swapped in between (a link to a file only the daemon
may read) would be uploaded under the hashed name. So their content is first copied,
with their rights and its digest checked, into ``spool/ingest/<submission id>/``, a
local store of the daemon's own, and uploaded from there. The area goes when the
submission is finished; one a crash left behind goes at the next start. The daemon's
own user's files are uploaded from where they are, as always.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from artisync.daemon.callers import CoreCaller
from artisync.logs import get_logger
from artisync.spool import SUBMISSION_ID
from artisync.store import BlobItem, Store, open_directory
from artisync.store.base import check_md5_hex

__all__ = ["Ingest"]

log = get_logger("artisync.daemon")


class Ingest:
    """The ``ingest/`` folder of a spool: one area per submission that needs one."""

    def __init__(self, spool_root: Path) -> None:
        self.root = spool_root / "ingest"

    def _area(self, sub_id: str) -> Path:
        if not SUBMISSION_ID.fullmatch(sub_id):
            raise ValueError(f"{sub_id!r} is not a submission id")
        return self.root / sub_id

    async def take_in(
        self, sub_id: str, items: Sequence[BlobItem], caller: CoreCaller
    ) -> list[BlobItem]:
        """Copy ``items`` into the submission's area as ``caller`` (each digest checked
        by hashing); the same blobs, with sources the daemon alone can write."""
        area = open_directory(self._area(sub_id))
        assert area.reads_as_caller and area.local_blobs, "a directory store does both"
        await area.put_blobs(items, caller)
        return [BlobItem(item.md5_hex, _copy(area, item.md5_hex), item.size) for item in items]

    def remove(self, sub_id: str) -> None:
        """Remove a finished submission's area, if it had one."""
        if SUBMISSION_ID.fullmatch(sub_id):
            shutil.rmtree(self.root / sub_id, ignore_errors=True)

    def sweep(self, unfinished: set[str]) -> None:
        """Remove the areas of submissions that are not ``unfinished`` (a crash between
        a submission's end and its area's removal leaves one)."""
        if not self.root.is_dir():
            return
        for area in self.root.iterdir():
            if area.name not in unfinished:
                log.info("ingest_area_removed", path=area, why="its submission is finished")
                if area.is_dir() and not area.is_symlink():
                    shutil.rmtree(area, ignore_errors=True)
                else:
                    area.unlink(missing_ok=True)


def _copy(area: Store, md5_hex: str) -> str:
    """The file the area holds the blob ``md5_hex`` in."""
    path = area.local_path(check_md5_hex(md5_hex))
    assert path is not None
    return path
