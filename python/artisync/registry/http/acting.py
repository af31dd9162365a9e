"""Whose key a request to the server carries: :func:`acting_as`.

A daemon on a shared node commits each submission with its caller's key, not its own
(DESIGN.md, "Many nodes"). The key travels with the work as a context variable rather
than as an argument through every registry and store call: asyncio tasks and
``asyncio.to_thread`` copy the context, so a commit or an upload started under
``acting_as(key)`` sends that key wherever it goes, and work started outside sends the
client's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["acting_as", "acting_key"]

_ACTING: ContextVar[str | None] = ContextVar("artisync_acting_key", default=None)


@contextmanager
def acting_as(api_key: str | None) -> Iterator[None]:
    """Within the block, requests to the server carry ``api_key`` (None: the client's
    own key)."""
    token = _ACTING.set(api_key)
    try:
        yield
    finally:
        _ACTING.reset(token)


def acting_key() -> str | None:
    """The key set by the innermost :func:`acting_as`, or None."""
    return _ACTING.get()
