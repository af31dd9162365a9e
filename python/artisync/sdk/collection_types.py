"""The type an artifact name already has, checked when it is logged, not only at commit.

An artifact name has one type per project. The registry refuses a version of another
type when the daemon commits it, but by then ``log_artifact`` has long returned and
the refusal waits for ``wait()``; W&B asks its server at ``log_artifact`` and raises
there. So does :func:`refuse_type_conflict`, with the commit's own words.

It stays cheap: a collection's type never changes once it exists, so each type the
registry confirms is kept for the rest of the process and later logs of that name ask
nothing. A name the registry does not know yet is asked again next time (someone may
create it meanwhile). A registry that cannot be read (a server that is down, a file
not there yet) is no reason to fail a log: the daemon checks again when it commits.
"""

from __future__ import annotations

import os
import threading

from artisync.config import Config
from artisync.errors import ArtisyncError, NotFoundError
from artisync.registry.contract import type_conflict
from artisync.registry.model import DEFAULT_ENTITY, LATEST
from artisync.sdk.registry_access import registry_for

__all__ = ["refuse_type_conflict"]

_lock = threading.Lock()
# (registry, entity, project, name) -> the type the registry has for that name.
_known: dict[tuple[str, str, str, str], str] = {}


def _forget_after_fork() -> None:
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def refuse_type_conflict(
    settings: Config, entity: str | None, project: str, name: str, type_: str
) -> None:
    """Raise :class:`~artisync.errors.TypeConflictError` when the registry of
    ``settings`` has artifact ``name`` in ``entity/project`` with another type than
    ``type_``; return quietly when it has it with this type, does not have it, or cannot
    be asked."""
    owner = entity or DEFAULT_ENTITY
    where = settings.registry_server or str(settings.registry)
    key = (where, owner, project, name)
    with _lock:
        known = _known.get(key)
    if known is None:
        try:
            version = registry_for(settings).get_version(project, name, LATEST, entity=owner)
        except NotFoundError:
            return  # a new name (or one whose versions were all deleted): the commit decides
        except (ArtisyncError, OSError):
            return  # unreachable or unreadable: the daemon checks again at commit
        known = version.type
        with _lock:
            _known[key] = known
    if known != type_:
        raise type_conflict(f"{owner}/{project}", name, known, type_)
