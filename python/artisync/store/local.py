"""The local-disk store: a directory with the common layout, for ``file://`` URLs.

How a blob gets in, and what keeps it crash-safe without one fsync per file, is the
Rust core's protocol (``rust/local_store``): its rules are written once, at that
folder's door (``mod.rs``), each with the test that guards it. This module keeps the
policy around it: batches of files per worker-thread call (``_core.put_blobs``), when
to sync (:meth:`LocalStore.sync` before the registry commit), what a failure becomes
(a bad source an :class:`OSError` naming the file, the store's own failure a
:class:`StoreUnavailableError`), and the cycle that names one checked batch while the
next is copied (:meth:`LocalStore.put_hashing`, in ``local_staging.py``).

Where ``syncfs`` cannot be used, each file is fsynced before its rename (the core
does that) and each directory that got a rename is fsynced by :meth:`LocalStore.sync`
(here). Manifests are this module's own: one per version, written (or, given as a
file, copied by the core's ``copy_and_hash``) into ``tmp/``, fsynced, and linked at
their key so that the first one stored under a digest wins. The protocol's rules are
cited below by their number at the door ("rule N").

Linux only (``copy_file_range``, ``syncfs``), like the daemon.
"""

from __future__ import annotations

import asyncio
import itertools
import operator
import os
import secrets
import shutil
import stat
import threading
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Final

from artisync import _core, tracking
from artisync.logs import get_logger
from artisync.store import local_listing
from artisync.store.base import (
    BlobItem,
    CallerRights,
    HashingPut,
    ObjectNotFoundError,
    SourceChangedError,
    Store,
    StoreUnavailableError,
    batches,
    blob_key,
    check_manifest_key,
    check_md5_hex,
    check_md5_hexes,
    manifest_key,
)
from artisync.store.files import CREATE, NO_HARD_LINKS, close_quietly, fsync_path, unlink_quietly
from artisync.store.local_staging import LocalHashingPut, StagedFiles

__all__ = ["LocalStore", "StagedFiles"]

log = get_logger("artisync.store")

# What _core.put_blobs takes per blob: (source, md5_hex or None to hash it, size,
# mtime_ns, move, snapshot).
_Request = tuple[str | Path, str | None, int | None, int | None, bool, bool]

# Per worker-thread call: enough files to amortise the thread hop and the batch's one
# syncfs, few enough bytes to bound unflushed data and give cancellation points.
BATCH_FILES = 16384
BATCH_BYTES = 256 << 20


