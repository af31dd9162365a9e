"""Whose rights a submission is read with: the user who wrote its spool file.

A submission's file is created by its caller (in ``spool/tmp``, or ``spool/new`` when
the daemon is down) and keeps that owner through every rename the daemon makes, so
the owner of the claimed file is the caller, whichever way it came and across
restarts; the socket checks the same (``SO_PEERCRED``) when it accepts one.

The daemon's own user is trusted, as the single-user case always was: its snapshots
are taken by hard link and their digests believed. Anyone else's files are opened with
their rights (see ``rust/caller.rs``), copied rather than taken, and hashed before
their bytes are stored under a name: a digest from another user is a claim, not a fact.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from artisync import _core

__all__ = ["Caller", "CoreCaller", "caller_of", "cannot_act_as"]

CoreCaller = tuple[int, int, list[int]]
"""``(uid, gid, groups)``, as the core takes a caller."""

# The kernel's overflow group: what a uid with no passwd entry is given.
_NO_GROUP: Final = 65534


@dataclass(frozen=True, slots=True)
class Caller:
    """A user the daemon reads for."""

    uid: int
    gid: int
    groups: tuple[int, ...]
    name: str

    @property
    def trusted(self) -> bool:
        """The daemon's own user: its files are read, and its digests taken, as is."""
        return self.uid == os.geteuid()

    def for_core(self) -> CoreCaller | None:
        """What the core opens files as: ``None`` (its own rights) for the daemon's user."""
        return None if self.trusted else (self.uid, self.gid, list(self.groups))


@lru_cache(maxsize=256)
def caller_of(uid: int) -> Caller:
    """The caller with this uid, with its groups from the user database (a uid with no
    entry gets no group but the overflow one)."""
    try:
        entry = pwd.getpwuid(uid)
    except KeyError:
        return Caller(uid, _NO_GROUP, (), f"uid {uid}")
    groups = tuple(sorted(set(os.getgrouplist(entry.pw_name, entry.pw_gid))))
    return Caller(uid, entry.pw_gid, groups, entry.pw_name)


def cannot_act_as(caller: Caller) -> str | None:
    """Why this daemon cannot read files for ``caller``, or ``None`` if it can."""
    core = caller.for_core()
    if core is None or _core.can_act_as(core):
        return None
    me = _user_name(os.geteuid())
    return (
        f"this daemon runs as {me} without the capabilities to read files as "
        f"{caller.name} (CAP_SETUID and CAP_SETGID; the system unit grants them, see "
        f"docs/systemd.md), so it reads only {me}'s files: run the daemon as the system "
        "service, or a daemon of your own (the user unit)"
    )


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"
