"""The process's current run: the one the last ``artisync.init()`` started.

Kept apart from :mod:`artisync.sdk.run` so that what only needs to know the current run
(``Api()``'s defaults, where a draft snapshots its files, ``artifact.save()`` on a
draft) does not import the module that defines runs, which imports them in turn.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from artisync.config import Config

__all__ = ["ActiveRun", "active_config", "active_run", "forget", "make_current"]


class ActiveRun(Protocol):
    """What the rest of the SDK asks of the current run (a :class:`~artisync.sdk.run.Run`)."""

    @property
    def settings(self) -> Config:
        """The run's configuration (its home, spool, store)."""

    @property
    def project(self) -> str:
        """The run's project."""

    @property
    def entity(self) -> str | None:
        """The run's entity, if it has one."""

    def log_artifact(self, artifact_or_path: Any) -> Any:
        """Log an artifact in this run."""

    def finish(self, exit_code: int | None = None) -> None:
        """End the run (when another one replaces it)."""


_lock = threading.Lock()
_current: ActiveRun | None = None


def active_run() -> ActiveRun | None:
    """The run the last ``artisync.init()`` started, unless it has finished."""
    return _current


def active_config() -> Config:
    """The current run's configuration, or the default one (``ARTISYNC_HOME``)."""
    run = _current
    return run.settings if run is not None else Config.load()


def make_current(run: ActiveRun) -> ActiveRun | None:
    """Make ``run`` the current run; the one it replaces, if any."""
    global _current
    with _lock:
        previous, _current = _current, run
    return previous


def forget(run: ActiveRun) -> None:
    """``run`` has finished: no run is current any more, unless another one already is."""
    global _current
    with _lock:
        if _current is run:
            _current = None