class LocalStore(Store):
    """A store in a local (or mounted) directory, created with its layout if needed."""

    reads_as_caller = True  # the core opens each source as the caller
    local_blobs = True

    def __init__(self, root: Path | str) -> None:
        self.root = Path(os.path.abspath(root))  # the store's directory
        self.url = self.root.as_uri()
        self._root = str(self.root)
        self._tmp = os.path.join(self._root, "tmp")
        self._blobs = os.path.join(self._root, "blobs", "md5")
        try:
            for sub in ("blobs/md5", "manifests", "tmp"):
                os.makedirs(os.path.join(self._root, sub), exist_ok=True)
        except OSError as e:
            raise StoreUnavailableError.from_os_error(e, e.filename or self._root) from e
        # Manifest fan-out directories known to exist: at most 256 mkdirs in a life.
        self._made: set[str] = set()
        # tmp names are unique across processes and hosts sharing the directory.
        self._token = f"{os.getpid()}.{secrets.token_hex(4)}"
        self._names = itertools.count()
        # None: fsync each file and directory instead (tests take that path too).
        self._syncfs: Callable[[str], None] | None = _core.sync_filesystem
        # Without syncfs only: directories that received renames since the last sync.
        self._unsynced_dirs: set[str] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalStore({self._root!r})"

    async def has_blobs(self, md5_hexes: Sequence[str]) -> set[str]:
        """The subset of ``md5_hexes`` whose blobs are in the store."""
        unique, present = list(dict.fromkeys(md5_hexes)), set[str]()
        for start in range(0, len(unique), BATCH_FILES):
            chunk = unique[start : start + BATCH_FILES]
            present |= await asyncio.to_thread(self._present, chunk)
        return present

    async def put_blobs(self, items: Sequence[BlobItem], caller: CallerRights | None = None) -> int:
        """Store many blobs, one worker-thread call per batch; returns how many were new.

        With ``caller`` (``(uid, gid, groups)``), each source is opened with that user's
        rights and copied, never moved, and a digest given is checked by hashing."""
        unique: dict[str, BlobItem] = {}
        for given in items:
            # Plain (md5_hex, source, size, move) tuples too.
            item = given if isinstance(given, BlobItem) else BlobItem(*given)
            unique.setdefault(item.md5_hex, item)
        check_md5_hexes(list(unique))  # all before writing any
        written = 0
        for batch in batches(list(unique.values()), BATCH_FILES, BATCH_BYTES):
            written += await asyncio.to_thread(self._put_batch, batch, caller)
        return written

    async def stage_files(
        self,
        files: Sequence[tuple[str | Path, int | None]],
        caller: CallerRights | None = None,
    ) -> AsyncGenerator[StagedFiles, None]:
        """Hash each ``(path, size)`` and copy it into ``tmp/`` unless its blob is stored;
        yields each batch as it is done, to name with :meth:`put_staged`.

        A small file is read once, for both; a large one is hashed, then copied in the
        kernel. Nothing is named here, so the caller can check the digests first, and
        name one batch while the next is copied. ``size`` only sizes the batches.
        Errors are those of :meth:`put_blobs`; a bad source anywhere in a batch wins
        over a failure of the store, and leaves nothing of that batch behind. With
        ``caller``, each file is opened with that user's rights.
        """
        for start, end in _ranges([size for _, size in files], BATCH_FILES, BATCH_BYTES):
            yield await asyncio.to_thread(self._stage_batch, files[start:end], caller)

    def put_hashing(
        self,
        files: Sequence[tuple[str | Path, int | None]],
        caller: CallerRights | None = None,
        on_failure: Callable[[StoreUnavailableError], None] | None = None,
    ) -> HashingPut:
        """Store ``files`` in the read that hashes them: :meth:`stage_files`, then each
        batch checked by the caller and named (:meth:`put_staged`) while the next one is
        copied (see ``local_staging``)."""
        return LocalHashingPut(self, files, caller, on_failure)

    async def put_staged(self, staged: StagedFiles) -> int:
        """Name a batch :meth:`stage_files` copied: one ``syncfs``, then the renames;
        returns how many blobs were new. Any failure is the store's."""
        return await asyncio.to_thread(self._name_batch, staged)

    async def discard_staged(self, staged: StagedFiles) -> None:
        """Remove what :meth:`stage_files` copied (what :meth:`put_staged` named stays).
        Blobs written in place stay, whole; their journal goes once a sync made them
        durable (rules 5 and 7)."""
        await asyncio.to_thread(self._discard_batch, staged)

    async def put_manifest(self, artifact_digest: str, data: bytes | bytearray) -> str:
        """Store a manifest (kept as is if already there); returns its key."""
        key = manifest_key(artifact_digest)
        await asyncio.to_thread(self._put_manifest, key, data)
        return key

    async def put_manifest_file(self, artifact_digest: str, path: Path) -> str:
        """Store the manifest in the file ``path``, copied in the kernel, never read
        into memory."""
        key = manifest_key(artifact_digest)
        await asyncio.to_thread(self._put_manifest, key, path)
        return key

    async def get_manifest(self, key: str) -> bytes:
        """The bytes of the manifest at ``key``."""
        path = os.path.join(self._root, check_manifest_key(key))
        try:
            return await asyncio.to_thread(Path(path).read_bytes)
        except FileNotFoundError:
            raise ObjectNotFoundError(key, self.url) from None
        except OSError as e:
            raise StoreUnavailableError.from_os_error(e, path) from e

    def local_path(self, md5_hex: str) -> str:
        """The file holding the blob ``md5_hex`` (unchecked: see :meth:`Store.local_path`)."""
        return f"{self._blobs}/{md5_hex[:2]}/{md5_hex}"

    async def open_blob_path(self, md5_hex: str) -> Path:
        """The file holding a blob, to read (never to write: other versions share it)."""
        path = self.root / blob_key(md5_hex)
        if not await asyncio.to_thread(path.exists):
            raise ObjectNotFoundError(blob_key(md5_hex), self.url)
        return path

    async def sync(self) -> None:
        """Make every write so far durable, names included: one ``syncfs`` (rule 3)."""
        await asyncio.to_thread(self._sync)

    async def cleanup_tmp(self) -> int:
        """Remove the files interrupted writes left in ``tmp/``, after checking what their
        journals name (rule 7); returns how many. Run at start, before any work."""
        return await asyncio.to_thread(self._cleanup_tmp)

    async def list_blobs(self) -> list[tuple[str, int, float]]:
        return await asyncio.to_thread(local_listing.list_blobs, self._root)

    async def delete_blobs(self, md5_hexes: Sequence[str]) -> None:
        keys = local_listing.blob_keys(md5_hexes)
        await asyncio.to_thread(local_listing.delete_files, self._root, keys)

    async def list_manifests(self) -> list[tuple[str, float]]:
        return await asyncio.to_thread(local_listing.list_manifests, self._root)

    async def delete_manifests(self, keys: Sequence[str]) -> None:
        checked = local_listing.manifest_keys(keys)
        await asyncio.to_thread(local_listing.delete_files, self._root, checked)

    # -- blocking work, run in worker threads -----------------------------------------

    def _present(self, md5_hexes: list[str]) -> set[str]:
        blobs, present = self._blobs, set[str]()
        for h in md5_hexes:
            try:
                mode = os.stat(f"{blobs}/{check_md5_hex(h)[:2]}/{h}").st_mode
            except FileNotFoundError:
                continue
            if mode & 0o777:  # rule 1: no permission bits, still being written
                present.add(h)
        return present

    def _put_batch(self, items: Sequence[BlobItem], caller: CallerRights | None) -> int:
        requests = [
            (item.source, item.md5_hex, item.size, item.mtime_ns, item.move, item.move)
            for item in items
        ]
        outcomes = self._put(requests, caller=caller)
        _raise_first_failure(outcomes, [item.source for item in items])
        return self._count_stored(outcomes)

    def _stage_batch(
        self, files: Sequence[tuple[str | Path, int | None]], caller: CallerRights | None
    ) -> StagedFiles:
        requests = [(path, None, None, None, False, False) for path, _ in files]
        tag = self._tag()
        outcomes = self._put(requests, tag, name=False, caller=caller)
        _raise_first_failure(outcomes, [path for path, _ in files])
        staged = StagedFiles([], [], str(_core.blob_journal(self._tmp, tag)))
        for outcome in outcomes:
            digest = outcome.hashed
            assert digest is not None, "a request without a digest is read"
            staged.digests.append(digest)
            if outcome.status == "staged":
                assert outcome.staged is not None
                staged.files.append((digest.md5_hex, outcome.staged))
        return staged

    def _name_batch(self, staged: StagedFiles) -> int:
        syncfs, files = self._syncfs is not None, staged.files
        try:
            named = _core.name_blobs(self._blobs, files, syncfs=syncfs, journal=staged.journal)
        except OSError as e:  # our own files: only the store can be at fault
            raise StoreUnavailableError.from_os_error(e, e.filename or self._blobs) from e
        finally:
            if not syncfs:
                self._renamed({self._blobs, *(f"{self._blobs}/{h[:2]}" for h, _ in files)})
        return named

    def _discard_batch(self, staged: StagedFiles) -> None:
        _unlink_all([copy for _, copy in staged.files if copy.startswith(f"{self._tmp}/")])
        if not os.path.exists(staged.journal):
            return
        try:
            self._sync_filesystem()  # rule 5: the journal goes only after the sync
        except StoreUnavailableError:
            return  # the journal stays for the next start's check (rule 7)
        unlink_quietly(staged.journal)

    def _tag(self) -> str:
        """Unique to one put_blobs call: its temporary files and journal carry it."""
        return f"{self._token}.{next(self._names)}"

    def _put(
        self,
        requests: Sequence[_Request],
        tag: str | None = None,
        name: bool = True,
        caller: CallerRights | None = None,
    ) -> list[_core.BlobOutcome]:
        return _core.put_blobs(
            self._blobs,
            self._tmp,
            requests,
            tag=tag or self._tag(),
            name=name,
            syncfs=self._syncfs is not None,
            # The current submission's counters: a large file's bar moves while it is in.
            hashed=tracking.hash_progress(),
            stored=tracking.store_progress(),
            caller=caller,
        )

    def _count_stored(self, outcomes: list[_core.BlobOutcome]) -> int:
        """How many blobs were new; without syncfs, remember where they were renamed."""
        stored = [o for o in outcomes if o.status == "stored"]
        if self._syncfs is None and stored:
            # The fan-out directories, and where a new one may have been made.
            fanout = {f"{self._blobs}/{(o.md5_hex or '')[:2]}" for o in stored}
            self._renamed({self._blobs, *fanout})
        return len(stored)

    def _renamed(self, directories: set[str]) -> None:
        if self._syncfs is None and directories:
            with self._lock:
                self._unsynced_dirs |= directories

    def _sync(self) -> None:
        if self._syncfs is not None:
            self._sync_filesystem()
            return
        with self._lock:
            directories, self._unsynced_dirs = self._unsynced_dirs, set()
        try:
            for directory in sorted(directories):
                fsync_path(directory)
        except OSError as e:
            with self._lock:
                self._unsynced_dirs |= directories  # the next sync tries them again
            raise StoreUnavailableError.from_os_error(e, e.filename or self._root) from e

    def _sync_filesystem(self) -> None:
        assert self._syncfs is not None
        try:
            self._syncfs(self._root)
        except OSError as e:
            raise StoreUnavailableError(self._root, f"syncfs: {e.strerror or e}") from e

    def _put_manifest(self, key: str, data: bytes | bytearray | Path) -> None:
        final = os.path.join(self._root, key)
        if os.path.exists(final):
            return
        directory = os.path.dirname(final)
        self._ensure_dir(directory)
        tmp = self._tmp_name(os.path.basename(final))
        try:
            # One small file per version: an fsync is cheaper than a syncfs that would
            # flush everything else dirty on the filesystem.
            if isinstance(data, Path):
                _copy_manifest(data, tmp)
            else:
                _write_manifest(tmp, data)
            try:
                # A link never replaces: the first manifest stored under a digest wins,
                # so a committed version's manifest cannot change under it.
                os.link(tmp, final)
            except FileExistsError:
                pass
            except OSError as e:
                if e.errno not in NO_HARD_LINKS:
                    raise
                os.replace(tmp, final)
        except OSError as e:
            self._made.clear()
            raise StoreUnavailableError.from_os_error(e, e.filename or tmp) from e
        finally:
            unlink_quietly(tmp)
        self._renamed({directory})

    def _cleanup_tmp(self) -> int:
        try:
            with os.scandir(self._tmp) as scan:
                entries = list(scan)
            # Rule 7: journals first; what they name that is not whole goes, durably,
            # before the journals go with the rest.
            journals = [e.path for e in entries if e.name.endswith(".blobs")]
            broken = sum(_core.recover_blobs(self._blobs, j) for j in journals)
            if journals:
                log.warning("in_place_recovered", journals=len(journals), removed=broken)
                self._sync()
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
        except OSError as e:
            raise StoreUnavailableError.from_os_error(e, e.filename or self._tmp) from e
        return len(entries)

    def _ensure_dir(self, directory: str) -> None:
        if directory in self._made:
            return
        try:
            os.mkdir(directory)
        except FileExistsError:
            pass
        except OSError as e:
            raise StoreUnavailableError.from_os_error(e, directory) from e
        else:
            self._renamed({os.path.dirname(directory)})  # its entry, durable on sync
        self._made.add(directory)

    def _tmp_name(self, name: str) -> str:
        return f"{self._tmp}/{name}.{self._token}.{next(self._names)}"


