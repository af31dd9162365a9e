"""What the socket API takes from a caller, checked before any of it reaches the daemon.

Every check answers the caller's mistake in its own words: which field, what was wrong
with it, what is accepted. The server turns an :class:`InvalidInputError` from here
into a 400; nothing a caller sends this way can become a 500, a glob, or a path. (The
grace of ``POST /v1/gc`` is checked by :func:`artisync.daemon.gc.check_grace_seconds`,
which the collection itself calls too.)
"""

from __future__ import annotations

from typing import Final

from artisync.errors import InvalidInputError
from artisync.spool import SUBMISSION_ID

__all__ = [
    "MAX_WAIT_SECONDS",
    "check_submission_id",
    "check_tmp_name",
    "check_wait",
]

# Ids are the spool's (SUBMISSION_ID): anything else is refused before it is joined to
# a spool path or matched against file names, where `*` or `..` would mean something.
_TMP_NAME_LENGTH: Final = 32 + len(".json")
# Long polls are capped so a forgotten client cannot hold a request forever; a longer
# wait is cut to this (the client asks again), a wait that is not a time is refused.
MAX_WAIT_SECONDS: Final = 300.0


def _shown(text: str) -> str:
    """``text`` quoted for an error message, cut short so an answer stays small."""
    return repr(text) if len(text) <= 40 else f"{text[:40]!r}... ({len(text)} characters)"


def check_submission_id(text: str) -> str:
    """``text`` if it is a submission id (32 lowercase hex digits), else
    :class:`InvalidInputError` saying so."""
    if not SUBMISSION_ID.fullmatch(text):
        raise InvalidInputError(
            f"submission id {_shown(text)} is not 32 lowercase hex digits; use the id "
            "the SDK gave the submission (Artifact.submission_id)"
        )
    return text


def check_tmp_name(value: object) -> str:
    """``value`` if it names a submission file in ``spool/tmp`` (``<id>.json``), else
    :class:`InvalidInputError` naming what is wrong with it."""
    if not isinstance(value, str):
        raise InvalidInputError(
            'missing "tmp": the name of the submission file in spool/tmp, "<id>.json"'
        )
    if "\0" in value:
        raise InvalidInputError(f'"tmp" {_shown(value)} contains a NUL byte; send "<id>.json"')
    if len(value) != _TMP_NAME_LENGTH:
        raise InvalidInputError(
            f'"tmp" {_shown(value)} is {len(value)} characters long; a submission file '
            f'name is {_TMP_NAME_LENGTH}: "<id>.json", the id 32 lowercase hex digits'
        )
    if not (value.endswith(".json") and SUBMISSION_ID.fullmatch(value[: -len(".json")])):
        raise InvalidInputError(
            f'"tmp" {_shown(value)} is not "<id>.json" with the id 32 lowercase hex digits'
        )
    return value


def check_wait(text: str) -> float:
    """The ``wait`` query parameter as seconds, cut to :data:`MAX_WAIT_SECONDS`; else
    :class:`InvalidInputError` naming the accepted range."""
    try:
        wait = float(text)
    except ValueError:
        wait = float("nan")
    # A range test, so NaN (every comparison false) fails it too.
    if not 0 <= wait < float("inf"):
        raise InvalidInputError(
            f"wait must be a finite number of seconds >= 0 (at most {MAX_WAIT_SECONDS:.0f} "
            f"are waited), not {_shown(text)}"
        )
    return min(wait, MAX_WAIT_SECONDS)
