"""Copying an embedded registry's collections into the server's database, for
``import_registry``: versions (tombstones included), tags, aliases, submissions and parts.

A batch of whole collections is one transaction: a collection is copied entirely or not
at all, so a run killed midway leaves each collection as before or complete. Each
collection's row is locked first (``SELECT ... FOR UPDATE``, the lock every commit of
that collection takes), so a server committing into it at the same time waits, and the
numbers checked free here are still free when the versions go in. Batches lock their
collections in name order, so two imports running at once cannot deadlock.

The rules, with what is reported when the server holds something else
(docs/decisions.md, "Moving a node's registry to the server"):

- an artifact name with another type on the server: nothing of the collection is copied;
- a version the server has (same id) stays as the server has it; if its content or
  edits differ, that is reported;
- a new version keeps its number, unless the server gave that number to another version:
  then none of the collection's new versions are copied (numbers, and so ``name:vN``,
  would otherwise mean other content), or, with ``renumber``, they take the numbers after
  the server's highest, in the node's order;
- an alias, submission or part the server holds for another version stays the server's;
- a version or part the server has with no store recorded gets the node's (which is the
  node's configured store when the node recorded none either); one the server has in
  another store than the node's stays as the server has it, and that is reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from artisync.registry.importing.report import Conflict
from artisync.registry.importing.source import (
    CollectionContent,
    SourceCollection,
    SourceVersion,
    Submission,
)
from artisync.registry.importing.target import Outcome, chunks, columns
from artisync.registry.model import COMMITTED, LATEST
from artisync.registry.postgres.connection import Conn

__all__ = ["CollectionWork", "merge_collections"]


@dataclass(frozen=True, slots=True)
class CollectionWork:
    """One collection to copy: its row, its project's names and its content."""

    collection: SourceCollection
    entity: str
    project: str
    content: CollectionContent

    @property
    def label(self) -> str:
        """``entity/project/name``, as messages name the artifact."""
        return f"{self.entity}/{self.project}/{self.collection.name}"


def merge_collections(
    conn: Conn,
    works: Sequence[CollectionWork],
    project_ids: dict[int, int],
    run_ids: dict[int, int],
    *,
    renumber: bool,
) -> Outcome:
    """Copy the collections ``works`` (in one transaction: the caller's)."""
    out = Outcome()
    for work in sorted(works, key=lambda w: (w.entity, w.project, w.collection.name)):
        _merge_one(conn, work, project_ids[work.collection.project_key], run_ids, renumber, out)
    return out


def _merge_one(
    conn: Conn,
    work: CollectionWork,
    project_id: int,
    run_ids: dict[int, int],
    renumber: bool,
    out: Outcome,
) -> None:
    source, content = work.collection, work.content
    added = conn.execute(
        "INSERT INTO collections (project_id, name, type, created_at) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (project_id, name) DO NOTHING RETURNING id",
        (project_id, source.name, source.type, source.created_at),
    ).fetchone()
    row = conn.execute(
        "SELECT id, type FROM collections WHERE project_id = %s AND name = %s FOR UPDATE",
        (project_id, source.name),
    ).fetchone()
    assert row is not None, "the collection was just inserted or already existed"
    collection, server_type = int(row[0]), str(row[1])
    if server_type != source.type:
        out.conflicts.append(
            Conflict(
                f"artifact {work.label}",
                f"is a {server_type!r} on the server and a {source.type!r} on the node; none "
                f"of its {len(content.versions)} version(s) were copied (an artifact name has "
                "one type per project: rename it on one side, then import again)",
            )
        )
        return
    if added is not None:
        out.copied.collections += 1
    else:
        out.present.collections += 1

    copied_before = out.copied.versions
    kept = _merge_versions(conn, work, collection, run_ids, renumber, out)
    _merge_tags(conn, content, kept, out)
    if out.copied.versions > copied_before:
        # The node's versions are the collection's newest now: its `latest` is the one.
        conn.execute(
            "DELETE FROM aliases WHERE collection_id = %s AND alias = %s", (collection, LATEST)
        )
    _merge_aliases(conn, work, collection, kept, out)
    _merge_submissions(conn, work, kept, out)
    _merge_parts(conn, work, collection, kept, run_ids, out)


