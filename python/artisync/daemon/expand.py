"""Expand and hash: from a submission's entries to the items of its manifest.

Directories become their files (the Rust walk), ``file://`` references become one item
per file, ``s3://``, ``gs://`` and ``http(s)://`` references one item per object
(:mod:`artisync.references`: listings, not downloads), and every item whose digest the
SDK did not already take is hashed by the Rust core in batches off the event loop.
What the user did wrong (a file changed after logging, a path that escapes the spool,
a reference over ``max_objects``, a missing object or credential) raises
:class:`Rejected` with a sentence the user can act on. A server that cannot be reached
raises :class:`~artisync.references.ReferenceUnavailableError`, a
:class:`~artisync.store.StoreUnavailableError`: transient, for the caller to retry.
"""

from __future__ import annotations

import asyncio
import binascii
import itertools
import json
import os
import posixpath
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple
from urllib.parse import unquote, urlparse

from artisync import _core, tracking
from artisync.daemon.callers import CoreCaller
from artisync.errors import SubmissionError
from artisync.logs import get_logger
from artisync.manifest import md5_b64_to_hex
from artisync.references import (
    REMOTE_SCHEMES,
    RefEntry,
    ReferenceFailure,
    ReferenceUnavailableError,
)
from artisync.references.remote import RemoteReferences
from artisync.spool import (
    DirEntry,
    FileEntry,
    ReferenceEntry,
    StagedEntry,
    StagedListEntry,
    Submission,
    staged_list,
)
from artisync.spool.batch_checks import all_canonical_md5, all_staged_under

__all__ = [
    "DEFAULT_MAX_OBJECTS",
    "Expansion",
    "Item",
    "Rejected",
    "check_unchanged",
    "expand",
    "hash_items",
    "md5_hexes",
    "plan",
    "total_size",
]

DEFAULT_MAX_OBJECTS = 10_000
# A remote reference is asked again this many times, after 0.5 s, 1 s, ..., before
# the failure goes to the caller (a blip should not cost a backoff of the pipeline).
REMOTE_ATTEMPTS = 3
REMOTE_BACKOFF = 0.5

log = get_logger("artisync.daemon")
# Files per call into the core: large enough to amortise the thread hop, small enough
# that a huge directory shows progress and yields to the event loop.
HASH_BATCH = 4096


class Rejected(Exception):
    """The submission cannot become a version; ``reason`` says why, for the user."""

    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(reason)
        self.stage = stage
        self.reason = reason


@dataclass(slots=True)
class Item:
    """One manifest entry in the making."""

    path: str
    # The local bytes, for items to hash or to store. A string: a Path per entry is a
    # measurable share of a large version's time, and everything downstream takes either.
    source: str | Path | None
    size: int | None
    digest: str | None = None  # base64 MD5 once known
    stored: bool = True  # False for references: their bytes stay where they are
    move: bool = False  # a staged snapshot the store may take by rename
    ref: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # What the stat must still say when the daemon reads the file (immutable policy).
    expect_mtime_ns: int | None = None
    expect_inode: int | None = None
    logged_ns: int | None = None  # files under an immutable dir: not modified after this
    hashed_mtime_ns: int | None = None  # the mtime the daemon hashed the file at
    # The digest a snapshot was submitted with, when the daemon must check it (another
    # user's): the item is hashed like any file and must come out the same.
    claimed: str | None = None

    @property
    def md5_hex(self) -> str:
        assert self.digest is not None
        return md5_b64_to_hex(self.digest)


def md5_hexes(items: list[Item]) -> list[str]:
    """Each item's :attr:`Item.md5_hex`, converted as a batch when every digest is
    canonical (as they are but for a bug: each is then converted on its own, failing
    as :attr:`Item.md5_hex` fails)."""
    digests = [item.digest or "" for item in items]  # "" is no digest: one at a time
    if all_canonical_md5(digests):
        return list(map(bytes.hex, map(binascii.a2b_base64, digests)))
    return [item.md5_hex for item in items]


def _join(prefix: str, rel: str) -> str:
    return posixpath.join(prefix, rel) if prefix else rel


Scratch = Callable[[str], Path]
"""Gives the path of a scratch file, by a word, beside the submission being expanded."""


class Piece(NamedTuple):
    """The items of one or more entries of a submission, made lazily, and their sizes
    (known before any item is made, for progress)."""

    files: int
    hash_bytes: int
    store_bytes: int
    items: Iterator[Item]


