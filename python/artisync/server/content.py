"""A version is visible only once all its content is stored (DESIGN.md): with a store
of its own (``store`` in its settings: the team's bucket), the server checks that a
commit's manifest is there and that every blob it lists is, before it commits.

The check runs once per new submission (a retried commit finds its answer first) and
costs one manifest read and one existence check per distinct blob, batched by the
store (``has_blobs``). A version naming another store than the server's is refused: a
team's server serves one bucket, and what it cannot see it cannot vouch for.

Registry calls run on worker threads; the store's clients live on the server's event
loop, so the check is handed to that loop and waited for.
"""

from __future__ import annotations

import asyncio
import json
from typing import Final

from artisync.errors import InvalidInputError, ManifestError
from artisync.manifest import Manifest, md5_b64_to_hex
from artisync.registry import NewVersion
from artisync.store import ObjectNotFoundError, Store

__all__ = ["ContentCheck"]

# Blobs named in a refusal, at most: enough to find them, short enough to read.
_NAMED: Final = 5
# Seconds a check may take: one manifest and its blobs' existence, batched.
_TIMEOUT: Final = 300.0


class ContentCheck:
    """Refuses a commit whose manifest or blobs are missing from ``store``."""

    def __init__(self, store: Store, loop: asyncio.AbstractEventLoop) -> None:
        self.store = store
        self._loop = loop

    def require(self, version: NewVersion) -> None:
        """Return when all of ``version``'s content is in the store; else raise
        :class:`InvalidInputError` saying what is missing. Called on a worker thread."""
        if version.store != self.store.url:
            raise InvalidInputError(
                f"artifact {version.name!r} is stored in {version.store or 'no named store'}, "
                f"but this server serves the store {self.store.url}: point the node's store "
                "setting at it"
            )
        check = asyncio.run_coroutine_threadsafe(self._missing(version), self._loop)
        missing = check.result(_TIMEOUT)
        if missing:
            named = ", ".join(missing[:_NAMED]) + (", …" if len(missing) > _NAMED else "")
            raise InvalidInputError(
                f"artifact {version.name!r} (submission {version.submission_id}) lists "
                f"{len(missing)} blob(s) the store {self.store.url} does not hold ({named}): "
                "a version is committed only once all its content is stored; upload them, "
                "then commit again"
            )

    async def _missing(self, version: NewVersion) -> list[str]:
        try:
            data = await self.store.get_manifest(version.manifest_key)
        except ObjectNotFoundError:
            raise InvalidInputError(
                f"artifact {version.name!r}: its manifest {version.manifest_key} is not in "
                f"the store {self.store.url}; store it, then commit again"
            ) from None
        try:
            manifest = Manifest.from_json(json.loads(data))
        except (ValueError, ManifestError) as e:
            raise InvalidInputError(
                f"artifact {version.name!r}: its manifest {version.manifest_key} is not a "
                f"manifest ({e})"
            ) from None
        wanted = sorted(
            {md5_b64_to_hex(e.digest) for e in manifest.entries.values() if e.ref is None}
        )
        present = await self.store.has_blobs(wanted)
        return [md5 for md5 in wanted if md5 not in present]