def _merge_versions(
    conn: Conn,
    work: CollectionWork,
    collection: int,
    run_ids: dict[int, int],
    renumber: bool,
    out: Outcome,
) -> dict[str, str]:
    """Add the collection's new versions; return the state on the server of every
    version of the node that the server now holds as the node's (by id)."""
    versions = work.content.versions
    on_server: dict[str, tuple[Any, ...]] = {}
    for chunk in chunks([v.id for v in versions]):
        for row in conn.execute(
            "SELECT id, collection_id, digest, manifest_key, state, description,"
            " metadata::text, ttl_seconds, store FROM versions WHERE id = ANY(%s::text[])",
            (list(chunk),),
        ):
            on_server[str(row[0])] = tuple(row[1:])
    kept: dict[str, str] = {}
    new: list[SourceVersion] = []
    stores: list[tuple[str, str]] = []  # (version id, store) to record where none is
    for version in versions:
        theirs = on_server.get(version.id)
        if theirs is None:
            new.append(version)
            continue
        if theirs[:3] != (collection, version.digest, version.manifest_key):
            out.conflicts.append(
                Conflict(
                    f"version {version.id}",
                    f"{work.label}:v{version.idx} of the node has this id, and the server "
                    "holds another artifact or content under it; it was not copied",
                )
            )
            continue
        kept[version.id] = str(theirs[3])
        out.present.versions += 1
        server_store = theirs[7]
        if server_store is None and version.store is not None:
            stores.append((version.id, version.store))
        elif server_store is not None and version.store not in (None, server_store):
            out.conflicts.append(
                Conflict(
                    f"version {work.label}:v{version.idx}",
                    f"the server records it in store {server_store!r}, the node in "
                    f"{version.store!r}; the server's is kept: make sure its content is there",
                )
            )
        mine = (version.state, version.description, version.metadata, version.ttl_seconds)
        if theirs[3:7] != mine:
            names = ("state", "description", "metadata", "ttl")
            differ = [n for n, a, b in zip(names, theirs[3:7], mine, strict=True) if a != b]
            out.conflicts.append(
                Conflict(
                    f"version {work.label}:v{version.idx}",
                    f"its {', '.join(differ)} changed since it was imported (on the node or on "
                    "the server); the server's is kept: make the change on the server",
                )
            )
    _record_stores(conn, "versions", "id", stores)
    if not new:
        return kept
    numbers = _numbers(conn, work, collection, new, renumber, out)
    if numbers is None:
        return kept
    rows = [
        (
            v.id,
            collection,
            number,
            v.digest,
            v.manifest_key,
            v.size,
            v.file_count,
            v.description,
            v.metadata,
            v.created_at,
            None if v.run_key is None else run_ids[v.run_key],
            v.ttl_seconds,
            v.expires_at,
            v.state,
            v.deleted_at,
            v.store,
        )
        for v, number in zip(new, numbers, strict=True)
    ]
    for chunk in chunks(rows):
        conn.execute(
            "INSERT INTO versions (id, collection_id, idx, digest, manifest_key, size,"
            " file_count, description, metadata, created_at, run_id, ttl_seconds, expires_at,"
            " state, deleted_at, store) SELECT * FROM unnest(%s::text[], %s::bigint[],"
            " %s::int[], %s::text[], %s::text[], %s::bigint[], %s::bigint[], %s::text[],"
            " %s::json[], %s::float8[], %s::bigint[], %s::float8[], %s::float8[], %s::text[],"
            " %s::float8[], %s::text[])",
            columns(chunk, 16),
        )
    out.copied.versions += len(rows)
    kept.update((v.id, v.state) for v in new)
    return kept


