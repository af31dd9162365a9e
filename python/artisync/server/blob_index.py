"""Which blobs a caller has proven they hold, asked of PostgreSQL (migration 0005).

A node may skip uploading a blob, and may download one, only if its caller may read a
committed version that contains it (DESIGN.md, "Many nodes": a digest alone proves
nothing). The server learns what a version contains when it verifies the version's
manifest before the commit, and keeps it here, one row per (blob, manifest); the
question is then one indexed join, whatever the size of the manifests.

Besides reading a version, a caller proves they hold a blob by uploading it: the
bucket's object names its uploader (:data:`~artisync.store.grants.UPLOADER_METADATA`),
and a multipart upload the server completed is recorded here (its object may keep an
earlier uploader's name, since a completion never replaces a blob). The parts of a
distributed version were verified when each was added, so the version that merges
them may name their blobs.

Every method blocks on the database: the server calls them on worker threads.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator, Mapping
from typing import Any, Final, NamedTuple

from artisync.server.caller import Caller
from artisync.server.side_pool import SidePool

__all__ = ["BlobIndex", "Distributed", "Proof"]

# Blobs asked per query: one version may bring a million, an array parameter of them
# all would be a statement of 17 MB.
_BATCH: Final = 10_000

# Each query starts from the blobs asked (the primary key's first column) and asks, per
# manifest holding one, for a version or part that proves it: LATERAL with LIMIT 1 keeps
# that order whatever the statistics say (with a young table's, the planner once chose
# to walk every version), so the cost follows the blobs asked, not the registry's size.
_READABLE: Final = """
SELECT DISTINCT b.md5 FROM manifest_blobs b
CROSS JOIN LATERAL (
  SELECT 1 FROM versions v
  JOIN collections c ON c.id = v.collection_id
  JOIN projects p ON p.id = c.project_id
  WHERE v.manifest_key = b.manifest_key AND v.state = 'COMMITTED' AND v.store = %(store)s
    AND (%(admin)s OR p.visibility <> 'private' OR p.entity = ANY(%(entities)s))
  LIMIT 1
) readable
WHERE b.md5 = ANY(%(md5s)s)
"""
# Readable as W&B's FAQ says (policy.decide, READ): a site admin, a project that is
# not private, or one of the caller's teams.

_MANIFEST_READABLE: Final = """
SELECT 1 FROM versions v
JOIN collections c ON c.id = v.collection_id
JOIN projects p ON p.id = c.project_id
WHERE v.manifest_key = %(key)s AND v.state = 'COMMITTED' AND v.store = %(store)s
  AND (%(admin)s OR p.visibility <> 'private' OR p.entity = ANY(%(entities)s))
UNION ALL
SELECT 1 FROM parts pt
JOIN collections c ON c.id = pt.collection_id
JOIN projects p ON p.id = c.project_id
WHERE pt.manifest_key = %(key)s AND pt.store = %(store)s
  AND (%(admin)s OR p.visibility <> 'private' OR p.entity = ANY(%(entities)s))
LIMIT 1
"""
# A part's manifest too: the node that finishes a distributed version merges the
# manifests of every node's parts, which are no committed version yet.

_UPLOADED: Final = """
SELECT md5 FROM blob_uploads WHERE md5 = ANY(%(md5s)s) AND uploader = %(uploader)s
"""

_IN_PARTS: Final = """
SELECT b.md5 FROM manifest_blobs b
CROSS JOIN LATERAL (
  SELECT 1 FROM parts pt
  JOIN collections c ON c.id = pt.collection_id
  JOIN projects p ON p.id = c.project_id
  WHERE pt.manifest_key = b.manifest_key AND pt.store = %(store)s
    AND p.entity = %(entity)s AND p.name = %(project)s AND c.name = %(name)s
    AND pt.distributed_id = %(distributed_id)s
  LIMIT 1
) part
WHERE b.md5 = ANY(%(md5s)s)
"""

_RECORD: Final = """
INSERT INTO manifest_blobs (md5, manifest_key)
SELECT unnest(%(md5s)s::bytea[]), %(key)s ON CONFLICT DO NOTHING
"""
# Its rows are not seen by a query it is a part of (one snapshot): a manifest being
# committed proves nothing of itself.


class Proof(NamedTuple):
    """What a caller has proven of some blobs: ``held``, in a committed version they
    may read (or a verified part of the version being committed), which garbage
    collection keeps; ``uploaded``, their own multipart uploads, which must still be
    in the bucket."""

    held: set[str]
    uploaded: set[str]


class Distributed(NamedTuple):
    """A distributed version, whose verified parts' blobs its own commit may name."""

    entity: str
    project: str
    name: str
    distributed_id: str


