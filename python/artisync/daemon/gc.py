"""Expiring versions and collecting garbage: what ``artisync gc`` and the daemon run.

1. Versions whose TTL has passed are deleted (with their aliases; W&B's TTL rule).
2. A blob is garbage when no live version's manifest, no pending part of a
   distributed version, and no submission still in the spool refers to it, and it is
   older than the grace period. Manifests no version refers to go the same way.

Why nothing in flight is lost: the collection runs with the daemon's upload gate held
exclusively, so no submission is between "the store has this blob, skip it" and its
commit; submissions waiting in ``new/`` or ``work/`` protect every digest they name
(snapshots and the daemon's journal of hashes). The grace period covers the rest, such
as blobs a daemon of another home sharing the store is writing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from artisync.errors import ArtisyncError, InvalidInputError, ManifestError, SubmissionError
from artisync.logs import get_logger
from artisync.manifest import Manifest, md5_b64_to_hex
from artisync.registry.contract import Registry
from artisync.registry.model import Version
from artisync.spool import Spool, StagedEntry, StagedListEntry, Submission, staged_list
from artisync.store import Store
from artisync.store.base import ObjectNotFoundError

__all__ = [
    "DEFAULT_GRACE_SECONDS",
    "MAX_GRACE_SECONDS",
    "GcReport",
    "check_grace_seconds",
    "collect",
    "expire",
]

log = get_logger("artisync.gc")

DEFAULT_GRACE_SECONDS: Final = 3600.0
"""Unreferenced blobs younger than this are kept (an upload may be about to use them)."""
MAX_GRACE_SECONDS: Final = 366 * 86400.0
"""The longest grace a collection takes: a blob unreferenced for a year is no upload's
about-to-be-used content, and a bound keeps the cutoff an ordinary timestamp."""


def check_grace_seconds(value: object) -> float:
    """``value`` as a grace period in seconds, else :class:`InvalidInputError` naming
    the accepted range. NaN would compare false with every blob's age and so remove
    young blobs; a bool is JSON's ``true``, not a number."""
    # A range test, so NaN (every comparison false) and infinities fail it too, and a
    # 400-digit JSON integer is compared, never converted.
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 <= value <= MAX_GRACE_SECONDS
    ):
        shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:40]}..."
        raise InvalidInputError(
            f"grace_seconds must be a finite number of seconds from 0 to "
            f"{MAX_GRACE_SECONDS:.0f}, not {shown}"
        )
    return float(value)


@dataclass(slots=True)
class GcReport:
    """What one collection removed (or, with ``dry_run``, would remove)."""

    dry_run: bool
    expired: list[str] = field(default_factory=list)  # versions deleted for their TTL
    blobs_removed: int = 0
    bytes_freed: int = 0
    manifests_removed: int = 0
    blobs_kept_young: int = 0  # unreferenced, but inside the grace period
    blobs_live: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        lines = [
            f"{verb} {self.blobs_removed} blob(s), {_human(self.bytes_freed)}, and "
            f"{self.manifests_removed} manifest(s); {self.blobs_live} blob(s) in use, "
            f"{self.blobs_kept_young} unreferenced but younger than the grace period"
        ]
        if self.expired:
            what = "would expire" if self.dry_run else "expired"
            lines.append(f"{what} {len(self.expired)} version(s): " + ", ".join(self.expired))
        return "\n".join(lines)


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def expire(registry: Registry, now: float, *, dry_run: bool = False) -> list[Version]:
    """Delete every version whose TTL has passed; returns them (as they were)."""
    removed: list[Version] = []
    while True:
        batch = registry.expired_versions(now)
        if not batch:
            return removed
        for version in batch:
            if not dry_run:
                registry.delete_version(version.id, delete_aliases=True)
            removed.append(version)
        if dry_run:
            return removed


def spool_digests(spool: Spool) -> set[str]:
    """MD5 hex digests named by submissions still in ``new/`` or ``work/``."""
    digests: set[str] = set()
    for folder in ("new", "work"):
        for path in sorted(spool.folder(folder).glob("*.json")):
            try:
                sub = Submission.loads(spool.read_claimed(path)[0])
            except (OSError, SubmissionError):
                continue  # taken meanwhile, or malformed (it will be rejected)
            for entry in sub.entries:
                if isinstance(entry, StagedEntry):
                    digests.add(md5_b64_to_hex(entry.digest))
                elif isinstance(entry, StagedListEntry):
                    for digest in staged_list.digests(entry, spool.root):
                        with contextlib.suppress(InvalidInputError):  # rejected later
                            digests.add(md5_b64_to_hex(digest))
            if folder == "work":
                for journal in spool.read_journals(path):
                    for digest, *_ in journal.get("hashed", {}).values():
                        digests.add(md5_b64_to_hex(digest))
    return digests


async def _referenced(store: Store, manifest_keys: Iterable[str]) -> set[str]:
    live: set[str] = set()
    for key in manifest_keys:
        try:
            data = await store.get_manifest(key)
        except ObjectNotFoundError:
            log.warning("live_manifest_missing", manifest=key)
            continue
        try:
            manifest = Manifest.from_json(json.loads(data))
        except (ValueError, ManifestError) as e:
            raise ArtisyncError(
                f"cannot collect garbage: manifest {key} is unreadable: {e}"
            ) from None
        live.update(md5_b64_to_hex(e.digest) for e in manifest.entries.values() if e.ref is None)
    return live


async def collect(
    store: Store,
    registry: Registry,
    spool: Spool,
    *,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    dry_run: bool = False,
    now: float | None = None,
) -> GcReport:
    """Expire versions, then remove unreferenced blobs and manifests older than
    ``grace_seconds``. The caller holds the upload gate (or the home's lock)."""
    grace_seconds = check_grace_seconds(grace_seconds)
    if (refusal := store.refuses_collection()) is not None:
        raise refusal  # before anything is expired: nothing is done halfway
    now = time.time() if now is None else now
    report = GcReport(dry_run=dry_run)
    expired = await asyncio.to_thread(expire, registry, now, dry_run=dry_run)
    report.expired = [v.qualified_name for v in expired]
    keys = await asyncio.to_thread(registry.live_manifest_keys)
    if dry_run:
        # Nothing was deleted: count as if the expired versions were gone.
        keys -= {v.manifest_key for v in expired}
    live = await _referenced(store, keys)
    live |= await asyncio.to_thread(spool_digests, spool)
    cutoff = now - grace_seconds
    doomed: list[str] = []
    for md5_hex, size, mtime in await store.list_blobs():
        if md5_hex in live:
            report.blobs_live += 1
        elif mtime > cutoff:
            report.blobs_kept_young += 1
        else:
            doomed.append(md5_hex)
            report.blobs_removed += 1
            report.bytes_freed += size
    manifests = await store.list_manifests()
    stale = [key for key, mtime in manifests if key not in keys and mtime <= cutoff]
    report.manifests_removed = len(stale)
    if not dry_run:
        await store.delete_blobs(doomed)
        await store.delete_manifests(stale)
    log.info(
        "garbage_collected",
        dry_run=dry_run,
        blobs_removed=report.blobs_removed,
        bytes_freed=report.bytes_freed,
        manifests_removed=report.manifests_removed,
        blobs_live=report.blobs_live,
        blobs_kept_young=report.blobs_kept_young,
        expired=report.expired or None,
    )
    return report