def _record_stores(conn: Conn, table: str, key: str, stores: Sequence[tuple[str, str]]) -> None:
    """Record the node's store for rows of ``table`` (``versions`` or ``parts``, keyed by
    ``key``) that the server holds with none: an earlier import, or a node that recorded
    none, left it unknown, and the node knows where their content is."""
    for chunk in chunks(stores):
        conn.execute(
            f"UPDATE {table} SET store = u.store FROM unnest(%s::text[], %s::text[])"
            f" AS u(key, store) WHERE {table}.{key} = u.key AND {table}.store IS NULL",
            columns(chunk, 2),
        )


def _numbers(
    conn: Conn,
    work: CollectionWork,
    collection: int,
    new: Sequence[SourceVersion],
    renumber: bool,
    out: Outcome,
) -> list[int] | None:
    """The numbers the new versions get on the server, or None when they cannot be
    copied (their numbers are taken and ``renumber`` is off; reported)."""
    wanted = [v.idx for v in new]
    taken: list[int] = []
    for chunk in chunks(wanted):
        taken.extend(
            int(row[0])
            for row in conn.execute(
                "SELECT idx FROM versions WHERE collection_id = %s AND idx = ANY(%s::int[])",
                (collection, list(chunk)),
            )
        )
    if not taken:
        return wanted
    row = conn.execute(
        "SELECT max(idx) FROM versions WHERE collection_id = %s", (collection,)
    ).fetchone()
    top = int(row[0]) if row is not None and row[0] is not None else -1
    taken.sort()
    labels = ", ".join(f"v{i}" for i in taken[:5]) + (
        f" and {len(taken) - 5} more" if len(taken) > 5 else ""
    )
    if not renumber:
        out.conflicts.append(
            Conflict(
                f"artifact {work.label}",
                f"the server gave {labels} to other versions (another node's, or a commit "
                f"since the last import), so none of the node's {len(new)} new version(s) "
                f"were copied; import again with --renumber to add them after v{top}, in "
                "the node's order",
            )
        )
        return None
    numbers = list(range(top + 1, top + 1 + len(new)))
    out.renumbered.append(
        f"{work.label}: the node's {_span(wanted)} are {_span(numbers)} on the server"
    )
    return numbers


def _span(indexes: Sequence[int]) -> str:
    if len(indexes) == indexes[-1] - indexes[0] + 1:
        return f"v{indexes[0]}" + (f" to v{indexes[-1]}" if len(indexes) > 1 else "")
    return ", ".join(f"v{i}" for i in indexes)


def _merge_tags(conn: Conn, content: CollectionContent, kept: dict[str, str], out: Outcome) -> None:
    # Tags only ever grow (nothing removes one), so the union is what both sides meant.
    rows = [(vid, tag) for vid, tag in content.tags if vid in kept]
    for chunk in chunks(rows):
        cursor = conn.execute(
            "INSERT INTO tags (version_id, tag) SELECT * FROM unnest(%s::text[], %s::text[])"
            " ON CONFLICT DO NOTHING",
            columns(chunk, 2),
        )
        out.copied.tags += cursor.rowcount
        out.present.tags += len(chunk) - cursor.rowcount


def _merge_aliases(
    conn: Conn, work: CollectionWork, collection: int, kept: dict[str, str], out: Outcome
) -> None:
    theirs = {
        str(alias): str(vid)
        for alias, vid in conn.execute(
            "SELECT alias, version_id FROM aliases WHERE collection_id = %s", (collection,)
        )
    }
    labels = {v.id: f"v{v.idx}" for v in work.content.versions}
    rows: list[tuple[int, str, str]] = []
    for alias, vid in work.content.aliases:
        if vid not in kept:
            continue  # its version was not copied: reported with it
        server = theirs.get(alias)
        if server == vid:
            out.present.aliases += 1
        elif server is not None:
            out.conflicts.append(
                Conflict(
                    f"alias {work.label}:{alias}",
                    f"names another version on the server than the node's {labels[vid]}; the "
                    f"server's is kept (move it there with set_aliases if the node's is right)",
                )
            )
        elif kept[vid] != COMMITTED:
            out.conflicts.append(
                Conflict(
                    f"alias {work.label}:{alias}",
                    f"not copied: {labels[vid]}, which it names on the node, was deleted on "
                    "the server",
                )
            )
        else:
            rows.append((collection, alias, vid))
    for chunk in chunks(rows):
        conn.execute(
            "INSERT INTO aliases (collection_id, alias, version_id)"
            " SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[])",
            columns(chunk, 3),
        )
    out.copied.aliases += len(rows)


