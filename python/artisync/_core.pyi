"""The Rust core: everything that touches file bytes.

Every function releases the GIL while it works; call it from asyncio with
``await asyncio.to_thread(...)``, batching many files per call. An I/O failure raises
the matching :class:`OSError` subclass (``FileNotFoundError``, ``PermissionError``,
``IsADirectoryError``, ...) with ``filename`` set to the path it happened on.
``threads=None`` uses one worker per core.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Literal, final

from _typeshed import StrPath

__all__ = [
    "BlobOutcome",
    "FileDigest",
    "PartDigests",
    "PlacedFile",
    "Progress",
    "SymlinkLoopError",
    "WalkEntry",
    "WalkListing",
    "__version__",
    "blob_journal",
    "can_act_as",
    "copy_and_hash",
    "copy_tree_and_hash",
    "copy_verify_many",
    "hash_files",
    "manifest_contents",
    "name_blobs",
    "part_md5",
    "part_md5s",
    "put_blobs",
    "recover_blobs",
    "simd_levels",
    "start_writeback",
    "sync_filesystem",
    "walk",
    "walk_listing",
]

__version__: str

class SymlinkLoopError(OSError):
    """Following a symlink leads back to a directory that contains it (errno ELOOP).

    ``filename`` is the symlink; the message names the directory it leads back to.
    """

@final
class FileDigest:
    """A file's MD5 and stat, as read by the core."""

    @property
    def path(self) -> str:
        """The path as given (relative to the roots for :func:`copy_tree_and_hash`)."""
    @property
    def digest(self) -> str:
        """Base64 of the 16 raw MD5 bytes: the entry digest W&B writes in manifests."""
    @property
    def md5_hex(self) -> str:
        """The same MD5 as 32 lower-case hex digits: the store's blob name."""
    @property
    def size(self) -> int:
        """The number of bytes hashed."""
    @property
    def mtime_ns(self) -> int:
        """Modification time in nanoseconds, from the stat of the opened file."""
    @property
    def inode(self) -> int:
        """Inode number, from the stat of the opened file."""

@final
class WalkEntry:
    """One regular file found by :func:`walk`."""

    @property
    def path(self) -> str:
        """Relative to the walked root, ``/``-separated."""
    @property
    def size(self) -> int:
        """Size in bytes."""
    @property
    def mtime_ns(self) -> int:
        """Modification time in nanoseconds."""
    @property
    def inode(self) -> int:
        """Inode number."""

@final
class PartDigests:
    """Per-part MD5s of a file and the S3 multipart ETag they give."""

    @property
    def parts(self) -> list[str]:
        """Base64 MD5 of each part, ready for a ``Content-MD5`` header."""
    @property
    def etag(self) -> str:
        """S3's ETag of the completed multipart upload, ``"<hex>-<count>"``, unquoted."""
    @property
    def part_size(self) -> int:
        """The part size the file was cut by (the last part may be shorter)."""
    @property
    def size(self) -> int:
        """The file's size in bytes."""

@final
class PlacedFile:
    """What :func:`copy_verify_many` did with one file."""

    @property
    def written(self) -> bool:
        """The bytes had the expected MD5 and the destination now holds them.

        When false, nothing was written and the destination is as it was.
        """
    @property
    def md5_hex(self) -> str:
        """The MD5 of the bytes read from the source, as 32 lower-case hex digits."""
    @property
    def size(self) -> int:
        """The number of bytes read from the source."""
    @property
    def mtime_ns(self) -> int:
        """The destination's modification time after the rename (0 if not written)."""
    @property
    def ctime_ns(self) -> int:
        """The destination's status-change time after the rename (0 if not written)."""
    @property
    def inode(self) -> int:
        """The destination's inode number (0 if not written)."""

