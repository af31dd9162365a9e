"""Who sent a request: the :class:`Caller` every route handler is given.

Today every request is anonymous: the server has no users yet. Access control (API keys,
teams, project visibility) fills the caller in from the request's key, in
:func:`identify`, and the handlers, which already receive a caller with every call,
check what it may do before they touch the registry. Nothing else has to change shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from aiohttp import web

__all__ = ["ANONYMOUS", "CALLER_KEY", "Caller", "identify"]


@dataclass(frozen=True, slots=True)
class Caller:
    """The user a request acts for; ``user`` None is anonymous (no key given)."""

    user: str | None = None

    @property
    def anonymous(self) -> bool:
        """Whether the request carried no identity."""
        return self.user is None

    def __str__(self) -> str:
        # What log lines show; never a key, only whose it is.
        return self.user or "anonymous"


ANONYMOUS: Final = Caller()
"""The caller of a request that names no user."""

CALLER_KEY: Final = web.RequestKey("caller", Caller)
"""Where :func:`identify` leaves the caller on the request."""


def identify(request: web.Request) -> Caller:
    """The caller of ``request``. Anonymous for now: an API key's owner later."""
    del request  # keys arrive with access control; until then no request names a user
    return ANONYMOUS