def _ranges(
    sizes: Sequence[int | None], max_files: int, max_bytes: int
) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of consecutive batches, as :func:`batches` cuts them."""
    start = total = 0
    for i, size in enumerate(sizes):
        if i > start and (i - start >= max_files or total + (size or 0) > max_bytes):
            yield start, i
            start, total = i, 0
        total += size or 0
    if start < len(sizes):
        yield start, len(sizes)


def _unlink_all(paths: list[str]) -> None:
    for path in paths:
        unlink_quietly(path)


def _raise_first_failure(outcomes: list[_core.BlobOutcome], sources: Sequence[str | Path]) -> None:
    """Raise for the first failed request: a bad source first (the submission's fault,
    rejected), else the store's failure (retried)."""
    if _FAILED.isdisjoint(map(_status, outcomes)):  # the common batch: one look at each
        return
    for outcome, source in zip(outcomes, sources, strict=True):
        if outcome.status == "source":
            assert outcome.error is not None
            raise outcome.error
        if outcome.status == "changed":
            assert outcome.change is not None
            expected, actual, what = outcome.change
            raise SourceChangedError(source, expected, actual, what)
    for outcome in outcomes:
        if outcome.status == "store":
            error = outcome.error
            assert error is not None
            raise StoreUnavailableError.from_os_error(error, error.filename)


_status = operator.attrgetter("status")
_FAILED: Final = frozenset({"source", "changed", "store"})  # what the loops above raise for


def _write_manifest(tmp: str, data: bytes | bytearray) -> None:
    """Write ``data`` to the new file ``tmp``, on disk when this returns."""
    fd = os.open(tmp, CREATE, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        close_quietly(fd)
        raise
    os.close(fd)


def _copy_manifest(source: Path, tmp: str) -> None:
    """Copy the file ``source`` to the new file ``tmp``, on disk when this returns.

    The core's copy (a reflink, else ``copy_file_range`` with its fallback through a
    buffer) is the one copy routine; its digest is not needed (a manifest is stored
    under its artifact's digest), so the only cost over a plain copy is one hashing
    read of a file built moments before."""
    _core.copy_and_hash(source, tmp, fsync=True)
    # The core creates with 0o666 under the umask; clearing group and other write gives
    # exactly what _write_manifest's 0o644 under the umask gives.
    mode = stat.S_IMODE(os.stat(tmp).st_mode)
    if mode & 0o022:
        os.chmod(tmp, mode & ~0o022)