@final
class BlobOutcome:
    """What :func:`put_blobs` did with one request."""

    @property
    def status(
        self,
    ) -> Literal["stored", "present", "staged", "not_stored", "source", "changed", "store"]:
        """``stored``: a new blob, named by this call. ``present``: the blob was there
        already (or an earlier request of the call stores it); nothing was written.
        ``staged`` (with ``name=False``): ready for a later call to name. ``not_stored``:
        another request of the batch failed, so none was named. Else the request
        failed, by the fault of its ``source`` (missing, unreadable, not a regular
        file), because the source ``changed``, or by the ``store``'s.
        """
    @property
    def staged(self) -> str | None:
        """For ``staged``: the file to rename into place (a copy in ``tmp``, named by
        :func:`name_blobs`, or the source of a ``move``)."""
    @property
    def md5_hex(self) -> str | None:
        """The blob's MD5 (given, or taken while storing), if known."""
    @property
    def hashed(self) -> FileDigest | None:
        """For a request without a digest: the MD5 and stat of the bytes read."""
    @property
    def error(self) -> OSError | None:
        """For ``source`` and ``store``: the error, naming the file it happened on."""
    @property
    def change(self) -> tuple[int, int, str | None] | None:
        """For ``changed``: the size expected and found, or ``(0, 0)`` and what changed."""

@final
class Progress:
    """Bytes and files done so far by the calls it is passed to as ``progress=``.

    The core adds to it while the call runs (every 1 MiB buffer, with the GIL
    released), so another thread sees the hashing of one large file move before the
    call returns. Counts only grow; one counter may be shared by many calls.
    """

    def __init__(self) -> None: ...
    @property
    def bytes(self) -> int:
        """Bytes read (hashed, or copied while hashed) so far."""
    @property
    def files(self) -> int:
        """Files finished so far."""
    def add(self, bytes: int, files: int = 0) -> None:
        """Add work done outside the core, e.g. the bytes a Python upload loop sent."""

# (uid, gid, groups): the user whose rights a call opens files with.
_Caller = tuple[int, int, list[int]]

def can_act_as(caller: _Caller) -> bool:
    """Whether this process can open files with ``caller``'s rights (it has
    ``CAP_SETUID`` and ``CAP_SETGID``: root, or a unit's ambient capabilities)."""

def simd_levels() -> list[str]:
    """The SIMD levels ``simd=`` can name on this CPU, best first (``"scalar"`` last):
    ``"avx512"``, ``"avx2"``, ``"sse4.2"``, ``"sse2"`` on x86-64, ``"neon"`` on ARM."""

def hash_files(
    paths: Sequence[StrPath],
    *,
    threads: int | None = None,
    progress: Progress | None = None,
    caller: _Caller | None = None,
    simd: str | None = None,
) -> list[FileDigest]:
    """MD5, size, mtime_ns and inode of each file, in the order given.

    Files are spread over ``threads`` workers, each hashing up to 48 files at once in
    SIMD lanes, 128 KiB of each at a time (a lone file runs on the single-stream path).
    ``simd`` names the level (one of :func:`simd_levels`, or ``"auto"``; default the
    CPU's best): a level this CPU lacks, or an unknown name, is a ``ValueError``.
    If any file fails, the error of the first failing one (in input order) is raised.
    ``progress`` counts the bytes as they are hashed and each file when done. With
    ``caller``, each file is opened with that user's rights. Anything but a regular
    file (a FIFO, a device, a file of procfs or sysfs) is an ``OSError`` naming it.
    """

def copy_and_hash(
    src: StrPath, dst: StrPath, *, fsync: bool = False, progress: Progress | None = None
) -> FileDigest:
    """Copy ``src`` to the new file ``dst`` and hash it in the same read pass.

    ``dst`` must not exist (``FileExistsError``). Where the filesystem supports
    reflinks (FICLONE) the copy shares extents and ``src`` is read once to hash it.
    With ``fsync`` the copy is on disk before this returns. On failure ``dst`` is
    removed. The digest's stat fields are those of ``src``. ``progress`` counts the
    bytes as they are hashed and the file once copied.
    """

