"""Which project a store's writes are for: :func:`writing_for`.

A store reached through a server's grants (:mod:`artisync.store.granted`) must name the
project every upload is for: the server hands out grants only to a caller who may write
that project. The project travels with the work as a context variable rather than as an
argument through every store call, as the caller's key does
(:mod:`artisync.registry.http.acting`): the daemon sets it once per submission, and
every upload that submission's task starts (and ``asyncio.to_thread`` under it) finds
it. Other stores ignore it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import NamedTuple

__all__ = ["ProjectScope", "project_written", "writing_for"]


class ProjectScope(NamedTuple):
    """The project writes are for: its entity (None: the server's default) and name."""

    entity: str | None
    project: str

    def to_json(self) -> dict[str, str]:
        """The project as the server's API names it (no entity: the server's default)."""
        named = {"project": self.project}
        if self.entity is not None:
            named["entity"] = self.entity
        return named


_SCOPE: ContextVar[ProjectScope | None] = ContextVar("artisync_project_written", default=None)


@contextmanager
def writing_for(entity: str | None, project: str) -> Iterator[None]:
    """Within the block, the store's writes are for ``entity/project``."""
    token = _SCOPE.set(ProjectScope(entity, project))
    try:
        yield
    finally:
        _SCOPE.reset(token)


def project_written() -> ProjectScope | None:
    """The project set by the innermost :func:`writing_for`, or None."""
    return _SCOPE.get()