def _merge_submissions(
    conn: Conn, work: CollectionWork, kept: dict[str, str], out: Outcome
) -> None:
    submissions = [s for s in work.content.submissions if s.version_id in kept]
    theirs: dict[str, str] = {}
    for chunk in chunks([s.submission_id for s in submissions]):
        for sid, vid in conn.execute(
            "SELECT submission_id, version_id FROM submissions"
            " WHERE submission_id = ANY(%s::text[])",
            (list(chunk),),
        ):
            theirs[str(sid)] = str(vid)
    rows: list[Submission] = []
    for sub in submissions:
        server = theirs.get(sub.submission_id)
        if server == sub.version_id:
            out.present.submissions += 1
        elif server is not None:
            out.conflicts.append(
                Conflict(
                    f"submission {sub.submission_id}",
                    f"the server committed it as version {server}, the node as "
                    f"{sub.version_id} of {work.label}; the server's answer is kept, so the "
                    "node's daemon retrying it gets that version",
                )
            )
        else:
            rows.append(sub)
    for chunk in chunks(rows):
        conn.execute(
            "INSERT INTO submissions (submission_id, version_id, created, committed_at)"
            " SELECT * FROM unnest(%s::text[], %s::text[], %s::bool[], %s::float8[])",
            columns(chunk, 4),
        )
    out.copied.submissions += len(rows)


def _merge_parts(
    conn: Conn,
    work: CollectionWork,
    collection: int,
    kept: dict[str, str],
    run_ids: dict[int, int],
    out: Outcome,
) -> None:
    # Consumed parts are copied too: their rows are what makes adding the same part
    # again a no-op, and a node's daemon may retry one after it switched registries.
    parts = [p for p in work.content.parts if p.version_id is None or p.version_id in kept]
    theirs: dict[str, tuple[Any, ...]] = {}
    if parts:
        for row in conn.execute(
            "SELECT submission_id, collection_id, distributed_id, manifest_key, store FROM parts"
            " WHERE submission_id = ANY(%s::text[])",
            ([p.submission_id for p in parts],),
        ):
            theirs[str(row[0])] = tuple(row[1:])
    rows: list[tuple[Any, ...]] = []
    stores: list[tuple[str, str]] = []
    for part in parts:
        server = theirs.get(part.submission_id)
        if server is not None and server[:3] == (
            collection,
            part.distributed_id,
            part.manifest_key,
        ):
            out.present.parts += 1
            if server[3] is None and part.store is not None:
                stores.append((part.submission_id, part.store))
        elif server is not None:
            out.conflicts.append(
                Conflict(
                    f"part {part.submission_id}",
                    f"the server holds another part under this submission id than the node's "
                    f"part of {work.label} (distributed id {part.distributed_id!r}); the "
                    "server's is kept",
                )
            )
        else:
            run = None if part.run_key is None else run_ids[part.run_key]
            rows.append(
                (
                    part.submission_id,
                    collection,
                    part.distributed_id,
                    part.manifest_key,
                    run,
                    part.size,
                    part.file_count,
                    part.created_at,
                    part.version_id,
                    part.store,
                )
            )
    _record_stores(conn, "parts", "submission_id", stores)
    for chunk in chunks(rows):
        conn.execute(
            "INSERT INTO parts (submission_id, collection_id, distributed_id, manifest_key,"
            " run_id, size, file_count, created_at, version_id, store)"
            " SELECT sid, c, d, m, r, s, f, t, v, st FROM unnest(%s::text[], %s::bigint[],"
            " %s::text[], %s::text[], %s::bigint[], %s::bigint[], %s::bigint[], %s::float8[],"
            " %s::text[], %s::text[]) WITH ORDINALITY AS u(sid, c, d, m, r, s, f, t, v, st, o)"
            " ORDER BY o",
            columns(chunk, 10),
        )
    out.copied.parts += len(rows)