def copy_tree_and_hash(
    src_root: StrPath,
    dst_root: StrPath,
    *,
    follow_symlinks: bool = True,
    threads: int | None = None,
    fsync: bool = False,
    progress: Progress | None = None,
) -> list[FileDigest]:
    """Copy every regular file under ``src_root`` into ``dst_root``, hashing each.

    Results are sorted by path, relative to the roots. On failure the files already
    copied stay in ``dst_root``, which the caller owns. ``progress`` counts bytes and
    files as they are copied.
    """

def copy_verify_many(
    items: Sequence[tuple[StrPath, StrPath, str]], *, tag: str, threads: int | None = None
) -> list[PlacedFile | OSError]:
    """Place verified copies: for each ``(src, dst, md5_hex)``, copy ``src`` to a
    temporary file beside ``dst`` while hashing it, and rename it to ``dst`` (replacing
    what is there) only if its MD5 is ``md5_hex``; otherwise remove it.

    The temporary file is ``.artisync-<tag>-<index>.tmp`` in ``dst``'s directory, which
    must exist; ``tag`` must make that name unique (``ValueError`` if it is empty or
    holds a ``/``). Reflinks (FICLONE) are used where the filesystem has them. A source
    modified in place while it is copied is an ``OSError``; one replaced (renamed
    over) or removed meanwhile is fine, its bytes were read whole. Items are spread
    over ``threads`` workers; one result per item, in order: a :class:`PlacedFile`, or
    the ``OSError`` that item failed with (the other items go on). Nothing is fsynced.
    """

def put_blobs(
    blobs: StrPath,
    tmp: StrPath,
    requests: Sequence[tuple[StrPath, str | None, int | None, int | None, bool, bool]],
    *,
    tag: str,
    name: bool = True,
    syncfs: bool = True,
    in_place: bool = True,
    threads: int | None = None,
    hashed: Progress | None = None,
    stored: Progress | None = None,
    caller: _Caller | None = None,
) -> list[BlobOutcome]:
    """Store each ``(source, md5_hex, size, mtime_ns, move, snapshot)`` as the blob
    ``blobs/<md5_hex[:2]>/<md5_hex>``; one :class:`BlobOutcome` per request, in order.

    A request whose blob exists is skipped. Else the source is copied into ``tmp``
    (same filesystem; names carry ``tag``, which must be unique among the store's
    writers): a file up to 1 MiB is read into a buffer and written from it, a larger
    one copied in the kernel. With ``move`` the source itself is hard-linked (else
    renamed) into place if it is on the store's filesystem. ``md5_hex=None`` hashes the
    source on the way (a small file from the same buffer, a large one before it is
    copied) and skips the copy if that blob exists. ``size`` and ``mtime_ns``, when
    given, must still be the source's, and the source must not change while it is
    copied.

    If no request failed, the batch is made durable (one ``syncfs``, or an ``fsync``
    per file without ``syncfs``) and only then renamed into place, in request order,
    stopping at a failed rename. If any request failed before that, none is named and
    every temporary file is removed. With ``name=False`` the call stops before making
    anything durable and reports each file to name as ``staged``. Requests are spread
    over ``threads`` workers; a malformed ``md5_hex`` or ``tag`` is a ``ValueError``.
    ``hashed`` and ``stored``, when given, count the bytes and files hashed and
    written (or found stored) as the call goes, a large file's every MiB.

    With ``in_place`` (and ``syncfs``), a file up to 64 KiB is written at its blob name
    instead of a copy in ``tmp`` (no permission bits until it is whole; its name is
    ``staged`` then), under the journal :func:`blob_journal` names, removed once the
    batch is durable; :func:`recover_blobs` checks what a crash left.
    """

def name_blobs(
    blobs: StrPath,
    copies: Sequence[tuple[str, StrPath]],
    *,
    syncfs: bool = True,
    journal: StrPath | None = None,
) -> int:
    """Name the copies :func:`put_blobs` staged (``name=False``), each ``(md5_hex,
    copy)``: make them durable (one ``syncfs``, or an ``fsync`` each without it), then
    rename each to ``blobs/<md5_hex[:2]>/<md5_hex>`` in order, replacing a blob stored
    meanwhile (the same bytes); a copy that is that blob already (written in place)
    only needed the sync. Then ``journal`` is removed. Returns how many were named. The
    first failure is raised as the ``OSError`` it was, naming its path; the copies in
    ``tmp`` not named by then are removed. A malformed ``md5_hex`` is a ``ValueError``.
    """

