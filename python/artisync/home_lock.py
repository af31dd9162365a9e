"""The home's lock: one daemon (or one offline ``artisync gc``) per ``ARTISYNC_HOME``."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from artisync.errors import ArtisyncError

__all__ = ["DaemonAlreadyRunningError", "lock_holder", "lock_home", "locked_home", "pid_alive"]


class DaemonAlreadyRunningError(ArtisyncError):
    """Another daemon holds the home's lock."""


def lock_home(home: Path) -> int:
    """Take ``home/daemon.lock`` (writing our pid in it); returns the fd to close."""
    home.mkdir(parents=True, exist_ok=True)
    fd = os.open(home / "daemon.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        _take(fd)
    except BlockingIOError:
        holder = _pid_in(fd) or "unknown"
        os.close(fd)
        raise DaemonAlreadyRunningError(
            f"another artisync daemon (pid {holder}) is running on {home}; "
            f"stop it first (artisync --home {home} stop), or give this one another --home"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


# lock_holder() holds the lock shared for an instant; a daemon starting in that instant
# (one a client started, say) tries again for this long before it calls the home taken.
_READER_SECONDS = 1.0


def _take(fd: int) -> None:
    """Lock ``fd`` exclusively; BlockingIOError if a daemon holds it."""
    deadline = time.monotonic() + _READER_SECONDS
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline or pid_alive(_pid_in(fd)):
                raise
        time.sleep(0.01)


def pid_alive(pid: str) -> bool:
    """Whether the process ``pid`` (as text, as lock files hold it) runs, ours or not."""
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, and someone else's
    return True


@contextmanager
def locked_home(home: Path) -> Iterator[None]:
    fd = lock_home(home)
    try:
        yield
    finally:
        os.close(fd)


def lock_holder(home: Path) -> int | None:
    """The pid of the daemon that holds ``home``'s lock, or None when none does."""
    try:
        fd = os.open(home / "daemon.lock", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        # Held for an instant only: a daemon starting in that instant is told another
        # one runs, and can simply be started again.
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = _pid_in(fd)
            return int(text) if text.isdigit() else None
        return None  # we got it: nobody holds it (closing the fd lets it go)
    finally:
        os.close(fd)


def _pid_in(fd: int) -> str:
    """The pid the lock's holder wrote in it (as text; empty if none)."""
    return os.pread(fd, 32, 0).decode(errors="replace").strip()
