"""Riding out a registry server that is briefly away, where a training script must not
fail for it: recording the run at ``init`` and ``finish``, and reading back a version the
daemon committed (``wait``). Reads a person asks for (``Api``) fail at once instead.

W&B's ``init`` waits for its server in the same way (its ``init_timeout``); the embedded
SQLite registry is never away, so this matters only with ``registry = "https://…"``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Final, TypeVar

from artisync.errors import RegistryUnavailableError

__all__ = ["RUN_PATIENCE", "patiently"]

T = TypeVar("T")

RUN_PATIENCE: Final = 90.0
"""Seconds ``init`` and ``finish`` wait for the registry server, as W&B's init does."""

_FIRST_PAUSE: Final = 0.1
_LONGEST_PAUSE: Final = 5.0


def patiently(call: Callable[[], T], *, seconds: float | None, what: str) -> T:
    """``call()``, again after a growing pause while the registry server is unreachable,
    for up to ``seconds`` (None: as long as it takes); then its error, naming ``what``.

    Warns once when it starts waiting, so a script that stalls says why.
    """
    deadline = None if seconds is None else time.monotonic() + seconds
    pause, warned = _FIRST_PAUSE, False
    while True:
        try:
            return call()
        except RegistryUnavailableError as e:
            if deadline is not None and time.monotonic() + pause > deadline:
                raise RegistryUnavailableError(f"{what}: {e}") from None
            if not warned:
                warned = True
                warnings.warn(f"{what} waits for the registry: {e}", stacklevel=3)
            time.sleep(pause)
            pause = min(pause * 2, _LONGEST_PAUSE)
