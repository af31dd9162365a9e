"""A version is visible only once all its content is stored (DESIGN.md): with a store
of its own (``store`` in its settings: the team's bucket), the server checks each new
version's and part's manifest and blobs before it commits.

Two ways, by what the store is:

- **A bucket** (S3, GCS), which nodes reach only through the server's presigned grants
  (:mod:`artisync.server.routes_transfers`): every blob of the manifest must be one the
  caller has proven they hold (:mod:`artisync.server.blob_index`): in a committed version
  they may read, in a verified part of the same distributed version, or uploaded by
  them, which the bucket says (each object names its uploader, and has the size and MD5
  declared). A grant proves nothing about what was sent, and a blob someone else stored
  proves nothing about what the caller holds. The manifest's blobs are recorded in the
  index as they are asked about (a row proves nothing until a version names it).
- **A shared filesystem** (``file://``), which nodes write themselves: the manifest and
  every blob must be there.

The manifest must also be the one its key names (the artifact digest of its entries).
The check runs once per new submission (a retried commit finds its answer first) and
reads the manifest once. A version naming another store than the server's is refused: a
team's server serves one bucket, and what it cannot see it cannot vouch for.
"""

from __future__ import annotations

import asyncio
import json
from typing import Final

from artisync.errors import InvalidInputError, ManifestError
from artisync.manifest import Manifest, artifact_digest, md5_b64_to_hex
from artisync.registry import DEFAULT_ENTITY
from artisync.registry.model import NewPart, NewVersion
from artisync.server.blob_index import BlobIndex, Distributed
from artisync.server.caller import Caller
from artisync.store import ObjectNotFoundError, Store
from artisync.store.base import manifest_key
from artisync.store.grants import BlobSpec, Grants, Verification, first_few
from artisync.store.grants_for import grants_for

__all__ = ["ContentCheck"]

# Seconds a check may take: one manifest and its new blobs' metadata, batched.
_TIMEOUT: Final = 300.0


class ContentCheck:
    """Refuses a commit whose content ``store`` does not hold as it must.

    With ``index`` (the server's database) and a bucket store, the bucket is reached by
    presigned grants and checked as the module says; otherwise blobs need only exist.
    """

    def __init__(self, store: Store, index: BlobIndex | None = None) -> None:
        self.store = store
        self.index = index
        self.grants: Grants | None = grants_for(store) if index is not None else None

    async def require(self, content: NewVersion | NewPart, caller: Caller) -> None:
        """Return when all of ``content``'s blobs are stored as they must be for
        ``caller``; else raise :class:`InvalidInputError` saying what is wrong."""
        if content.store != self.store.url:
            raise InvalidInputError(
                f"artifact {content.name!r} is stored in {content.store or 'no named store'}, "
                f"but this server serves the store {self.store.url}: point the node's store "
                "setting at it"
            )
        async with asyncio.timeout(_TIMEOUT):
            blobs = await self._blobs(content)
            if self.grants is None or self.index is None:
                await self._present(content, blobs)
                return
            await self._proven(content, caller, blobs, self.grants, self.index)

    async def _blobs(self, content: NewVersion | NewPart) -> dict[str, int]:
        """The manifest's stored blobs, ``{md5 hex: size}``, once it is checked to be
        the manifest its key names."""
        name, key = content.name, content.manifest_key
        try:
            data = await self.store.get_manifest(key)
        except ObjectNotFoundError:
            raise InvalidInputError(
                f"artifact {name!r}: its manifest {key} is not in the store "
                f"{self.store.url}; store it, then commit again"
            ) from None
        try:
            manifest = Manifest.from_json(json.loads(data))
        except (ValueError, ManifestError) as e:
            raise InvalidInputError(
                f"artifact {name!r}: its manifest {key} is not a manifest ({e})"
            ) from None
        if manifest_key(artifact_digest(manifest.entries.values())) != key:
            raise InvalidInputError(
                f"artifact {name!r}: the manifest stored at {key} lists other entries than "
                "that key's artifact digest: log the artifact again"
            )
        return {
            md5_b64_to_hex(e.digest): e.size or 0
            for e in manifest.entries.values()
            if e.ref is None
        }

    async def _present(self, content: NewVersion | NewPart, blobs: dict[str, int]) -> None:
        present = await self.store.has_blobs(sorted(blobs))
        missing = sorted(md5 for md5 in blobs if md5 not in present)
        if missing:
            raise InvalidInputError(
                f"artifact {content.name!r} (submission {content.submission_id}) lists "
                f"{len(missing)} blob(s) the store {self.store.url} does not hold "
                f"({first_few(missing)}): a version is committed only once all its content "
                "is stored; upload them, then commit again"
            )

    async def _proven(
        self,
        content: NewVersion | NewPart,
        caller: Caller,
        blobs: dict[str, int],
        grants: Grants,
        index: BlobIndex,
    ) -> None:
        """Refuse unless ``caller`` has proven they hold every blob (module docstring)."""
        distributed = None
        if content.distributed_id is not None:
            entity = content.entity or DEFAULT_ENTITY
            distributed = Distributed(entity, content.project, content.name, content.distributed_id)
        held, uploaded = await asyncio.to_thread(
            index.record_and_prove, caller, content.manifest_key, blobs, distributed
        )
        fresh = sorted(set(blobs) - held - uploaded)
        found = await grants.verify(
            [BlobSpec(md5, blobs[md5]) for md5 in fresh], uploader=caller.user
        )
        # A completed multipart upload's ETag is not the blob's MD5: the server checked
        # its parts when it completed it; here, only that it is still there, whole.
        parted = await grants.verify([BlobSpec(md5, blobs[md5]) for md5 in sorted(uploaded)])
        Verification(
            missing=found.missing + parted.missing,
            wrong_size=found.wrong_size + parted.wrong_size,
            wrong_md5=found.wrong_md5,
            other_uploader=found.other_uploader,
        ).check(f"artifact {content.name!r} in {self.store.url}")
