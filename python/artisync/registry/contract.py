"""The contract every registry backend keeps: its methods and its naming rules.

The daemon and ``artisync.Api`` are written against :class:`Registry`, not against
SQLite, so the PostgreSQL server backend can take the embedded one's place. Only
plain Python values and the records of ``registry.model`` cross this boundary, and
failures are ``artisync.errors`` types. The rules each method keeps are documented
on the SQLite implementation, ``artisync.registry.sqlite.SqliteRegistry``.

The functions below are the rules both backends share, so that they answer the same
question the same way: a reference after the colon of ``project/name:ref`` is a
version label (``v3``) or an alias (``best``, ``latest``); which aliases a caller
may set; which metadata, TTL and store values are accepted (refused the same way
whatever the database would store); that a distributed version's parts and finish are
in one store; and the wording of "not found" messages that list what does exist or say
when a version was deleted. The rules for what a run keeps beside its artifacts (tags,
notes, sweep, history) and for sweeps are ``registry.run_rules``'.
"""

from __future__ import annotations

import abc
import enum
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Protocol, Self, runtime_checkable

from artisync.errors import InvalidInputError, TypeConflictError
from artisync.registry.model import (
    LATEST,
    Collection,
    CommitResult,
    NewPart,
    NewVersion,
    Part,
    Project,
    Run,
    Sweep,
    Version,
)

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_LISTED",
    "UNSET",
    "Closing",
    "Registry",
    "Unset",
    "check_store",
    "check_ttl",
    "describe_collections",
    "describe_deleted",
    "describe_versions",
    "json_depth",
    "latest_refused",
    "parse_version_label",
    "refuse_mixed_stores",
    "to_json",
    "type_conflict",
    "user_aliases",
    "when_deleted",
]


MAX_JSON_DEPTH: Final = 100
"""How deeply a config, summary or metadata value may nest, wherever a caller sends one
(the daemon's socket, the server's API): bounds the recursion encoding it costs, far
beyond what a real config uses."""


def json_depth(value: object) -> int:
    """How deeply ``value`` (parsed JSON) nests; stops counting past
    :data:`MAX_JSON_DEPTH`. Iterative: a hostile body must not make the check itself
    recurse too deeply."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level > MAX_JSON_DEPTH:
                break
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


class Closing(abc.ABC):
    """``with`` closes it: the context manager of every backend, written once; each
    backend says what closing is."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release what the backend holds (connections, files)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Unset(enum.Enum):
    """The type of :data:`UNSET`."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset.UNSET
"""The default of ``update_version``'s arguments: "leave this field as it is".

