"""What ``wait()`` gets back once a submission is in: the receipt written to
``spool/done/`` and sent to waiting clients."""

from __future__ import annotations

import time
from typing import Any

from artisync.registry import CommitResult
from artisync.spool import Submission

__all__ = ["part_receipt", "version_receipt"]


def part_receipt(sub: Submission, seq: str) -> dict[str, Any]:
    """What ``wait()`` gets for an upserted part: it is in, with no version of its own."""
    return {
        "id": sub.id,
        "status": "committed",
        "part": True,
        "seq": seq,
        "project": sub.project,
        "entity": sub.entity,
        "name": sub.artifact.name,
        "type": sub.artifact.type,
        "distributed_id": sub.distributed_id,
        "version": None,
        "version_id": None,
        "committed_at": time.time(),
    }


def version_receipt(sub: Submission, seq: str, done: CommitResult) -> dict[str, Any]:
    v = done.version
    return {
        "id": sub.id,
        "status": "committed",
        "seq": seq,
        "project": v.project,
        "entity": v.entity,
        "name": v.name,
        "type": v.type,
        "version": v.version,
        "version_index": v.index,
        "version_id": v.id,
        "digest": v.digest,
        "created": done.created,
        "manifest_key": v.manifest_key,
        "aliases": list(v.aliases),
        "committed_at": time.time(),
    }
