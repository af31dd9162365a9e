"""Who sent a request: the :class:`Caller` every route handler is given.

The ``_identify`` middleware of ``app.py`` finds it from the request's API key
(``access.gate``) before any route runs; a request without a valid key never reaches
a route (401). Handlers check what the caller may do (``access.checks``) before they
touch the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from aiohttp import web

__all__ = ["CALLER_KEY", "Caller"]


@dataclass(frozen=True, slots=True)
class Caller:
    """The user a request acts for, and their role in each team (entity) they are in."""

    user: str
    site_admin: bool = False
    roles: Mapping[str, str] = field(default_factory=dict)

    def role_in(self, entity: str) -> str | None:
        """The caller's role in the team ``entity`` (None: not a member)."""
        return self.roles.get(entity)

    def __str__(self) -> str:
        # What log lines show; never a key, only whose it is.
        return self.user


CALLER_KEY: Final = web.RequestKey("caller", Caller)
"""Where the middleware leaves the caller on the request."""
