"""Merging the parts of a distributed version (``upsert_artifact`` / ``finish_artifact``).

Each part is a manifest some run upserted; the finishing submission adds its own
entries. The merged version holds the union. A path two of them hold with the same
digest is one entry; with different digests the version is rejected, naming the path
and the runs, since picking one would silently lose the other's content.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from artisync.daemon.expand import Rejected
from artisync.manifest import Manifest, ManifestEntry

__all__ = ["Contribution", "merge"]


@dataclass(frozen=True, slots=True)
class Contribution:
    """One writer's entries: a part, or the finishing submission's own."""

    origin: str  # e.g. "part 3 from run ab12cd34", for messages
    manifest: Manifest


def merge(name: str, distributed_id: str, contributions: Sequence[Contribution]) -> Manifest:
    """The union of the contributions' entries, in path order.

    Raises:
        Rejected: nothing to merge, or one path with two contents (all such paths named,
            up to a few).
    """
    if not any(c.manifest.entries for c in contributions):
        raise Rejected(
            "commit",
            f"finish_artifact of {name!r} found no parts for distributed_id {distributed_id!r} "
            "and has no entries of its own: call upsert_artifact with the same "
            "distributed_id (or run group) first",
        )
    merged: dict[str, ManifestEntry] = {}
    origin: dict[str, str] = {}
    conflicts: list[str] = []
    for contribution in contributions:
        for path, entry in contribution.manifest.entries.items():
            seen = merged.get(path)
            if seen is None:
                merged[path] = entry
                origin[path] = contribution.origin
            elif seen.digest != entry.digest:
                conflicts.append(
                    f"{path!r} ({origin[path]} has digest {seen.digest}, "
                    f"{contribution.origin} has {entry.digest})"
                )
    if conflicts:
        shown = "; ".join(conflicts[:5])
        more = f" and {len(conflicts) - 5} more" if len(conflicts) > 5 else ""
        raise Rejected(
            "commit",
            f"the parts of {name!r} (distributed_id {distributed_id!r}) disagree on "
            f"{len(conflicts)} path(s): {shown}{more}. Each path must have one content: "
            "write different paths from each writer",
        )
    return Manifest(dict(sorted(merged.items())))