def blob_journal(tmp: StrPath, tag: str) -> Path:
    """The journal in ``tmp`` of the blobs a :func:`put_blobs` call tagged ``tag``
    writes in place (there only while some may not be durable)."""

def sync_filesystem(path: StrPath) -> None:
    """``syncfs(2)`` of the filesystem holding ``path`` (the GIL released): everything
    dirty on it is on disk when this returns. A writeback error anywhere on the
    filesystem (EIO, ENOSPC) raises an :class:`OSError` naming ``path``."""

def start_writeback(path: StrPath) -> None:
    """Start ``syncfs`` of the filesystem holding ``path`` on a detached thread and
    return at once (nothing if one is running): the daemon's sync before it names the
    snapshots then finds their bytes written or on their way."""

def recover_blobs(blobs: StrPath, journal: StrPath) -> int:
    """After a crash: re-hash every blob a leftover ``journal`` names and remove those
    that are incomplete or hold other bytes; how many were removed. Sync, then remove
    the journal."""

def part_md5(path: StrPath, offset: int, length: int) -> str:
    """Base64 MD5 of ``length`` bytes of ``path`` from ``offset`` (GIL released): one
    part of a multipart upload. A file that ends before the part does is an ``OSError``."""

def part_md5s(
    path: StrPath, part_size: int, *, threads: int | None = None, simd: str | None = None
) -> PartDigests:
    """Per-part MD5s of ``path`` cut into ``part_size``-byte parts, hashed in SIMD lanes
    (``simd`` as for :func:`hash_files`) and in parallel.

    An empty file has one empty part. ``part_size`` must be at least 1 (``ValueError``).
    """

@final
class WalkListing:
    """A directory listing kept in Rust, handed out a run at a time (:func:`walk_listing`)."""

    def __len__(self) -> int: ...
    @property
    def total_size(self) -> int:
        """Bytes in all the files listed, taken or not."""
    def take(self, n: int) -> list[WalkEntry]:
        """The next ``n`` entries at most, in path order; empty once all are taken."""

def walk_listing(
    root: StrPath,
    follow_symlinks: bool = True,
    *,
    threads: int | None = None,
    caller: _Caller | None = None,
) -> WalkListing:
    """:func:`walk`, with the entries kept in Rust until taken; with ``caller``, every
    directory is opened and every file stat'ed with that user's rights."""

def walk(
    root: StrPath, follow_symlinks: bool = True, *, threads: int | None = None
) -> list[WalkEntry]:
    """Every regular file under ``root`` with relative paths and stat, sorted by path.

    With ``follow_symlinks``, symlinked files and directories are followed and a
    symlink leading back to an enclosing directory raises :class:`SymlinkLoopError`;
    without it, symlinks are skipped. Sockets, FIFOs and devices are skipped.
    """

# Manifests (rust/manifest.rs).

def manifest_contents(
    paths: bytes, ends: bytes, md5: bytes, sizes: bytes
) -> tuple[bytes, bytes, tuple[int, int] | None]:
    """The plain entries of a manifest (``daemon/version_entries.py``), written from
    columns: ``paths`` ASCII end to end, ``ends`` and ``sizes`` native int64s
    (``array("q").tobytes()``), ``md5`` 16 raw bytes each.

    Returns the ``contents`` members as ``json.dumps(..., separators=(",", ":"))``
    writes them, sorted by path, the ``path:digest\\n`` lines the artifact digest
    hashes, and ``None``; or, for two entries no version may hold, ``(b"", b"", (i,
    j))``: ``i == j`` when entry ``i`` repeats an earlier path, else entry ``i`` is a
    file where entry ``j`` needs a directory. Raises :class:`ValueError` if the columns
    disagree or a path is not ASCII.
    """
