"""The artifacts this process logged that are not committed yet.

``use_artifact("model:latest")`` right after ``log_artifact(model)`` in the same process
means the version just logged, as in W&B: it waits for the versions of that collection
still in flight before it resolves the name. A rejection is not raised here (``wait()``
and ``finish()`` raise it); the name then resolves to what is committed.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Protocol

from artisync.errors import ArtisyncError

__all__ = ["logged", "settle"]


class Waitable(Protocol):
    @property
    def name(self) -> str: ...

    def _settled(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> object: ...


_lock = threading.Lock()
_pending: list[tuple[str | None, str, Waitable]] = []


def logged(artifact: Waitable, *, entity: str | None, project: str) -> None:
    """``artifact`` was handed to the daemon for ``entity/project``."""
    with _lock:
        _pending[:] = [p for p in _pending if not p[2]._settled()]
        _pending.append((entity, project, artifact))


def settle(name: str, *, entity: str | None, project: str) -> None:
    """Wait for this process's in-flight versions of ``entity/project/name``."""
    with _lock:
        waiting = [
            a
            for e, p, a in _pending
            if p == project and a.name == name and (e == entity or None in (e, entity))
        ]
    for artifact in waiting:
        # A rejection is raised by wait()/finish(); here the name resolves to what committed.
        with contextlib.suppress(ArtisyncError):
            artifact.wait()
    with _lock:
        _pending[:] = [p for p in _pending if not p[2]._settled()]