class Expansion:
    """A submission's items, made a chunk at a time.

    Directories are listed (and remote references expanded) up front; their items are
    made only as :meth:`chunks` hands them out, and each walk entry is let go once
    made into one: a directory of a million files never has a million ``Item``
    objects alive at once (DESIGN.md: 500 MB for a million entries).
    """

    def __init__(self, pieces: list[Piece]) -> None:
        self._pieces = pieces  # in submission order
        self.files = sum(p.files for p in pieces)
        self.hash_bytes = sum(p.hash_bytes for p in pieces)
        self.store_bytes = sum(p.store_bytes for p in pieces)

    def chunks(self, size: int) -> Iterator[list[Item]]:
        """The items, ``size`` at most at a time; each is handed out once."""
        items = itertools.chain.from_iterable(p.items for p in self._pieces)
        while chunk := list(itertools.islice(items, size)):
            yield chunk


def plan(
    sub: Submission,
    spool_root: Path,
    scratch: Scratch | None = None,
    caller: CoreCaller | None = None,
) -> Expansion:
    """List a submission's directories and references. Blocking: run in a thread.

    With ``scratch`` (a file name for a word, beside the submission), the objects of
    remote prefixes are written there a listing page at a time and read back a chunk
    at a time, never all held at once. With ``caller`` (another user than the
    daemon's), directories are listed with that user's rights and snapshots are
    checked, not trusted (see :mod:`artisync.daemon.callers`).
    """
    # Snapshot paths are opened with no symbolic link on them: start from the real path.
    spool_root = Path(os.path.realpath(spool_root))
    verify = caller is not None
    remote = [
        e
        for e in sub.entries
        if isinstance(e, ReferenceEntry) and urlparse(e.ref).scheme.lower() in REMOTE_SCHEMES
    ]
    found = asyncio.run(_expand_remote(remote, scratch)) if remote else {}
    pieces: list[Piece] = []
    loose: list[StagedEntry | FileEntry] = []  # one item each, made lazily

    def flush_loose() -> None:
        if loose:
            staged = sum(e.size for e in loose if isinstance(e, StagedEntry))
            files = sum(e.size or 0 for e in loose if isinstance(e, FileEntry))
            items = _loose(loose.copy(), spool_root, sub.id, verify)
            pieces.append(Piece(len(loose), files, staged + files, items))
            loose.clear()

    for entry in sub.entries:
        if isinstance(entry, StagedEntry | FileEntry):
            loose.append(entry)
            continue
        flush_loose()
        if isinstance(entry, StagedListEntry):
            rows = _staged_rows(entry, spool_root, sub.id, verify)
            pieces.append(Piece(entry.count, 0, entry.size, rows))
        elif isinstance(entry, ReferenceEntry) and id(entry) in found:
            pieces.append(found[id(entry)])
        elif isinstance(entry, DirEntry):
            root = Path(entry.local_path)
            listing = _walk_listing(root, f"directory {str(root)!r}", caller)
            total = listing.total_size
            pieces.append(
                Piece(len(listing), total, total, _directory(entry, listing, sub.created_ns))
            )
        else:
            pieces.append(_reference(entry, caller))
    flush_loose()
    return Expansion(pieces)


def expand(sub: Submission, spool_root: Path) -> list[Item]:
    """Every item of a submission at once, checked for duplicate paths (small
    submissions and tests; the pipeline goes through :func:`plan`)."""
    items = list(itertools.chain.from_iterable(plan(sub, spool_root).chunks(HASH_BATCH)))
    seen: set[str] = set()
    for item in items:
        if item.path in seen:
            raise Rejected("expand", f"two entries of the artifact are named {item.path!r}")
        seen.add(item.path)
    return items


def _loose(
    entries: list[StagedEntry | FileEntry], spool_root: Path, sub_id: str, verify: bool
) -> Iterator[Item]:
    if not verify:
        snapshots = [e for e in entries if isinstance(e, StagedEntry)]
        # The daemon's own user's snapshots, all inside the staging area (checked as
        # one batch): nothing left to check one at a time, nor to reject.
        if len(snapshots) == len(entries) and all_staged_under(
            [e.staged for e in snapshots], sub_id
        ):
            root = f"{spool_root}/"
            for e in snapshots:
                # Positional: path, source, size, digest, stored, move.
                yield Item(e.path, root + e.staged, e.size, e.digest, True, True)
            return
    for entry in entries:
        if isinstance(entry, StagedEntry):
            yield _staged(entry, spool_root, sub_id, verify)
        else:
            yield Item(
                entry.path,
                Path(entry.local_path),
                entry.size,
                expect_mtime_ns=entry.mtime_ns,
                expect_inode=entry.inode,
            )


def _staged_rows(
    entry: StagedListEntry, spool_root: Path, sub_id: str, verify: bool
) -> Iterator[Item]:
    """The items of a staged list, read a row at a time."""
    try:
        for row in staged_list.read_rows(entry, spool_root, sub_id):
            yield _staged(row, spool_root, sub_id, verify)
    except SubmissionError as e:
        raise Rejected("validate", str(e)) from None