None cannot say that, because None is a value those fields take (no TTL, no
description).
"""


@runtime_checkable
class Registry(Protocol):
    """Projects, runs, artifact versions, aliases and lineage: what a backend provides."""

    def close(self) -> None:
        """Release the backend's connections."""

    def ensure_run(
        self,
        project: str,
        entity: str | None,
        run_id: str,
        *,
        name: str | None = None,
        job_type: str | None = None,
        group: str | None = None,
        config: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
        notes: str | None = None,
        sweep: str | None = None,
    ) -> Run:
        """Create the run if new, else update the fields given; return it."""

    def get_run(self, project: str, run_id: str, entity: str | None = None) -> Run:
        """One run of a project."""

    def find_run(self, project: str, run_id: str, entity: str | None = None) -> Run | None:
        """One run of a project, or None if there is none."""

    def set_run_summary(
        self,
        project: str,
        run_id: str,
        summary: Mapping[str, Any],
        entity: str | None = None,
    ) -> Run:
        """Replace a run's summary."""

    def set_run_state(
        self, project: str, run_id: str, state: str, entity: str | None = None
    ) -> Run:
        """Set a run's state (``running``, ``finished``, ``crashed``)."""

    def list_runs(self, project: str, entity: str | None = None) -> list[Run]:
        """A project's runs, oldest first."""

    def append_history(
        self,
        project: str,
        run_id: str,
        rows: Sequence[Mapping[str, Any]],
        entity: str | None = None,
    ) -> None:
        """Store history rows of a run; a row whose ``_step`` is stored replaces it."""

    def run_history(
        self, project: str, run_id: str, entity: str | None = None
    ) -> list[dict[str, Any]]:
        """A run's history rows, by ``_step``."""

    def create_sweep(
        self,
        project: str,
        sweep_id: str,
        config: Mapping[str, Any],
        entity: str | None = None,
    ) -> Sweep:
        """Create a sweep, or return it when it exists with the same config."""

    def get_sweep(self, project: str, sweep_id: str, entity: str | None = None) -> Sweep:
        """One sweep of a project."""

    def commit_version(self, version: NewVersion) -> CommitResult:
        """Commit a submission's version atomically and idempotently."""

    def submission_result(self, submission_id: str) -> CommitResult | None:
        """What committing a submission produced (maybe deleted since), or None."""

    def link_version(
        self,
        version_id: str,
        *,
        project: str,
        name: str,
        entity: str | None = None,
        aliases: Sequence[str] = (),
        submission_id: str,
    ) -> CommitResult:
        """Link a live version into ``entity/project/name`` (``registry.linking``)."""

    def add_part(self, part: NewPart) -> None:
        """Record a part of a distributed version, idempotently."""

    def list_parts(
        self, project: str, name: str, distributed_id: str, entity: str | None = None
    ) -> list[Part]:
        """The pending parts of a distributed version, in the order they were added."""

    def get_version(
        self, project: str, name: str, alias_or_version: str, entity: str | None = None
    ) -> Version:
        """A version by alias or ``vN`` label."""

    def get_version_by_id(self, version_id: str) -> Version:
        """A version by id."""

    def list_versions(self, project: str, name: str, entity: str | None = None) -> list[Version]:
        """A collection's committed versions, by index."""

    def list_projects(self) -> list[Project]:
        """Every project with an artifact or a run, by entity and name."""

    def list_collections(
        self, project: str, type: str | None = None, entity: str | None = None
    ) -> list[Collection]:
        """A project's artifact collections, by name."""

    def set_aliases(self, version_id: str, aliases: Sequence[str]) -> Version:
        """Replace a version's user aliases, moving them from other versions."""

    def update_version(
        self,
        version_id: str,
        *,
        description: str | Unset | None = UNSET,
        metadata: Mapping[str, Any] | Unset = UNSET,
        ttl_seconds: float | Unset | None = UNSET,
    ) -> Version:
        """Change a version's description, metadata or TTL; what is left out stays."""

    def delete_version(self, version_id: str, *, delete_aliases: bool = False) -> Version:
        """Delete a version (its number stays taken); return its tombstone."""

    def expired_versions(self, now: float, limit: int = 1000) -> list[Version]:
        """Live versions whose TTL ran out at or before ``now``."""

    def live_manifest_keys(self) -> set[str]:
        """Manifest keys of live versions and pending parts (what GC must keep)."""

    def record_use(
        self,
        run_id: str,
        version_id: str,
        *,
        project: str | None = None,
        entity: str | None = None,
    ) -> None:
        """Record that a run used a version."""

    def produced_by(self, version_id: str) -> Run | None:
        """The run that created a version."""

    def writers(self, version_id: str) -> list[Run]:
        """Every run that logged a version: its creator, part writers, re-loggers."""

    def used_by(self, version_id: str) -> list[Run]:
        """The runs that used a version."""

    def logged_by_run(
        self, run_id: str, *, project: str | None = None, entity: str | None = None
    ) -> list[Version]:
        """The versions a run logged."""

    def used_by_run(
        self, run_id: str, *, project: str | None = None, entity: str | None = None
    ) -> list[Version]:
        """The versions a run used."""


