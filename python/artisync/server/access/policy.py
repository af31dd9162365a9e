"""Who may do what to a project: W&B's FAQ, as one function.

A project is **private** (only its team's members reach it), **public** (every user
reads; only the team's admins and members create or change) or **open** (every user
reads and writes). A team's **viewer** reads but never writes; a **site admin** does
everything. A caller who may not read a project is told it does not exist (404, no
hint), one who may read but not do gets 403; with no valid key, 401 comes before any
of this (``identify``).

:func:`decide` is pure: the caller's roles and the project's visibility in, a verdict
out, so the ACL matrix test can hold it to a table written out by hand.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["ROLES", "VISIBILITIES", "Action", "Verdict", "decide"]

ROLES: Final = ("admin", "member", "viewer")
"""A member's role in a team, most rights first."""

VISIBILITIES: Final = ("private", "public", "open")
"""A project's visibility; new projects are private."""


class Action(enum.Enum):
    """What a request does to a project."""

    READ = "read"  # list, read versions and manifests, download, lineage
    WRITE = "write"  # log a version, aliases, metadata/description/TTL edits, delete, gc
    ADMINISTER = "administer"  # change the project's visibility


class Verdict(enum.Enum):
    """What the server answers."""

    ALLOW = 200
    HIDE = 404  # not even its existence is told
    FORBID = 403  # visible, but not this


def decide(role: str | None, visibility: str, action: Action, *, site_admin: bool) -> Verdict:
    """The verdict for a caller with ``role`` in the project's team (None: not a member)
    doing ``action`` on a project of ``visibility``."""
    if site_admin:
        return Verdict.ALLOW
    readable = role is not None or visibility in ("public", "open")
    if not readable:
        return Verdict.HIDE
    if action is Action.READ:
        return Verdict.ALLOW
    if action is Action.WRITE:
        writer = role in ("admin", "member") or visibility == "open"
        return Verdict.ALLOW if writer else Verdict.FORBID
    return Verdict.ALLOW if role == "admin" else Verdict.FORBID
