"""The local blob cache: verified copies of remote blobs, bounded in size, LRU-evicted.

Where it is (:func:`cache_directory`): the ``cache_dir`` setting if there is one; else
``$ARTISYNC_HOME/cache`` for the home's owner (a single user, the daemon), and for
anyone else a cache of their own, ``$XDG_CACHE_HOME/artisync`` (``~/.cache/artisync``),
as W&B keeps ``~/.cache/wandb``: a cache shared by the users of one home would let one
plant what another reads, and a user who may not write the home could not download.
The cache's directory is created 0700.

Layout::

    blobs/md5/<hex[:2]>/<hex>     a blob's bytes, hex = their MD5 (the store's layout)
    roots/<md5 of a root>.json    what downloads wrote under one root (root_record.py)
    tmp/                          files being fetched, under names unique per process
    trim.lock                     held by whichever process is evicting

Rules that keep it safe with several processes downloading at once, with no server
and no index to corrupt:

- a file gets its final name only by an atomic rename, after its MD5 was checked, so
  a reader never sees a partial blob; two processes admitting the same blob rename the
  same bytes;
- a blob is trusted by its size alone on lookup (a stat, no read). Corruption after
  admission (a bad disk, a stray write) costs nothing to detect: every read from the
  cache is the verified copy into a download root, which hashes the bytes anyway; a
  mismatch discards the cached copy and the blob is fetched again;
- recency is the file's mtime: a lookup touches a blob that was last touched more than
  :data:`TOUCH_AFTER` seconds ago (no write per hit), and eviction removes the oldest
  first until the total is under ``max_bytes``. A process that finds a blob gone
  between its lookup and its copy (another process evicted it) fetches it again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from artisync.config import Config
from artisync.disk_full import explaining_disk_full, filesystem_of, is_disk_full
from artisync.download.errors import DownloadError
from artisync.store.base import blob_key

__all__ = ["DEFAULT_MAX_BYTES", "TOUCH_AFTER", "BlobCache", "cache_directory", "open_cache"]

DEFAULT_MAX_BYTES = 10 << 30
"""The default bound of a cache: 10 GiB."""

TOUCH_AFTER = 60.0
"""Seconds after which a lookup marks a blob as recently used again."""

# Files left in tmp/ by a killed process are removed once they are this old.
_STALE_TMP = 24 * 3600.0


class BlobCache:
    """A content-addressed, size-bounded blob cache in ``directory``.

    Nothing is created until something is written, so opening one is free.
    ``max_bytes`` bounds blobs and root records together. It holds after every
    :meth:`trim`: a download trims when what it added may have crossed the bound (it
    counts from its last scan) and once more at its end if it added anything, so the
    bound holds whenever no download is running. A single blob larger than the bound
    is not kept.
    """

    def __init__(self, directory: Path | str, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be at least 0, not {max_bytes}")
        self.directory = Path(os.path.abspath(directory))
        self.max_bytes = max_bytes
        self._dir = str(self.directory)
        self._tmp = f"{self._dir}/tmp"
        self._token = f"{os.getpid()}.{secrets.token_hex(4)}"
        self._names = 0
        self._made: set[str] = set()
        # Bytes in the cache as of the last scan plus what this process added since;
        # None until the first scan.
        self._usage: int | None = None
        self.full = False
        """Whether the cache's filesystem was found full: downloads then go on without
        adding to the cache (see :meth:`skipped_if_full`)."""

    def __repr__(self) -> str:
        return f"BlobCache({self._dir!r}, max_bytes={self.max_bytes})"

    @classmethod
    def default(cls) -> BlobCache:
        """The cache of the default home's configuration (:func:`open_cache`)."""
        return open_cache(Config.load())

    @property
    def roots_dir(self) -> Path:
        """Where root records live (see ``root_record.py``)."""
        return self.directory / "roots"

    def blob_path(self, md5_hex: str) -> str:
        """Where the blob with this MD5 is (or would be) cached."""
        return f"{self._dir}/{blob_key(md5_hex)}"

    def lookup(self, md5_hex: str, size: int | None) -> str | None:
        """The cached blob's path if it is there with ``size`` bytes (None: any size).

        A cached file of another size is removed. A hit counts as a use for eviction.
        """
        path = self.blob_path(md5_hex)
        try:
            st = os.stat(path)
        except OSError:
            return None
        if size is not None and st.st_size != size:
            self.discard(md5_hex)
            return None
        now = time.time()
        if now - st.st_mtime > TOUCH_AFTER:
            with contextlib.suppress(OSError):  # evicted meanwhile: the copy will tell
                os.utime(path, (now, now))
        return path

    def new_tmp(self, md5_hex: str) -> str:
        """A fresh path in the cache's ``tmp/`` to fetch a blob into."""
        with explaining_disk_full("cannot prepare the download cache", self._tmp):
            self._ensure_dir(self._tmp)
        self._names += 1
        return f"{self._tmp}/{md5_hex}.{self._token}.{self._names}"

    def tmp_beside(self, directory: str, name: str) -> str:
        """A fresh hidden path in ``directory`` (a download's root) to fetch into when
        the cache's filesystem is full; the caller removes it once it is placed."""
        self._names += 1
        return f"{directory}/.artisync-fetching.{name}.{self._token}.{self._names}"

    def make_directory(self) -> None:
        """Create the cache's own directory, 0700 (and missing parents, 0700 as the
        XDG base directories are); an existing one is left as it is.

        Raises:
            DownloadError: it cannot be created for want of rights, naming it and the
                setting that moves it.
            DiskFullError: its filesystem is full.
        """
        if self._dir in self._made:
            return
        with explaining_disk_full("cannot prepare the download cache", self._dir):
            try:
                os.makedirs(os.path.dirname(self._dir), mode=0o700, exist_ok=True)
                try:
                    os.mkdir(self._dir, 0o700)
                except FileExistsError:
                    pass
                else:
                    os.chmod(self._dir, 0o700)  # the umask may have taken more
            except PermissionError as e:
                raise DownloadError(
                    f"cannot create the download cache {self._dir}: {e.strerror}; set "
                    "cache_dir in config.toml or ARTISYNC_CACHE_DIR to a directory of yours"
                ) from e
        self._made.add(self._dir)

    def admit(self, tmp: str, md5_hex: str, size: int) -> bool:
        """Give the verified file ``tmp`` (from :meth:`new_tmp`) its final name: an
        atomic rename, the last writer wins. A blob larger than the whole bound is
        removed instead; returns whether it was kept."""
        if size > self.max_bytes:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            return False
        try:
            doing = f"cannot keep blob {md5_hex} in the download cache"
            with explaining_disk_full(doing, self.blob_path(md5_hex)):
                self._ensure_dir(os.path.dirname(self.blob_path(md5_hex)))
                os.replace(tmp, self.blob_path(md5_hex))
        except BaseException:
            # Not admitted: the fetched copy must not wait a day in tmp/ for the sweep.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        if self._usage is not None:
            self._usage += size
        return True

    @contextlib.contextmanager
    def skipped_if_full(self, doing: str) -> Iterator[None]:
        """Run the block, which writes into the cache; if its filesystem is full, give
        up on the write with one warning line (the first time) instead of failing.

        The cache only saves work: a download whose destination has room must not fail
        because the home's disk is full. What is skipped (a blob not kept, a root
        record not saved) costs a later download a fetch or a re-verification.
        """
        try:
            yield
        except OSError as e:
            if not is_disk_full(e):
                raise
            self._warn_full(doing, e)

    def note_full(self, doing: str, error: OSError) -> None:
        """Mark the cache as full (``error`` said so while ``doing``), with one warning
        line the first time: downloads go on without it."""
        self._warn_full(doing, error)

    def _warn_full(self, doing: str, error: OSError) -> None:
        if not self.full:
            self.full = True
            where = error.filename if isinstance(error.filename, str) else self._dir
            space = filesystem_of(where).space()
            print(
                f"artisync: warning: the download cache at {self._dir} is full ({space}; "
                f"{doing}); downloading without it: free space there to use it again",
                file=sys.stderr,
            )

    def discard(self, md5_hex: str) -> None:
        """Remove a cached blob found to be wrong (missing is fine)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.blob_path(md5_hex))

    def over_bound(self) -> bool:
        """Whether the cache may hold more than ``max_bytes`` (unknown counts as yes)."""
        return self._usage is None or self._usage > self.max_bytes

    def usage(self) -> int:
        """Bytes the cache holds now (blobs and root records), by scanning it."""
        return sum(size for _, size, _ in self._scan())

    def trim(self) -> int:
        """Evict least-recently-used files until the cache holds at most ``max_bytes``.

        Returns the bytes freed. Trims of several processes take turns (a file lock),
        each scanning once it has the lock, so the last one sees everything admitted
        before it. Also removes temporary files a killed process left.
        """
        if not self.directory.exists():
            self._usage = 0
            return 0
        with (
            explaining_disk_full("cannot lock the download cache", f"{self._dir}/trim.lock"),
            open(f"{self._dir}/trim.lock", "a") as lock,
        ):
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
            files = self._scan()
            total = sum(size for _, size, _ in files)
            freed = 0
            for path, size, _ in sorted(files, key=lambda f: f[2]):
                if total - freed <= self.max_bytes:
                    break
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                freed += size
            self._usage = total - freed
            return freed

    # -- internals ------------------------------------------------------------------

    def _scan(self) -> list[tuple[str, int, int]]:
        """Every evictable file as ``(path, size, mtime_ns)``; stale temporaries go.

        A plain ``scandir`` walk that shrugs off files vanishing under it: another
        process may be evicting at the same time.
        """
        files: list[tuple[str, int, int]] = []
        stale_ns = time.time_ns() - int(_STALE_TMP * 1e9)
        pending = [f"{self._dir}/{sub}" for sub in ("blobs", "roots")]
        while pending:
            directory = pending.pop()
            try:
                with os.scandir(directory) as entries:
                    for entry in entries:
                        if entry.is_dir(follow_symlinks=False):
                            pending.append(entry.path)
                            continue
                        if entry.name.startswith("."):  # being written by its owner
                            continue
                        with contextlib.suppress(FileNotFoundError):
                            st = entry.stat(follow_symlinks=False)
                            files.append((entry.path, st.st_size, st.st_mtime_ns))
            except (FileNotFoundError, NotADirectoryError):
                continue
        with contextlib.suppress(FileNotFoundError), os.scandir(self._tmp) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_mtime_ns < stale_ns:
                        os.unlink(entry.path)
        return files

    def _ensure_dir(self, directory: str) -> None:
        if directory not in self._made:
            self.make_directory()
            os.makedirs(directory, exist_ok=True)
            self._made.add(directory)


def open_cache(config: Config, max_bytes: int | None = None) -> BlobCache:
    """The cache ``config`` says (:func:`cache_directory`), bounded by ``max_bytes``
    (default: the ``cache_max_bytes`` setting, 10 GiB unless configured)."""
    return BlobCache(
        cache_directory(config), config.cache_max_bytes if max_bytes is None else max_bytes
    )


def cache_directory(config: Config) -> Path:
    """Where this process's download cache is: the ``cache_dir`` setting; else
    ``<home>/cache`` if the home is this process's own (its owner is our effective
    uid; before it exists, the nearest existing directory above it); else the user's
    own, ``$XDG_CACHE_HOME/artisync`` (``~/.cache/artisync``)."""
    if config.cache_dir is not None:
        return config.cache_dir
    if _owner_of(config.home) == os.geteuid():
        return config.home / "cache"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "artisync"


def _owner_of(path: Path) -> int:
    """The uid owning ``path``, or the nearest existing directory above it."""
    for candidate in (path, *path.absolute().parents):
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            return os.stat(candidate).st_uid
    return 0  # unreachable: "/" exists
