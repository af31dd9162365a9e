"""One submission's way from ``spool/work`` to a committed version, or to ``failed/``.

validate → expand → hash → upload → manifest → (wait for its turn) → commit → receipt.

Stages up to the manifest run concurrently across submissions (bounded); commits run
one at a time, each after every earlier submission of its collection has finished.
Within a submission, work overlaps where nothing depends on it: a local store copies
each file in the read that hashes it and names one batch while it copies the next;
the manifest is built while the blobs go in (it is stored only after them); and
snapshots are written back to disk while the submission is expanded.

Each step is idempotent, so a daemon killed anywhere simply runs the submission again
from ``work/``: hashes come back from the journal, blobs already stored are skipped,
and the registry returns the version a submission already committed instead of making
a second one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import random
import stat
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from artisync import tracking
from artisync.crashpoints import crash_point
from artisync.daemon.caller_keys import CallerKeys, refusal
from artisync.daemon.callers import Caller, CoreCaller, caller_of, cannot_act_as
from artisync.daemon.drafts import drafted
from artisync.daemon.expand import (
    Item,
    Rejected,
    check_unchanged,
    hash_items,
    md5_hexes,
    plan,
)
from artisync.daemon.gate import Gate
from artisync.daemon.ingest import Ingest
from artisync.daemon.merge import Contribution, merge
from artisync.daemon.metrics import DaemonMetrics
from artisync.daemon.ordering import CommitOrder
from artisync.daemon.progress import ProgressBoard, StatusCallback, SubmissionProgress
from artisync.daemon.receipts import part_receipt, version_receipt
from artisync.daemon.slots import Slots, idle
from artisync.daemon.version_entries import DuplicatePathError, VersionEntries
from artisync.disk_full import disk_full_cause, disk_full_detail
from artisync.errors import (
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    RegistryError,
    RegistryUnavailableError,
    SubmissionError,
    TypeConflictError,
    UnauthorizedError,
)
from artisync.logs import get_logger
from artisync.manifest import Manifest
from artisync.registry import CommitResult, NewPart, NewVersion, Registry
from artisync.registry.http.acting import acting_as
from artisync.spool import Spool, StagedEntry, StagedListEntry, Submission, parse_name
from artisync.store import (
    BlobItem,
    HashingPut,
    ManifestTooLargeError,
    Store,
    StoreUnavailableError,
)
from artisync.store.project_scope import writing_for

__all__ = ["Pipeline", "StatusCallback"]

T = TypeVar("T")

log = get_logger("artisync.daemon")

# What the registry answers that no retry changes: the submission's answer.
_REFUSALS: Final = (TypeConflictError, UnauthorizedError, ForbiddenError, NotFoundError)

# Backoff for transient failures (store or registry unreachable): retried for as long
# as it takes, holding back later versions of the same collection only. The ceiling is
# how late a node may notice that its server or bucket is back (with the jitter, up to
# 1.5 times it): 10 s asks a down server once every 5-15 s per waiting collection.
_BACKOFF_FIRST = 0.2
_BACKOFF_MAX = 10.0
# A full disk is retried at least this often: freeing space is the user's next move,
# and a failed write costs next to nothing.
_DISK_FULL_BACKOFF_MAX = 5.0


@dataclass(slots=True)
class _Prepared:
    sub: Submission
    entries: VersionEntries
    digest: str
    manifest_key: str

    def size(self) -> int:
        return self.entries.stored_bytes

    def file_count(self) -> int:
        return len(self.entries)


@dataclass(slots=True)
class _Merged(_Prepared):
    """A finished distributed version: the parts' entries merged with its own."""

    manifest: Manifest

    def size(self) -> int:
        return self.manifest.size()

    def file_count(self) -> int:
        return len(self.manifest)


