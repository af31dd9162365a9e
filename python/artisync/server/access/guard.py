"""The checks route operations make before they touch the registry, for one caller.

A :class:`Guard` rides in every :class:`~artisync.server.routes.Call`; operations call
it on their worker thread (its lookups may ask the database). What a caller may not see
answers exactly as what does not exist: the same 404 and message, or the same empty
listing, so nothing tells a hidden project from an absent one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, NoReturn, TypeVar

from artisync.errors import ForbiddenError, NotFoundError
from artisync.server.access.gate import Gate
from artisync.server.access.policy import Action, Verdict, decide
from artisync.server.caller import Caller

__all__ = ["Guard"]

T = TypeVar("T")

_NEW_PROJECT: Final = "private"
"""The visibility a project not yet created is judged by: what it will get."""


class Guard:
    """What ``caller`` may do, asked of ``gate``."""

    def __init__(self, gate: Gate, caller: Caller) -> None:
        self.gate = gate
        self.caller = caller

    def verdict(self, entity: str, project: str, action: Action) -> Verdict:
        """The verdict for ``action`` on ``entity/project``."""
        visibility = self.gate.visibility(entity, project) or _NEW_PROJECT
        return decide(
            self.caller.role_in(entity), visibility, action, site_admin=self.caller.site_admin
        )

    def allowed_from_cache(self, entity: str, project: str, action: Action) -> bool:
        """True when the cache alone says the caller may ``action`` the project (the
        event loop's fast path); False means "ask :meth:`require`", not "refused"."""
        visibility = self.gate.cached_visibility(entity, project)
        if visibility is None:
            return False
        verdict = decide(
            self.caller.role_in(entity), visibility, action, site_admin=self.caller.site_admin
        )
        return verdict is Verdict.ALLOW

    def can_read(self, entity: str, project: str) -> bool:
        """Whether the caller may see ``entity/project``."""
        return self.verdict(entity, project, Action.READ) is Verdict.ALLOW

    def require(self, entity: str, project: str, action: Action, absent: Callable[[], T]) -> None:
        """Return if the caller may ``action`` ``entity/project``; if they may not see it,
        raise what ``absent()`` raises (what the route answers for a project that does not
        exist); if they may see it but not do this, :class:`ForbiddenError`."""
        verdict = self.verdict(entity, project, action)
        if verdict is Verdict.HIDE:
            absent()
            raise NotFoundError(f"no project {entity}/{project}")
        if verdict is Verdict.FORBID:
            raise ForbiddenError(self._forbidden(entity, project, action))

    def site_admin(self, doing: str) -> None:
        """Refuse (403) unless the caller is a site admin: server-wide operations."""
        if not self.caller.site_admin:
            raise ForbiddenError(
                f"{doing} spans every project of the server: only a site admin may; "
                f"{self.caller} is not one"
            )

    def version(self, version_id: str, action: Action) -> None:
        """Return if the caller may ``action`` the version's project (live or deleted:
        the registry then answers as it does); one they may not see is "no artifact
        version with that id", as an unknown one."""
        place = self.gate.version_place(version_id)
        if place is None:
            _no_version(version_id)
        else:
            self.require(*place, action, lambda: _no_version(version_id))

    def readable(self, items: Sequence[T], where: Callable[[T], tuple[str, str]]) -> list[T]:
        """The items whose project (``where(item)``: entity, project) the caller may see."""
        seen: dict[tuple[str, str], bool] = {}
        kept = []
        for item in items:
            place = where(item)
            if place not in seen:
                seen[place] = self.can_read(*place)
            if seen[place]:
                kept.append(item)
        return kept

    def masked(
        self, items: Sequence[T], where: Callable[[T], tuple[str, str]], hidden: Callable[[], T]
    ) -> list[T]:
        """The items, each one whose project the caller may not see replaced by
        ``hidden()`` (a lineage neighbour shown as there, but not by name)."""
        readable = set(map(id, self.readable(items, where)))
        return [item if id(item) in readable else hidden() for item in items]

    def _forbidden(self, entity: str, project: str, action: Action) -> str:
        role = self.caller.role_in(entity)
        who = f"{self.caller} ({role} of {entity})" if role else f"{self.caller} (not in {entity})"
        if action is Action.ADMINISTER:
            return (
                f"{who} may not change project {entity}/{project}'s visibility: only an "
                f"admin of team {entity} may"
            )
        return (
            f"{who} may read project {entity}/{project} but not write to it: ask an admin "
            f"of team {entity} for the member role"
        )


def _no_version(version_id: str) -> NoReturn:
    raise NotFoundError(f"no artifact version with id {version_id!r}")