def _staged(entry: StagedEntry, spool_root: Path, sub_id: str, verify: bool) -> Item:
    # Checked lexically: resolving 10,000 paths (a stat per component each) cost more
    # than storing them. A snapshot cut short (the SDK does not fsync them; only a
    # power cut loses bytes) is caught by the store, which checks each size.
    parts = entry.staged.split("/")
    if len(parts) < 3 or parts[:2] != ["staging", sub_id] or {"", ".", ".."} & set(parts):
        raise Rejected(
            "validate",
            f"entry {entry.path!r}: its snapshot {entry.staged!r} is outside this "
            "submission's staging area",
        )
    source = f"{spool_root}/{entry.staged}"
    if verify:
        # Another user's snapshot: hashed as it is copied in, never taken (its owner
        # could still write to it), and its digest must come out as claimed.
        return Item(entry.path, source, entry.size, claimed=entry.digest)
    return Item(entry.path, source, entry.size, digest=entry.digest, move=True)


def _walk_listing(root: Path, what: str, caller: CoreCaller | None) -> _core.WalkListing:
    try:
        return _core.walk_listing(root, caller=caller)
    except _core.SymlinkLoopError as e:
        raise Rejected("expand", f"{what}: {e.strerror}: {e.filename}") from None
    except OSError as e:
        raise Rejected("expand", f"{what} cannot be listed: {e.strerror}: {e.filename}") from None


def _directory(entry: DirEntry, listing: _core.WalkListing, logged_ns: int) -> Iterator[Item]:
    """The items of a listed directory, taken from the listing a run at a time."""
    prefix = str(Path(entry.local_path)).rstrip("/")  # "/" itself must not give "//x"
    while run := listing.take(HASH_BATCH):
        for f in run:
            yield Item(
                _join(entry.path, f.path),
                f"{prefix}/{f.path}",
                f.size,
                expect_mtime_ns=f.mtime_ns,
                expect_inode=f.inode,
                logged_ns=logged_ns,
            )


async def _expand_remote(
    entries: list[ReferenceEntry], scratch: Scratch | None
) -> dict[int, Piece]:
    """The items of each remote reference, keyed by ``id(entry)``; one set of clients."""
    found: dict[int, Piece] = {}
    async with RemoteReferences() as refs:
        for i, entry in enumerate(entries):
            spill = None if scratch is None else _Spill(scratch(f"ref{i}"))
            for attempt in range(1, REMOTE_ATTEMPTS + 1):
                try:
                    if spill is not None:
                        spill.restart()
                    objects = await refs.expand(
                        entry.ref,
                        entry.path,
                        entry.checksum,
                        entry.max_objects,
                        sink=None if spill is None else spill.write,
                    )
                    break
                except ReferenceFailure as e:
                    raise Rejected("expand", str(e)) from None
                except ReferenceUnavailableError as e:
                    if attempt == REMOTE_ATTEMPTS:
                        raise
                    delay = REMOTE_BACKOFF * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
                    log.warning("reference_retry", ref=entry.ref, error=str(e), delay=delay)
                    await asyncio.sleep(delay)
            if spill is not None:
                spill.close()
            if spill is None or not spill.count:  # not a prefix: one object, returned
                items = [_remote_item(o) for o in objects]
                found[id(entry)] = Piece(len(items), 0, 0, iter(items))
            else:
                found[id(entry)] = Piece(spill.count, 0, 0, spill.items())
    return found