class BlobIndex:
    """The blob index of the store at ``store_url``, in the database at ``dsn``."""

    def __init__(self, dsn: str, store_url: str, *, pool_size: int = 4, timeout: float = 5.0):
        self.store_url = store_url
        # Writes here need no WAL flush of their own (record_and_prove says why), but
        # for the record of an upload, which asks for one.
        self._pool = SidePool(
            dsn,
            name="artisync blob index",
            size=pool_size,
            timeout=timeout,
            options="-c synchronous_commit=off",
        )

    def close(self) -> None:
        """Close the connections."""
        self._pool.close()

    def readable(self, caller: Caller, md5s: Collection[str]) -> set[str]:
        """Those of ``md5s`` held by a committed version ``caller`` may read."""
        return self._matching(_READABLE, md5s, self._reader(caller))

    def proven(
        self, caller: Caller, md5s: Collection[str], distributed: Distributed | None = None
    ) -> Proof:
        """How ``caller`` has proven they hold each of ``md5s`` without sending it
        again (module docstring); one query."""
        query = self._proof_query(distributed)
        return self._proof(query, md5s, self._proof_params(caller, distributed))

    @staticmethod
    def _proof_query(distributed: Distributed | None) -> str:
        query = (
            f"SELECT md5, true FROM ({_READABLE}) r UNION SELECT md5, false FROM ({_UPLOADED}) u"
        )
        if distributed is not None:
            query += f" UNION SELECT md5, true FROM ({_IN_PARTS}) pt"
        return query

    def _proof_params(self, caller: Caller, distributed: Distributed | None) -> dict[str, object]:
        params: dict[str, object] = {**self._reader(caller), "uploader": caller.user}
        if distributed is not None:
            params.update(distributed._asdict())
        return params

    def _proof(self, query: str, md5s: Collection[str], params: Mapping[str, object]) -> Proof:
        held: set[str] = set()
        uploaded: set[str] = set()
        for md5, kept in self._rows(query, md5s, params):
            (held if kept else uploaded).add(md5)
        return Proof(held, uploaded - held)

    def manifest_readable(self, caller: Caller, key: str) -> bool:
        """Whether ``caller`` may read a committed version, or a part of a distributed
        one, whose manifest is ``key``."""
        with self._pool.connection("finding who may read a manifest") as conn:
            found = conn.execute(_MANIFEST_READABLE, {"key": key, **self._reader(caller)})
            return found.fetchone() is not None

    def record_upload(self, uploader: str, md5: str) -> None:
        """Remember that ``uploader`` brought every part of blob ``md5``."""
        with self._pool.connection("recording an upload") as conn, conn.transaction():
            # Durable before the node is answered: no commit of the caller's follows it.
            conn.execute("SET LOCAL synchronous_commit TO ON")
            conn.execute(
                "INSERT INTO blob_uploads (md5, uploader, uploaded_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (md5, uploader) DO UPDATE SET uploaded_at = EXCLUDED.uploaded_at",
                (bytes.fromhex(md5), uploader, time.time()),
            )

    def record_and_prove(
        self,
        caller: Caller,
        manifest_key: str,
        md5s: Collection[str],
        distributed: Distributed | None = None,
    ) -> Proof:
        """Record that the manifest at ``manifest_key`` holds ``md5s``, and say how
        ``caller`` has proven each (:meth:`proven`): one statement per 10,000 blobs.

        The rows state what the manifest lists (read from the bucket, its digest
        checked), not what anyone may read: a row proves nothing until a committed
        version names its manifest, so they are written before the blobs are checked.
        They need no WAL flush of their own: the version's commit comes after them, and
        flushing that flushes these too (WAL is one sequence), so they are durable
        whenever the version is. A crash drops first rows no version names yet.
        """
        query = f"WITH recorded AS ({_RECORD}) {self._proof_query(distributed)}"
        params = {**self._proof_params(caller, distributed), "key": manifest_key}
        return self._proof(query, md5s, params)

    def _reader(self, caller: Caller) -> dict[str, object]:
        return {
            "store": self.store_url,
            "admin": caller.site_admin,
            "entities": list(caller.roles),
        }

    def _matching(
        self, query: str, md5s: Collection[str], params: Mapping[str, object]
    ) -> set[str]:
        return {md5 for md5, *_ in self._rows(query, md5s, params)}

    def _rows(
        self, query: str, md5s: Collection[str], params: Mapping[str, object]
    ) -> Iterator[tuple[str, Any]]:
        """The rows ``query`` answers for ``md5s``, asked :data:`_BATCH` at a time;
        the MD5 of each as hex."""
        wanted = list(md5s)
        with self._pool.connection("reading the blob index") as conn:
            for start in range(0, len(wanted), _BATCH):
                batch = [bytes.fromhex(m) for m in wanted[start : start + _BATCH]]
                rows = conn.execute(query, {**params, "md5s": batch, "store": self.store_url})
                for md5, *rest in rows:
                    yield (bytes(md5).hex(), *rest)