_VERSION_LABEL = re.compile(r"v(0|[1-9][0-9]*)")

MAX_LISTED = 20
"""How many names a "not found" message lists before it says how many more exist."""


def parse_version_label(ref: str) -> int | None:
    """The index ``N`` when ``ref`` is a version label ``vN``, else None (an alias)."""
    match = _VERSION_LABEL.fullmatch(ref)
    return int(match.group(1)) if match else None


def user_aliases(aliases: Iterable[str], *, artifact: str) -> list[str]:
    """The aliases a caller asked for that the registry must store, in order, once each.

    ``latest`` is dropped: the registry moves it itself to the highest version, and
    W&B clients pass it with every ``log_artifact``, so asking for it is a no-op
    rather than an error. An alias shaped like a version label (``v3``) is refused,
    because ``name:v3`` must always mean version 3 and the alias could never be
    reached. Other syntax (``/``, ``:``) is checked by the caller before it gets here.
    """
    kept: list[str] = []
    for alias in aliases:
        if alias == LATEST or alias in kept:
            continue
        if parse_version_label(alias) is not None:
            raise InvalidInputError(
                f"alias {alias!r} of artifact {artifact!r} looks like a version label; "
                f"'{artifact}:{alias}' always means version {alias}, so pick another alias "
                "(for example 'step-3' or 'best')"
            )
        kept.append(alias)
    return kept


def latest_refused(label: str) -> InvalidInputError:
    """The refusal of putting ``latest`` on version ``label`` (``name:vN``) by hand."""
    return InvalidInputError(
        f"cannot put alias 'latest' on {label}: 'latest' moves by itself to the version "
        "logged last (a new version, or the one whose content was logged again); use "
        "another alias (for example 'best' or 'production')"
    )


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:MAX_LISTED])
    more = len(names) - MAX_LISTED
    return f"{shown} and {more} more" if more > 0 else shown


def describe_versions(
    artifact: str,
    ref: str,
    indexes: Sequence[int],
    aliases: Sequence[str],
    *,
    had_versions: bool = False,
) -> str:
    """The message for a missing version or alias, listing what the collection has.

    ``indexes`` (the live versions) must be sorted. With 100,000 versions the message
    shows the range and the count, not every label. ``had_versions`` says that the
    collection had versions, all deleted since.
    """
    if not indexes and had_versions:
        return (
            f"artifact {artifact!r} has no versions left (all were deleted), "
            f"so {ref!r} does not exist"
        )
    if not indexes:
        return f"artifact {artifact!r} has no committed version yet, so {ref!r} does not exist"
    if len(indexes) == indexes[-1] - indexes[0] + 1:
        versions = f"v{indexes[0]}" + (f" to v{indexes[-1]}" if len(indexes) > 1 else "")
    else:
        versions = _listing([f"v{i}" for i in indexes])
    listed = _listing(sorted({*aliases, LATEST}))
    return (
        f"artifact {artifact!r} has no version or alias {ref!r}; "
        f"it has {len(indexes)} version(s): {versions}; aliases: {listed}"
    )


def describe_collections(project: str, name: str, collections: Sequence[tuple[str, str]]) -> str:
    """The message for a missing artifact name, listing the project's ``(name, type)``s."""
    if not collections:
        return f"artifact {name!r} not found: project {project!r} has no artifacts yet"
    listed = _listing([f"{n} ({t})" for n, t in collections])
    return f"artifact {name!r} not found in project {project!r}; it has: {listed}"


def type_conflict(project: str, name: str, existing: str, wanted: str) -> TypeConflictError:
    """The refusal of logging artifact ``name`` with type ``wanted`` when the project
    (``entity/project``) has it with type ``existing``: the same words from every
    backend's commit and from the SDK's early check at ``log_artifact``."""
    return TypeConflictError(
        f"artifact {name!r} already exists in project {project!r} with type {existing!r}, "
        f"so it cannot be logged with type {wanted!r}; an artifact name has one type per "
        "project: use the same type or another name"
    )


