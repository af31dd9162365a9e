"""Which submission the running code works for, and the byte counters of its progress.

The daemon runs each submission in its own asyncio task and sets the submission here
(:func:`enter`). Context variables follow into the tasks that task starts and into
``asyncio.to_thread``, so code deep in the stack finds the submission without it being
passed through every signature: the log formatter adds ``sub=<id>`` to every line, and
hashing and upload loops add the bytes they get through to its counters.

For a store's upload loop (S3 parts, GCS chunks), one line after each piece is sent::

    tracking.bytes_stored(len(chunk))

and for a call into the Rust core that reads file bytes, ``progress=`` the counter::

    _core.hash_files(paths, progress=tracking.hash_progress())

Outside a submission (housekeeping, tests, the SDK) both do nothing.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass, field

from artisync import _core

__all__ = [
    "Tracked",
    "bytes_stored",
    "current",
    "enter",
    "hash_progress",
    "leave",
    "store_progress",
]


@dataclass(frozen=True, slots=True)
class Tracked:
    """A submission being worked on: its id and the counters of its progress.

    The counters are the core's atomic :class:`~artisync._core.Progress`, so Rust
    threads and Python threads add to them at once and readers see them move.
    """

    sub_id: str
    # Bytes (and files) the daemon hashed for it.
    hashed: _core.Progress = field(default_factory=_core.Progress)
    # Bytes (and files) it got into the store: uploaded, copied, or found there.
    stored: _core.Progress = field(default_factory=_core.Progress)


_current: ContextVar[Tracked | None] = ContextVar("artisync_submission", default=None)


def current() -> Tracked | None:
    """The submission the calling code works for, or ``None`` outside one."""
    return _current.get()


def enter(tracked: Tracked) -> Token[Tracked | None]:
    """Make ``tracked`` the current submission of this context (the caller's task and
    everything it starts from now on); :func:`leave` with the token undoes it."""
    return _current.set(tracked)


def leave(token: Token[Tracked | None]) -> None:
    """Undo the :func:`enter` that returned ``token``."""
    _current.reset(token)


def hash_progress() -> _core.Progress | None:
    """The counter to pass as ``progress=`` to core calls that hash for the current
    submission; ``None`` (count nothing) outside one."""
    tracked = _current.get()
    return None if tracked is None else tracked.hashed


def store_progress() -> _core.Progress | None:
    """The counter to pass as ``progress=`` to core calls that write the current
    submission's blobs into the store; ``None`` outside one."""
    tracked = _current.get()
    return None if tracked is None else tracked.stored


def bytes_stored(n: int, files: int = 0) -> None:
    """Count ``n`` more bytes (and ``files`` finished blobs) of the current submission
    as stored: call it from upload loops after each part or chunk is sent."""
    tracked = _current.get()
    if tracked is not None and n >= 0:
        tracked.stored.add(n, files)
