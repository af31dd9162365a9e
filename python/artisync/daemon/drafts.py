"""A version drafted from another (``artifact.new_draft()``): its base's entries, changed.

W&B's ``new_draft`` copies a committed version's manifest into a draft, which the
script then extends or trims and logs as the next version, uploading only what it
added. Here the submission names the base version and the paths the draft removed or
replaced (``spool.BaseInfo``); the daemon reads the base's manifest from the store and
takes its entries but those, plus the submission's own. A client names a version, never
stored content by digest, so nothing enters a version that its caller could not read.

An own entry at a path the base still has (an immutable directory or a reference that
expanded onto it) is one entry when the contents agree and a rejection when they do
not, naming the path: as two writers of one distributed version are.
"""

from __future__ import annotations

from collections.abc import Iterable

from artisync.daemon.expand import Rejected
from artisync.manifest import Manifest, ManifestEntry
from artisync.registry.model import Version

__all__ = ["drafted"]


def drafted(
    name: str,
    base: Version,
    base_manifest: Manifest,
    removed: Iterable[str],
    own: Iterable[ManifestEntry],
    store: str,
) -> Manifest:
    """The manifest of a version drafted from ``base`` (whose manifest is
    ``base_manifest``): its entries but ``removed``, plus ``own``, in path order.

    Raises:
        Rejected: the base is in another store than ``store``, an own entry has other
            content than the base's at its path, or a path would be both a file and a
            directory.
    """
    if base.store is not None and base.store != store:
        raise Rejected(
            "commit",
            f"artifact {name!r} was drafted from {base.qualified_name}, which is in the store "
            f"{base.store}, but this daemon stores in {store}: a version's content must be in "
            "one store; log a new artifact with the files instead of a draft of it",
        )
    dropped = set(removed)
    entries = {p: e for p, e in base_manifest.entries.items() if p not in dropped}
    conflicts: list[str] = []
    for entry in own:
        kept = entries.get(entry.path)
        if kept is not None and kept.digest != entry.digest:
            conflicts.append(entry.path)
        entries[entry.path] = entry
    if conflicts:
        shown = ", ".join(repr(p) for p in conflicts[:5])
        more = f" and {len(conflicts) - 5} more" if len(conflicts) > 5 else ""
        raise Rejected(
            "commit",
            f"artifact {name!r} drafted from {base.qualified_name} adds {shown}{more} with "
            "other content than that version has there: remove() the path from the draft "
            "first, then add the new content",
        )
    for path in entries:
        end = path.find("/")
        while end != -1:
            if path[:end] in entries:
                raise Rejected(
                    "commit",
                    f"artifact {name!r} drafted from {base.qualified_name} would have both "
                    f"{path[:end]!r} and {path!r}: a path cannot be a file and a directory; "
                    "remove() one of them from the draft",
                )
            end = path.find("/", end + 1)
    return Manifest({path: entries[path] for path in sorted(entries)})