def to_json(value: Mapping[str, Any], *, what: str) -> str:
    """``value`` as JSON text, or :class:`InvalidInputError` naming ``what`` it was."""
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"{what} must be a mapping, got {type(value).__name__}")
    try:
        # allow_nan=False: NaN is not JSON, and the PostgreSQL backend's jsonb would
        # refuse it later; better to refuse it the same way everywhere.
        return json.dumps(dict(value), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"{what} must hold only JSON values (str, int, float, bool, None, lists, dicts "
            f"with str keys; no NaN or infinity): {exc}"
        ) from exc


def check_ttl(ttl_seconds: float | None, *, what: str) -> float | None:
    """``ttl_seconds`` as a float (None: no TTL), or :class:`InvalidInputError`."""
    if ttl_seconds is None:
        return None
    if (
        isinstance(ttl_seconds, bool)
        or not isinstance(ttl_seconds, int | float)
        or not math.isfinite(ttl_seconds)
        or ttl_seconds <= 0
    ):
        raise InvalidInputError(
            f"ttl of {what} must be a positive number of seconds, or None to keep the "
            f"version until it is deleted; got {ttl_seconds!r}"
        )
    return float(ttl_seconds)


def describe_deleted(version_id: str, label: str, deleted_at: float | None) -> str:
    """The message for a read or edit of a deleted version ``label`` (``name:vN``)."""
    return (
        f"artifact version {label} (id {version_id!r}) was deleted{when_deleted(deleted_at)}; "
        "nothing can be read from it or changed on it any more, and its version number is "
        "not reused"
    )


def when_deleted(deleted_at: float | None) -> str:
    """`` at 2024-05-01 10:42:07 UTC`` for a deletion time, or nothing when unknown."""
    if deleted_at is None:
        return ""
    return " at " + datetime.fromtimestamp(deleted_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# "scheme://": a path may contain ':' ("/data/a:b"), but never this.
_STORE_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://.")


def check_store(store: str | None, *, what: str) -> str | None:
    """``store`` if a version or part may record it (None: not recorded), else
    :class:`InvalidInputError` naming ``what`` it was for.

    A store is recorded so that readers on other nodes find the content, so it must mean
    the same place on every node: a URL (``s3://bucket/prefix``, ``gs://bucket/prefix``,
    ``file:///path``) or an absolute path. A relative path would mean a directory under
    each reader's own home, so it is refused rather than recorded.
    """
    if store is None:
        return None
    if not isinstance(store, str) or not (_STORE_SCHEME.match(store) or store.startswith("/")):
        raise InvalidInputError(
            f"the store of {what} must be a URL (s3://bucket/prefix, gs://bucket/prefix, "
            f"file:///path) or an absolute path, the same place for every node; got {store!r}"
        )
    return store


def refuse_mixed_stores(
    artifact: str,
    distributed_id: str,
    store: str | None,
    parts: Iterable[tuple[str, str | None]],
    *,
    doing: str,
) -> None:
    """Refuse (:class:`TypeConflictError`) a part or finish of a distributed version in
    ``store`` when one of its pending ``parts`` (``(submission id, store)``) is in another.

    A version records one store, and its merged manifest names every part's content, so
    all of it must be there. ``doing`` says what was refused ("add a part",
    "finish it"). A part or a finish that recorded no store (None: written by an artisync
    that did not record stores) is taken to be in the same store.
    """
    if store is None:
        return
    for submission_id, part_store in parts:
        if part_store is not None and part_store != store:
            raise TypeConflictError(
                f"cannot {doing} in store {store!r}: distributed version {distributed_id!r} "
                f"of artifact {artifact!r} has its part {submission_id} in store "
                f"{part_store!r}, and a version's content must all be in one store; write "
                f"every part and the finish from nodes whose store is {part_store!r}"
            )
