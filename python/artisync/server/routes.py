"""How the HTTP API's routes are declared: each a :class:`Route` whose handler reads a
:class:`Call` and returns the registry operation to run.

A handler does its checking on the event loop (the arguments are small and their checks
cheap) and returns a plain function of a :class:`~artisync.registry.contract.Registry`,
which the app runs on a worker thread holding one database connection, or, for a call
that joins others (a commit, in the next group commit), an :class:`Awaited` answer. The split keeps
each route a few lines and every route uniform: one place (``app.py``) reads bodies,
runs operations, encodes answers and turns errors into statuses. The caller rides in
the :class:`Call`, so access control can refuse a call before its operation runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from artisync.names import validate_entity
from artisync.registry import Registry
from artisync.server.access.guard import Guard
from artisync.server.arguments import Arguments
from artisync.server.caller import Caller
from artisync.server.commit_batch import CommitBatcher
from artisync.server.content import ContentCheck
from artisync.server.metrics import ServerMetrics

__all__ = ["API", "Awaited", "Call", "Handler", "Operation", "Route", "encode"]

API: Final = "/api/v1"
"""The prefix of every registry route: a later, incompatible API gets ``/api/v2``
beside it, so nodes of both ages can share one server while they are upgraded."""

Operation = Callable[[Registry], Any]
"""A registry call with its arguments bound, run on a worker thread."""


@dataclass(frozen=True, slots=True)
class Awaited:
    """An answer the app awaits on the event loop instead of running an operation."""

    answer: Coroutine[Any, Any, Any]


@dataclass(frozen=True, slots=True)
class Call:
    """One request, as a handler sees it: who sent it and what it carries."""

    caller: Caller
    # What the caller may do; operations ask it before they touch the registry.
    guard: Guard
    path: Arguments
    query: Arguments
    body: Arguments
    metrics: ServerMetrics
    # The server's group commit (one per process).
    commits: CommitBatcher
    # Runs an operation on a worker thread, for an Awaited answer that needs one.
    run: Callable[[Operation], Awaitable[Any]]
    # The server's store, when it has one: commits are checked against it.
    content: ContentCheck | None = None

    def entity(self) -> str:
        """The path's ``entity`` segment, checked (every backend's default is
        :data:`~artisync.registry.DEFAULT_ENTITY`, which clients send for "none")."""
        return self.path.name("entity", validate_entity)


Handler = Callable[[Call], Operation | Awaited]


@dataclass(frozen=True, slots=True)
class Route:
    """One operation of the API: a method, a path template, and its handler.

    ``summary`` is what the OpenAPI document says of it; ``body`` says whether it reads
    a JSON body (PUT, POST and PATCH routes do).
    """

    method: str
    path: str
    handler: Handler
    summary: str

    @property
    def body(self) -> bool:
        """Whether the route takes a JSON body."""
        return self.method in ("PUT", "POST", "PATCH")


def encode(result: object) -> Any:
    """A registry answer as JSON values: records by their ``to_json``, lists element by
    element, sets sorted (so an answer is the same bytes every time), mappings value by
    value (a route's own answer), None as null."""
    if result is None or isinstance(result, str | int | float | bool):
        return result
    if isinstance(result, set | frozenset):
        return sorted(result)
    if isinstance(result, Sequence):
        return [encode(item) for item in result]
    if isinstance(result, Mapping):
        return {str(key): encode(value) for key, value in result.items()}
    to_json: Callable[[], dict[str, Any]] | None = getattr(result, "to_json", None)
    if to_json is None:
        raise TypeError(f"no JSON form for a {type(result).__name__} answer")
    return to_json()