class Pipeline:
    """Runs submissions through the stages; shared by all of a daemon's tasks."""

    def __init__(
        self,
        spool: Spool,
        store: Store,
        registry: Registry,
        order: CommitOrder,
        *,
        concurrency: int,
        reference_deadline: float = 900.0,
        chunk_entries: int,
        settle: Callable[[str], Awaitable[None]],
        on_status: StatusCallback,
        caller_keys: CallerKeys | None = None,
    ) -> None:
        """``chunk_entries`` is the items a version is hashed and stored by at a time
        (:attr:`~artisync.config.Config.chunk_entries`); ``caller_keys``, with a registry
        server, gives the key each submission is committed with."""
        self.spool = spool
        self.store = store
        self.registry = registry
        self.order = order
        self._slots = Slots(concurrency)
        self.reference_deadline = reference_deadline
        self.chunk_entries = chunk_entries
        self.caller_keys = caller_keys
        # Entries above which a version's manifest is written to a file, not built in
        # memory: three chunks (the tests' small chunks take that path too).
        self._manifest_in_memory = 3 * chunk_entries
        self._commit_lock = asyncio.Lock()
        self.gate = Gate()
        self._settle = settle
        # What each submission is doing (GET /v1/progress) and the metrics (GET /metrics).
        self.progress = ProgressBoard()
        self.metrics = DaemonMetrics(self.progress, store.url)
        self._on_status = self.progress.observe(on_status)
        self.ingest = Ingest(spool.root)
        # Since when (time.time()) the registry server has not answered; None while it
        # does. Commits wait in order meanwhile; `artisync status` says so.
        self.registry_down_since: float | None = None
        self.ingest.sweep(spool.submission_ids())

    async def run(self, work_path: Path) -> dict[str, Any]:
        """Process one claimed submission; returns its receipt or its rejection."""
        seq, sub_id = parse_name(work_path.name)
        # Log lines and byte counters down the stack know the submission from here on.
        token = tracking.enter(self.progress.claimed(sub_id, seq).tracked)
        committed = False
        try:
            result = await self._run(work_path, seq, sub_id)
            committed = True
        except Rejected as e:
            result = await self._reject(work_path, seq, sub_id, e.stage, e.reason)
        except asyncio.CancelledError:
            raise  # shutdown: the submission stays in work/ and resumes next start
        except Exception as e:  # a bug must not take the daemon down
            log.exception("internal_error", sub=sub_id)
            reason = f"internal error in the daemon: {e!r}; the submission is kept in failed/"
            result = await self._reject(work_path, seq, sub_id, "internal", reason)
        finally:
            await self.order.finish(seq)
            self.progress.forget(sub_id)
            tracking.leave(token)
        await asyncio.to_thread(self.ingest.remove, sub_id)
        if committed:
            # After the client has its answer: removing the snapshots of a large version
            # (linked into the store) takes a while. A crash before this finishes the
            # submission again at the next start, and comes back here.
            try:
                await asyncio.to_thread(self.spool.discard, work_path)
            except OSError as e:
                log.warning("cleanup_failed", sub=sub_id, error=str(e), then="at next start")
        return result

    async def _run(self, work_path: Path, seq: str, sub_id: str) -> dict[str, Any]:
        try:
            # Parsed off the event loop: a large submission takes a while to parse, and
            # the loop serves the socket.
            sub, caller, mode = await asyncio.to_thread(self._read, work_path)
        except SubmissionError as e:
            raise Rejected("validate", str(e)) from None
        if sub.id != sub_id:
            raise Rejected("validate", f"the file name says id {sub_id} but the file {sub.id}")
        if (why := cannot_act_as(caller)) is not None:
            raise Rejected("validate", why)
        if not caller.trusted and mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise Rejected(
                "validate",
                f"{caller.name}'s submission file may be written by others than its owner "
                f"(mode {stat.S_IMODE(mode):o}), so it could have been changed by anyone "
                "of the daemon's group: log the artifact again with this version of "
                "artisync, which writes submissions 0640",
            )
        key = None if self.caller_keys is None else self.caller_keys.key_for(sub, caller)
        # Set even when None (the daemon's own key): a submission started from another's
        # task (a scan while settling) inherits that one's context.
        # A store reached through a server's grants uploads for the submission's project.
        with acting_as(key), writing_for(sub.entity, sub.project):
            try:
                return await self._as_caller(work_path, seq, sub, caller)
            except (UnauthorizedError, ForbiddenError, NotFoundError) as e:
                server = None if self.caller_keys is None else self.caller_keys.server
                raise refusal(e, sub, caller, server) from None

    async def _as_caller(
        self, work_path: Path, seq: str, sub: Submission, caller: Caller
    ) -> dict[str, Any]:
        """The rest of :meth:`_run`, once the submission is read and its key known."""
        await self.order.identify(seq, sub.collection_key)
        watch = self.progress.identify(sub)
        # Retried like the commit: a registry server that is down must hold the
        # submission back, never reject it.
        done = await self._retrying(
            sub.id, lambda: asyncio.to_thread(self.registry.submission_result, sub.id)
        )
        receipt: dict[str, Any] | None = None
        if done is None:
            self._on_status(sub.id, "working", None)
            async with self._slots.slot(caller.uid):
                watch.begin("expand")
                prepared = await self._prepare(work_path, sub, watch, caller.for_core())
            await self.order.wait_turn(seq)
            await self._settle(seq)
            await self.order.wait_turn(seq)  # settling may have admitted an earlier one
            watch.lap("turn")
            if sub.action == "upsert":
                await self._retrying(sub.id, lambda: self._add_part(prepared))
                receipt = part_receipt(sub, seq)
            else:
                done = await self._retrying(sub.id, lambda: self._commit(prepared))
            watch.lap("commit")
            crash_point("after_commit")
        if receipt is None:
            assert done is not None
            receipt = version_receipt(sub, seq, done)
        # Committed: a full disk must delay the receipt, never turn it into a rejection.
        complete = functools.partial(self.spool.complete, work_path, receipt, discard=False)
        await self._retrying(sub.id, lambda: asyncio.to_thread(complete))
        watch.lap("receipt")
        crash_point("after_receipt")
        log.info(
            "committed",
            sub=sub.id,
            project=sub.project,
            name=sub.artifact.name,
            version=receipt["version"],
            part_of=sub.distributed_id if receipt.get("part") else None,
            created=receipt.get("created"),
            seconds=watch.seconds_since_accepted(),
        )
        self._on_status(sub.id, "committed", receipt)
        return receipt

    def _read(self, work_path: Path) -> tuple[Submission, Caller, int]:
        """A claimed submission, who submitted it (the owner of the file that was read,
        see ``callers``) and the mode of that file."""
        data, st = self.spool.read_claimed(work_path)
        return Submission.loads(data), caller_of(st.st_uid), st.st_mode

    async def _prepare(
        self,
        work_path: Path,
        sub: Submission,
        watch: SubmissionProgress,
        caller: CoreCaller | None,
    ) -> _Prepared:
        # The SDK writes snapshots without fsync: start writing them back now, while the
        # submission is expanded, so the syncfs before they are named has little left.
        writeback = None
        if any(isinstance(entry, StagedEntry | StagedListEntry) for entry in sub.entries):
            writeback = asyncio.ensure_future(self._write_back())
        try:
            return await self._prepare_items(work_path, sub, watch, caller)
        finally:
            if writeback is not None:
                await writeback

    async def _write_back(self) -> None:
        # Only ahead of time: the store syncs again before it names anything.
        with contextlib.suppress(StoreUnavailableError):
            await self.store.sync()

    async def _prepare_items(
        self,
        work_path: Path,
        sub: Submission,
        watch: SubmissionProgress,
        caller: CoreCaller | None,
    ) -> _Prepared:
        # Remote listings can fail transiently: retried like uploads, holding back only
        # this collection.
        scratch = functools.partial(self.spool.scratch_path, work_path)
        expansion = await self._retrying(
            sub.id,
            lambda: asyncio.to_thread(plan, sub, self.spool.root, scratch, caller),
            give_up_after=self.reference_deadline,
        )
        watch.sized(expansion.files, expansion.hash_bytes, expansion.store_bytes)
        watch.lap("expand")
        # A chunk at a time, each hashed, stored and reduced to its compact entries
        # before the next is made: memory stays bounded whatever the number of files.
        entries = VersionEntries()
        chunks = expansion.chunks(self.chunk_entries)
        chunk = await asyncio.to_thread(next, chunks, None)
        index = 0
        manifest: asyncio.Future[tuple[str, bytearray | Path]] | None = None
        try:
            while chunk is not None:
                following = await asyncio.to_thread(next, chunks, None)
                naming = await self._hash_chunk(work_path, sub.id, index, chunk, caller)
                entries.add(chunk)
                if following is None:
                    watch.lap("hash")
                    # Built while the last blobs go in (the store works with the GIL
                    # released), stored only after them.
                    manifest = asyncio.ensure_future(self._manifest(work_path, entries))
                stored = set() if naming is None else await naming
                upload = functools.partial(self._upload, sub.id, chunk, skip=stored, caller=caller)
                await self._retrying(sub.id, upload)
                chunk, index = following, index + 1
            if manifest is None:  # no items at all
                watch.lap("hash")
                manifest = asyncio.ensure_future(self._manifest(work_path, entries))
        except BaseException:
            if manifest is not None:
                manifest.cancel()
            raise
        watch.lap("store")
        crash_point("after_upload")
        try:
            digest, data = await manifest
        except DuplicatePathError as e:
            raise Rejected("expand", str(e)) from None
        if isinstance(data, Path):
            put_file = functools.partial(self.store.put_manifest_file, digest, data)
            try:
                key = await self._retrying(sub.id, put_file)
            except ManifestTooLargeError as e:
                raise Rejected("manifest", str(e)) from None
            finally:
                await asyncio.to_thread(data.unlink, missing_ok=True)
        else:
            key = await self._retrying(sub.id, lambda: self.store.put_manifest(digest, data))
        watch.lap("manifest")
        crash_point("after_manifest")
        return _Prepared(sub, entries, digest, key)

    async def _manifest(
        self, work_path: Path, entries: VersionEntries
    ) -> tuple[str, bytearray | Path]:
        """The artifact digest and the manifest JSON: in memory, or for a big version
        in a scratch file beside the submission (its JSON alone can pass 200 MB)."""
        if len(entries) <= self._manifest_in_memory:
            return await asyncio.to_thread(entries.manifest)
        path = self.spool.scratch_path(work_path, "manifest")

        def write() -> str:
            with open(path, "wb") as f:
                return entries.write_manifest(f.write)

        return await asyncio.to_thread(write), path

    async def _hash_chunk(
        self,
        work_path: Path,
        sub_id: str,
        index: int,
        items: list[Item],
        caller: CoreCaller | None,
    ) -> asyncio.Future[set[int]] | None:
        """Give every item of a chunk its digest: from the journal of an earlier run,
        else hashed (and journaled)."""
        journal = await asyncio.to_thread(self.spool.read_journal, work_path, index)
        hashed: dict[str, list[Any]] = journal.get("hashed", {})
        for item in items:
            if item.digest is None and item.path in hashed:
                item.digest, item.size, item.hashed_mtime_ns = hashed[item.path]
        naming: asyncio.Future[set[int]] | None = None
        if any(item.digest is None and item.source is not None for item in items):
            naming = await self._retrying(
                sub_id, lambda: self._hash(work_path, index, journal, items, caller)
            )
        crash_point("after_hash")
        return naming

    async def _hash(
        self,
        work_path: Path,
        index: int,
        journal: dict[str, Any],
        items: list[Item],
        caller: CoreCaller | None,
    ) -> asyncio.Future[set[int]] | None:
        """Hash the items without a digest and journal them.

        A store that can (:meth:`Store.put_hashing`: the local store) stores each file
        in the same read that hashes it, a batch at a time; each batch checked here is
        named (made durable, then given its blob names) while the next is read and the
        journal written. The returned task gives the ids of the items whose blobs those
        namings made sure are stored.
        """
        fused = [
            (item, item.source)
            for item in items
            if item.digest is None and item.source is not None and item.stored
        ]
        fusing = None
        if fused:
            files = [(src, item.size) for item, src in fused]
            fusing = self.store.put_hashing(files, caller, on_failure=self._naming_failed)
        # Held until the journal names these digests, which then protects the blobs
        # found already stored from garbage collection (see daemon.gc).
        async with self.gate.shared():
            try:
                if fusing is not None:
                    await self._stage(fusing, fused)
                await hash_items(items, caller)
                # Only what the daemon hashed; snapshots carry their digests already.
                journal["hashed"] = {
                    item.path: [item.digest, item.size, item.hashed_mtime_ns]
                    for item in items
                    if item.hashed_mtime_ns is not None
                }
                await asyncio.to_thread(self.spool.write_journal, work_path, journal, index)
            except BaseException:
                if fusing is not None:
                    # Their copies are good blobs: let them finish rather than leave them.
                    await fusing.settle()
                raise
        # The namings need no gate of their own: they only add blobs, and those that
        # staging found stored already are protected by the journal written above.
        return None if fusing is None else asyncio.ensure_future(_stored(fusing, fused))

    async def _stage(self, fusing: HashingPut, fused: list[tuple[Item, str | Path]]) -> None:
        """Check each batch the store hashed (and copied) against what was logged: a
        file changed since rejects the submission, and its batch is not stored."""
        done = 0
        try:
            async with contextlib.aclosing(fusing.batches()) as batches:
                async for digests in batches:
                    batch = fused[done : done + len(digests)]
                    done += len(batch)
                    for (item, _), d in zip(batch, digests, strict=True):
                        check_unchanged(item, d)
                        item.digest, item.size = d.digest, d.size
                        item.hashed_mtime_ns = d.mtime_ns
        except StoreUnavailableError:
            raise
        except OSError as e:
            raise Rejected("hash", f"{e.filename}: {e.strerror or e}") from None

    def _naming_failed(self, error: StoreUnavailableError) -> None:
        """A checked batch could not be named: the upload stage stores its files from
        their sources, with retries."""
        log.warning("naming_failed", error=str(error), then="storing from the sources")
        self.progress.store_failed(error)

    async def _upload(
        self, sub_id: str, items: list[Item], skip: set[int], caller: CoreCaller | None = None
    ) -> None:
        """Store the blobs of ``items`` but those (by ``id``) in ``skip``, stored already.

        ``caller``'s sources are read with their rights: by the store itself where it
        can (:attr:`Store.reads_as_caller`), else copied into the daemon's keeping
        first (see ``ingest``)."""
        unique: dict[str, Item] = {}
        todo_items = [item for item in items if item.stored and id(item) not in skip]
        for md5_hex, item in zip(md5_hexes(todo_items), todo_items, strict=True):
            unique.setdefault(md5_hex, item)
        # The store skips blobs it already has (one stat each), including a snapshot
        # it took by rename before a restart, whose source is gone by now.
        todo = [
            BlobItem(md5_hex, item.source, item.size, item.move, item.hashed_mtime_ns)
            for md5_hex, item in unique.items()
            if item.source is not None
        ]
        if not todo:
            return
        try:
            # Shared with other uploads, exclusive of garbage collection (see daemon.gc).
            async with self.gate.shared():
                if caller is not None and not self.store.reads_as_caller:
                    todo = await self.ingest.take_in(sub_id, todo, caller)
                    caller = None
                await self.store.put_blobs(todo, caller)
        except StoreUnavailableError:
            raise
        except FileNotFoundError as e:
            raise Rejected("upload", f"the content of {e.filename} is gone: {e.strerror}") from None
        except OSError as e:
            raise Rejected("upload", f"{e.filename}: {e.strerror or e}") from None

    async def _ensure_run(self, sub: Submission) -> None:
        if sub.run is not None:
            run = sub.run
            await asyncio.to_thread(
                self.registry.ensure_run,
                sub.project,
                sub.entity,
                run.id,
                name=run.name,
                job_type=run.job_type,
                group=run.group,
                config=run.config,
            )

    async def _add_part(self, p: _Prepared) -> None:
        """Record an upserted part; ``finish_artifact`` merges it into a version."""
        sub, part_of = p.sub, p.sub.distributed_id
        assert part_of is not None
        async with self._commit_lock:
            await self.store.sync()
            try:
                await self._ensure_run(sub)
                part = NewPart(**_naming(p), store=self.store.url, distributed_id=part_of)
                await asyncio.to_thread(self.registry.add_part, part)
            except (TypeConflictError, InvalidInputError) as e:
                raise Rejected("commit", str(e)) from None

    async def _merge_parts(self, p: _Prepared) -> _Prepared:
        """For ``finish_artifact``: this submission's entries plus every part before it."""
        sub = p.sub
        assert sub.distributed_id is not None
        parts = await asyncio.to_thread(
            self.registry.list_parts,
            sub.project,
            sub.artifact.name,
            sub.distributed_id,
            sub.entity,
        )
        contributions = []
        for i, part in enumerate(parts):
            data = await self.store.get_manifest(part.manifest_key)
            manifest = await asyncio.to_thread(_parse_manifest, data)
            who = f"run {part.run_id}" if part.run_id else "no run"
            contributions.append(Contribution(f"part {i + 1} from {who}", manifest))
        own = Manifest({entry.path: entry for entry in p.entries.entries()})
        contributions.append(Contribution("finish_artifact's own entries", own))
        merged = merge(sub.artifact.name, sub.distributed_id, contributions)
        data = json.dumps(merged.to_json(), separators=(",", ":")).encode()
        digest = merged.digest()
        key = await self.store.put_manifest(digest, data)
        return _Merged(sub, p.entries, digest, key, merged)

    async def _with_base(self, p: _Prepared) -> _Prepared:
        """For a draft of a committed version (``new_draft``): that version's entries,
        changed as the draft changed them (``daemon.drafts``)."""
        sub = p.sub
        assert sub.base is not None
        try:
            base = await asyncio.to_thread(self.registry.get_version_by_id, sub.base.version_id)
        except NotFoundError as e:
            raise Rejected(
                "commit",
                f"artifact {sub.artifact.name!r} was drafted from version "
                f"{sub.base.version_id}, which cannot be read now ({e}); log a new artifact",
            ) from None
        data = await self.store.get_manifest(base.manifest_key)
        base_manifest = await asyncio.to_thread(_parse_manifest, data)
        own = list(p.entries.entries())
        merged = drafted(
            sub.artifact.name, base, base_manifest, sub.base.removed, own, self.store.url
        )
        data = json.dumps(merged.to_json(), separators=(",", ":")).encode()
        digest = merged.digest()
        key = await self.store.put_manifest(digest, data)
        return _Merged(sub, p.entries, digest, key, merged)

    async def _commit(self, p: _Prepared) -> CommitResult:
        sub, art = p.sub, p.sub.artifact
        async with self._commit_lock:
            await self.store.sync()
            if sub.action == "finish":
                p = await self._merge_parts(p)
            elif sub.base is not None:
                p = await self._with_base(p)
            try:
                await self._ensure_run(sub)
                version = NewVersion(
                    **_naming(p),
                    store=self.store.url,  # where readers on any node find the bytes
                    digest=p.digest,
                    description=art.description,
                    metadata=art.metadata,
                    aliases=art.aliases,
                    tags=art.tags,
                    ttl_seconds=art.ttl_seconds,
                    distributed_id=sub.distributed_id if sub.action == "finish" else None,
                )
                return await asyncio.to_thread(self.registry.commit_version, version)
            except (TypeConflictError, InvalidInputError) as e:
                raise Rejected("commit", str(e)) from None

    async def _retrying(
        self,
        sub_id: str,
        attempt: Callable[[], Awaitable[T]],
        give_up_after: float | None = None,
    ) -> T:
        """Run ``attempt`` until it stops failing transiently, with backoff and jitter.

        Transient: the store or the registry unavailable, and a full disk (``ENOSPC``,
        ``EDQUOT``) wherever the daemon writes (store, spool, registry). A full disk
        is logged once, naming the filesystem, then retried quietly with a shorter
        ceiling, so the submission goes on soon after space is freed. While it waits,
        the submission lets its pipeline slot go. With ``give_up_after`` (seconds: for
        what the user named, a reference, rather than the node's own store), a failure
        that lasts that long rejects the submission instead.
        """
        delay = _BACKOFF_FIRST
        disk_full = False
        registry_down = False
        started = time.monotonic()
        while True:
            try:
                result = await attempt()
            except (StoreUnavailableError, RegistryError, OSError) as e:
                if isinstance(e, _REFUSALS):
                    raise  # the registry's answer to this request: asking again changes nothing
                if isinstance(e, RegistryUnavailableError):
                    registry_down = True
                    if self.registry_down_since is None:
                        self.registry_down_since = time.time()
                full = disk_full_cause(e) is not None
                if not full and isinstance(e, OSError):
                    raise  # a bad source file: the submission's fault, not transient
                self._on_status(sub_id, "retrying", {"reason": str(e)})
                self.progress.retried(sub_id, e)
                if full and not disk_full:
                    log.warning("disk_full", sub=sub_id, error=disk_full_detail(e), then="waiting")
                elif full:
                    log.debug("still_no_space", sub=sub_id, error=str(e))
                else:
                    log.warning("retrying", sub=sub_id, error=str(e), delay=delay)
                disk_full = disk_full or full
                waited = time.monotonic() - started
                if give_up_after is not None and not full and waited >= give_up_after:
                    raise Rejected(
                        "expand",
                        f"{e}; still failing after {waited:.0f} s (the daemon gives a "
                        f"reference {give_up_after:g} s): check its address and "
                        "credentials, then log the artifact again",
                    ) from None
                ceiling = _DISK_FULL_BACKOFF_MAX if full else _BACKOFF_MAX
                async with idle():  # another submission may use the slot meanwhile
                    await asyncio.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, ceiling)
            else:
                if disk_full:
                    log.info("space_again", sub=sub_id)
                if registry_down:
                    log.info("registry_again", sub=sub_id)
                    self.registry_down_since = None
                return result

    async def _reject(
        self, work_path: Path, seq: str, sub_id: str, stage: str, reason: str
    ) -> dict[str, Any]:
        error = {
            "id": sub_id,
            "status": "rejected",
            "seq": seq,
            "stage": stage,
            "reason": reason,
            "rejected_at": time.time(),
        }
        log.warning("rejected", sub=sub_id, stage=stage, reason=reason)
        await self._retrying(sub_id, lambda: asyncio.to_thread(self.spool.reject, work_path, error))
        self._on_status(sub_id, "rejected", error)
        return error


async def _stored(fusing: HashingPut, fused: list[tuple[Item, str | Path]]) -> set[int]:
    """The ids of the items whose blobs ``fusing`` stored."""
    return {id(fused[index][0]) for index in await fusing.stored()}


def _naming(p: _Prepared) -> dict[str, Any]:
    """What a new version and a part record alike: whose submission, which collection,
    where the manifest is, how big, and which run made it."""
    sub = p.sub
    return {
        "submission_id": sub.id,
        "project": sub.project,
        "entity": sub.entity,
        "name": sub.artifact.name,
        "type": sub.artifact.type,
        "manifest_key": p.manifest_key,
        "run_id": sub.run.id if sub.run else None,
        "size": p.size(),
        "file_count": p.file_count(),
    }


def _parse_manifest(data: bytes) -> Manifest:
    return Manifest.from_json(json.loads(data))
