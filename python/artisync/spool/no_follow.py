"""File operations in the spool that never follow a link the daemon did not make.

On a shared node the spool's folders are group-writable: any member of the daemon's
group may drop a symlink, a FIFO or a directory where a submission, a receipt or a
snapshot area is expected. Everything here works through a descriptor of the folder
opened with ``O_NOFOLLOW``, creates with ``O_EXCL | O_NOFOLLOW``, renames (a rename
replaces a symlink at the target instead of following it), reads only regular files
opened with ``O_NONBLOCK`` (opening a FIFO must not block the daemon), and removes a
symlink itself rather than what it points to.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from artisync.errors import InvalidInputError, SubmissionError

__all__ = [
    "check_folder",
    "create_durably",
    "describe_kind",
    "open_folder",
    "read_regular",
    "remove_entry",
    "rename_between",
]

# A folder is opened per operation (one open, no lstat race): cheap enough for every
# write, and a folder swapped for a symlink after the daemon started is still refused.
_FOLDER_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CREATE_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def describe_kind(mode: int) -> str | None:
    """``None`` for a regular file, else what the file is, in words (``"a FIFO"``)."""
    if stat.S_ISREG(mode):
        return None
    kinds = [
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ]
    return next((words for test, words in kinds if test(mode)), "not a regular file")


def _not_a_folder(path: Path, what: str) -> str:
    return (
        f"{path} is {what}, not one of the spool's own folders: the daemon never follows "
        "a link it did not make. Remove it (it is re-created as a directory) and start again"
    )


def check_folder(path: Path) -> None:
    """Make ``path`` a real directory if it is missing; refuse a symlink or anything else.

    Raises :class:`~artisync.errors.InvalidInputError` naming the path and the fix.
    """
    with contextlib.suppress(FileExistsError):
        os.mkdir(path)
    mode = os.lstat(path).st_mode
    if not stat.S_ISDIR(mode):
        raise InvalidInputError(_not_a_folder(path, describe_kind(mode) or "a regular file"))


@contextlib.contextmanager
def open_folder(path: Path) -> Iterator[int]:
    """A descriptor of the folder ``path``, refusing a symlink planted in its place."""
    try:
        fd = os.open(path, _FOLDER_FLAGS)
    except OSError as e:
        if e.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        raise OSError(e.errno, _not_a_folder(path, "a symbolic link or a file"), str(path)) from e
    try:
        yield fd
    finally:
        os.close(fd)


def create_durably(
    folder_fd: int, name: str, data: bytes, *, sync: bool = True, mode: int = 0o666
) -> None:
    """Create ``name`` in the folder with ``data`` and fsync it (unless ``sync`` is
    false), never through a link; ``mode`` as ``open`` takes it (the umask applies).

    A leftover of the same name (a crash while writing it, or something planted) is
    removed first: it was never a whole file, or never ours. On any failure the new
    file is removed again: half a file would pass for one being written, and its
    blocks are what a full disk needs back.
    """
    try:
        fd = os.open(name, _CREATE_FLAGS, mode, dir_fd=folder_fd)
    except FileExistsError:
        os.unlink(name, dir_fd=folder_fd)
        fd = os.open(name, _CREATE_FLAGS, mode, dir_fd=folder_fd)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=folder_fd)
        raise


def rename_between(source: Path, target: Path, *, sync: bool = True) -> None:
    """Rename ``source`` to ``target`` (replacing it), each looked up in its own folder
    without following a symlink planted in the folder's place; fsyncs the target
    folder unless ``sync`` is false.

    Raises ``FileNotFoundError`` if ``source`` is gone.
    """
    with open_folder(source.parent) as src_fd, open_folder(target.parent) as dst_fd:
        os.replace(source.name, target.name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
        if sync:
            os.fsync(dst_fd)


def remove_entry(folder: Path, name: str) -> None:
    """Remove ``folder/name`` whatever it is: a directory tree, or the file or symlink
    itself (never what a symlink points to). Missing is fine; so are errors inside a
    tree (cleanup must not fail the submission it cleans up after)."""
    with open_folder(folder) as fd:
        try:
            mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
        except FileNotFoundError:
            return
        if stat.S_ISDIR(mode):
            # With dir_fd, rmtree walks by descriptors and never follows a link inside.
            shutil.rmtree(name, ignore_errors=True, dir_fd=fd)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=fd)


def read_regular(path: Path, limit: int) -> tuple[bytes, os.stat_result]:
    """The bytes of ``path`` and its ``fstat``, if it is a regular file of at most
    ``limit`` bytes that is not a symlink.

    Raises :class:`~artisync.errors.SubmissionError` naming the path and what it is
    instead; ``OSError`` for a file that is gone or cannot be read.
    """
    # lstat first, so a device or a FIFO is not even opened (opening some devices acts).
    kind = describe_kind(os.lstat(path).st_mode)
    if kind is None:
        try:
            fd = os.open(path, _READ_FLAGS)
        except OSError as e:
            if e.errno != errno.ELOOP:
                raise
            kind = "a symbolic link"  # swapped in since the lstat
    if kind is not None:
        raise SubmissionError(_not_regular(path, kind))
    try:
        # The file opened may not be the one looked at: check what was opened.
        st = os.fstat(fd)
        if (kind := describe_kind(st.st_mode)) is not None:
            raise SubmissionError(_not_regular(path, kind))
        if st.st_size > limit:
            raise SubmissionError(_too_large(path, limit))
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, min(limit + 1 - size, 1 << 20) or 1):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:  # grew since the fstat
                raise SubmissionError(_too_large(path, limit))
        return b"".join(chunks), st
    finally:
        os.close(fd)


def _not_regular(path: Path, kind: str) -> str:
    return (
        f"{path.name} in {path.parent} is {kind}, not a regular file: only a file written "
        "by the SDK is read as a submission. Log the artifact again with the SDK"
    )


def _too_large(path: Path, limit: int) -> str:
    return (
        f"{path.name} in {path.parent} is larger than {limit // (1 << 20)} MiB, the most a "
        "submission file may hold (the SDK moves long entry lists out of it, into a "
        "staged list): log the artifact again with the SDK"
    )
