"""Reading a blob's source file for a remote store: checked, streamed, blamed correctly.

A remote store sends a file's bytes over HTTP from a file object the client library
reads in a worker thread. Two things must not get lost on the way:

- a problem with the *source* (gone, unreadable, changed since it was hashed) is the
  submission's fault: it must come out as an :class:`OSError` naming the file, although
  the HTTP client wraps whatever its body raises in its own connection error. A
  :class:`SourceRange` keeps the first error it raised in :attr:`SourceRange.error`,
  and the store re-raises that one instead of the client's.
- a file is never read whole into memory: a range is read in the client's chunks with
  ``pread``, so many parts of one file can be sent at once from one descriptor.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

from artisync.store.base import BlobItem, SourceChangedError

__all__ = ["SourceFile", "SourceRange", "open_file", "open_source"]


@dataclass(slots=True)
class SourceFile:
    """An open source file whose size (and mtime) still match what was hashed."""

    path: Path
    fd: int
    size: int
    mtime_ns: int

    def close(self) -> None:
        os.close(self.fd)

    def read(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` (blocking); a short read means the file shrank."""
        data = os.pread(self.fd, length, offset)
        if len(data) != length:
            raise _shrunk(self.path, self.size, offset + len(data))
        return data

    def check_unchanged(self) -> None:
        """Raise :class:`SourceChangedError` if the file's size or mtime moved since
        it was opened (blocking): called once its bytes have been sent."""
        st = os.fstat(self.fd)
        if st.st_size != self.size:
            raise SourceChangedError(self.path, self.size, st.st_size)
        if st.st_mtime_ns != self.mtime_ns:
            raise SourceChangedError(
                self.path, self.size, st.st_size, "it was modified while it was uploaded"
            )


def open_source(item: BlobItem) -> SourceFile:
    """Open ``item.source`` and check it against what the caller hashed (blocking).

    Raises the :class:`OSError` of the open (``FileNotFoundError``, ...) with the path
    as ``filename``, or :class:`SourceChangedError`.
    """
    fd = os.open(item.source, os.O_RDONLY | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if item.size is not None and st.st_size != item.size:
            raise SourceChangedError(item.source, item.size, st.st_size)
        if item.mtime_ns is not None and st.st_mtime_ns != item.mtime_ns:
            raise SourceChangedError(
                item.source, st.st_size, st.st_size, "it was modified after it was hashed"
            )
    except BaseException:
        os.close(fd)
        raise
    return SourceFile(Path(item.source), fd, st.st_size, st.st_mtime_ns)


def open_file(path: str | Path) -> SourceFile:
    """Open a file of the daemon's own, such as a manifest written to scratch (blocking):
    nothing hashed to check it against."""
    return open_source(BlobItem("", path, None))


def _shrunk(path: Path, expected: int, actual: int) -> SourceChangedError:
    return SourceChangedError(path, expected, actual, "it got shorter while it was uploaded")


class SourceRange(io.RawIOBase):
    """``length`` bytes of a :class:`SourceFile` from ``offset``, as a seekable stream.

    It has a length (``len()``) but no ``fileno``, so HTTP clients take the request's
    Content-Length from it rather than from the whole file's ``fstat``. Reading does
    not move the file's offset, so ranges of one file can be read concurrently.
    """

    def __init__(self, source: SourceFile, offset: int, length: int) -> None:
        super().__init__()
        self.source = source
        self.offset = offset
        self.length = length
        self.error: OSError | None = None
        self._pos = 0

    def __len__(self) -> int:
        return self.length

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.length}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        left = self.length - self._pos
        n = left if size is None or size < 0 else min(size, left)
        if n <= 0:
            return b""
        try:
            data = self.source.read(self.offset + self._pos, n)
        except OSError as e:
            if e.filename is None:
                e.filename = str(self.source.path)
            self.error = self.error or e
            raise
        self._pos += n
        return data

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
