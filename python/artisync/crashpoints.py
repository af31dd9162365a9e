"""Named points where a test can kill the daemon with SIGKILL, to prove crash safety.

A test hook, not a setting: nothing a user configures. ``ARTISYNC_CRASH_AT=after_commit``
kills the process the first time it passes that point; ``after_commit:3`` the third
time. The pipeline (:mod:`artisync.daemon`) and the remote stores' part uploads
(:mod:`artisync.store`) both pass crash points, so the hook lives here, beside neither.

The variable is read once: when the daemon starts (:func:`arm`, which refuses a
malformed value there), or else at the first crash point passed; never at import, so
no value of it can break ``import artisync``. Unset (always, outside tests), a crash
point costs one comparison.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from artisync.errors import InvalidInputError

__all__ = ["ENV", "IMPORT_POINTS", "POINTS", "STORE_POINTS", "arm", "crash_point"]

ENV: Final = "ARTISYNC_CRASH_AT"

# In pipeline order; the exactly-once test kills the daemon at each of them in turn.
POINTS: Final = (
    "after_claim",
    "after_hash",
    "after_upload",
    "after_manifest",
    "after_commit",
    "after_receipt",
)

# Inside the remote stores' multipart uploads (between parts): tests of resuming use it.
STORE_POINTS: Final = ("after_part",)

# After each transaction of `artisync server import` (registry/importing/importer.py): tests
# of an import killed midway and run again use it.
IMPORT_POINTS: Final = ("after_import_step",)


@dataclass(slots=True)
class _Target:
    name: str  # "" when no crash is asked for: matches no point
    remaining: int


_target: _Target | None = None


def arm(environ: Mapping[str, str] | None = None) -> None:
    """Read ``ARTISYNC_CRASH_AT`` from ``environ`` (default: the process's) now.

    The daemon calls this as it starts, so that a malformed value stops it there with
    a clear error instead of surfacing in the middle of a submission.

    Raises :class:`InvalidInputError` naming the value and what is accepted.
    """
    _read(environ)


def crash_point(name: str) -> None:
    """Die here, as kill -9 would, if ``ARTISYNC_CRASH_AT`` asks for it."""
    target = _target if _target is not None else _read(None)
    if name != target.name:
        return
    target.remaining -= 1
    if target.remaining <= 0:
        os.kill(os.getpid(), signal.SIGKILL)


def _read(environ: Mapping[str, str] | None) -> _Target:
    global _target
    _target = _parse((os.environ if environ is None else environ).get(ENV, ""))
    return _target


def _parse(text: str) -> _Target:
    if not text:
        return _Target("", 0)
    name, colon, count = text.partition(":")
    known = (*POINTS, *STORE_POINTS, *IMPORT_POINTS)
    if name not in known:
        raise InvalidInputError(
            f"{ENV}={text!r}: unknown crash point {name!r}; known: {', '.join(known)} "
            "(a test hook: unset it outside tests)"
        )
    if not colon:
        return _Target(name, 1)
    if not (count.isascii() and count.isdigit()) or int(count) < 1:
        raise InvalidInputError(
            f"{ENV}={text!r}: the count after ':' must be a whole number of at least 1, "
            f"e.g. {ENV}={name}:3 to crash the third time"
        )
    return _Target(name, int(count))