class _Spill:
    """A remote listing's entries in a scratch file, one JSON line each: written a
    page at a time, read back a line at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._file: IO[bytes] | None = None

    def restart(self) -> None:
        self.close()
        self._file = open(self.path, "wb")  # noqa: SIM115  # closed by close()
        self.count = 0

    def write(self, page: list[RefEntry]) -> None:
        assert self._file is not None
        rows = [[e.path, e.ref, e.digest, e.size, e.extra] for e in page]
        self._file.write(b"".join(json.dumps(row).encode() + b"\n" for row in rows))
        self.count += len(rows)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def items(self) -> Iterator[Item]:
        with open(self.path, "rb") as f:
            for line in f:
                path, ref, digest, size, extra = json.loads(line)
                yield Item(path, None, size, digest=digest, stored=False, ref=ref, extra=extra)


def _remote_item(found: RefEntry) -> Item:
    return Item(
        found.path,
        None,
        found.size,
        digest=found.digest,
        stored=False,
        ref=found.ref,
        extra=found.extra,
    )


def _reference(entry: ReferenceEntry, caller: CoreCaller | None) -> Piece:
    """The items of a ``file://`` reference; a directory's are made lazily, like an
    immutable directory's."""
    uri = urlparse(entry.ref)
    if uri.scheme != "file":
        raise Rejected(
            "expand",
            f"reference {entry.ref!r}: {uri.scheme or 'scheme-less'} references are not "
            "supported (file://, s3://, gs://, http:// and https:// are)",
        )
    path = Path(unquote(uri.path))
    if not entry.checksum:
        name = entry.path or path.name
        return Piece(
            1, 0, 0, iter([Item(name, None, None, digest=entry.ref, stored=False, ref=entry.ref)])
        )
    # Looked at with the caller's rights: not even a file's existence is told to a
    # caller who may not see it.
    try:
        listing: _core.WalkListing | None = _core.walk_listing(path, caller=caller)
    except NotADirectoryError:
        listing = None
    except _core.SymlinkLoopError as e:
        raise Rejected("expand", f"reference {entry.ref!r}: {e.strerror}: {e.filename}") from None
    except FileNotFoundError:
        raise Rejected("expand", f"reference {entry.ref!r}: no such file or directory") from None
    except OSError as e:
        raise Rejected(
            "expand", f"reference {entry.ref!r} cannot be listed: {e.strerror}: {e.filename}"
        ) from None
    if listing is not None:
        limit = entry.max_objects or DEFAULT_MAX_OBJECTS
        if len(listing) > limit:
            raise Rejected(
                "expand",
                f"reference {entry.ref!r} holds {len(listing):,} files, more than "
                f"max_objects={limit:,}; pass a larger max_objects to add_reference",
            )
        total = listing.total_size
        return Piece(len(listing), total, 0, _referenced_files(entry.path, path, listing))
    name = entry.path or path.name
    item = Item(name, path, None, stored=False, ref=path.as_uri())
    return Piece(1, 0, 0, iter([item]))


def _referenced_files(prefix: str, root: Path, listing: _core.WalkListing) -> Iterator[Item]:
    while run := listing.take(HASH_BATCH):
        for f in run:
            source = root / f.path
            yield Item(_join(prefix, f.path), source, f.size, stored=False, ref=source.as_uri())


async def hash_items(items: list[Item], caller: CoreCaller | None = None) -> None:
    """Hash every item without a digest, checking immutable files did not change;
    with ``caller``, each file is opened with that user's rights."""
    todo = [item for item in items if item.digest is None and item.source is not None]
    for start in range(0, len(todo), HASH_BATCH):
        batch = todo[start : start + HASH_BATCH]
        paths = [item.source for item in batch if item.source is not None]
        try:
            digests = await asyncio.to_thread(
                _core.hash_files, paths, progress=tracking.hash_progress(), caller=caller
            )
        except OSError as e:
            raise Rejected("hash", f"{e.filename}: {e.strerror or e}") from None
        for item, d in zip(batch, digests, strict=True):
            check_unchanged(item, d)
            item.digest = d.digest
            item.size = d.size
            item.hashed_mtime_ns = d.mtime_ns


def check_unchanged(item: Item, d: _core.FileDigest) -> None:
    """Raise :class:`Rejected` unless the file hashed to ``d`` is still what ``item``
    was logged as (a snapshot's claimed digest; an immutable file's inode, size and
    modification time), whoever hashed it: :func:`hash_items` or the store's fused copy."""
    if item.claimed is not None and d.digest != item.claimed:
        raise Rejected(
            "hash",
            f"entry {item.path!r}: its snapshot's content does not match the digest it "
            f"was logged with ({item.claimed}, but the bytes hash to {d.digest}): the "
            "snapshot was changed after the SDK took it; log the artifact again",
        )
    changed: list[str] = []
    if item.expect_inode is not None and d.inode != item.expect_inode:
        changed.append("it was replaced by another file")
    if item.size is not None and item.ref is None and d.size != item.size:
        changed.append(f"its size went from {item.size} to {d.size} bytes")
    if item.expect_mtime_ns is not None and d.mtime_ns != item.expect_mtime_ns:
        changed.append("its modification time changed")
    if item.logged_ns is not None and d.mtime_ns > item.logged_ns:
        changed.append("it was modified after log_artifact")
    if changed:
        raise Rejected(
            "hash",
            f"{item.source} changed after it was logged with policy='immutable' "
            f"({'; '.join(dict.fromkeys(changed))}). Log it with policy='mutable' to "
            "snapshot it at log time, or leave it unchanged until the version is committed",
        )


def total_size(items: list[Item]) -> int:
    """Bytes of content the version stores (references excluded)."""
    return sum(item.size or 0 for item in items if item.stored)
