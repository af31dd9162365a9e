"""The plain records the registry hands out: projects, runs, sweeps, collections and
versions.

These are what every registry backend returns (the embedded SQLite one today, a
PostgreSQL server later), so they hold only Python values: no rows, cursors or ids
that mean something to one database only. They are frozen snapshots; changing the
registry goes through its methods, never through these objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, Final, TypeVar

from artisync.errors import RegistryError

__all__ = [
    "COMMITTED",
    "DEFAULT_ENTITY",
    "DELETED",
    "LATEST",
    "RUN_STATES",
    "Collection",
    "CommitResult",
    "NewPart",
    "NewVersion",
    "Part",
    "Project",
    "Run",
    "Sweep",
    "Version",
    "hidden_run",
    "hidden_version",
]

_Record = TypeVar("_Record")

_ADDED_STORE: Final = frozenset({"store"})
"""The fields of :class:`Version` and :class:`Part` that answers of a server older than
stores being recorded lack (they decode with ``store=None``)."""

_ADDED_HIDDEN: Final = frozenset({"hidden"})
"""Left out of a record's JSON unless true (only a server's lineage answers carry it),
so every other answer reads as it did before."""

_ADDED_RUN_FIELDS: Final = frozenset({"tags", "notes", "sweep"})
"""The fields of :class:`Run` that answers of a server or daemon older than runs keeping
W&B's tags, notes and sweep lack (they decode as no tags, no notes, no sweep)."""


def _from_json(
    cls: type[_Record],
    data: object,
    *,
    every_field: bool = True,
    added: frozenset[str] = frozenset(),
    error: type[Exception] = RegistryError,
) -> _Record:
    """The record ``cls`` from what its ``to_json`` gave, or ``error`` naming the first
    missing or unknown field.

    Records the registry answers must carry ``every_field`` (one that lacks some comes
    from another artisync version), except the fields in ``added``: fields added to the
    record since the first HTTP API, which an answer of an older server lacks, and which
    then keep their defaults. Records sent to the registry (:class:`NewVersion`,
    :class:`NewPart`) may leave out the fields that have defaults. The values' types are
    the sender's to get right: the server checks each field before it builds one.
    """
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    if not isinstance(data, dict):
        raise error(f"a {cls.__name__} must be a JSON object, got {type(data).__name__}")
    required = [
        name
        for name, f in known.items()
        if (every_field and name not in added)
        or (f.default is MISSING and f.default_factory is MISSING)
    ]
    if missing := [n for n in required if n not in data]:
        raise error(f"a {cls.__name__} lacks {', '.join(missing)}")
    if unknown := sorted(set(data) - set(known)):
        raise error(
            f"a {cls.__name__} has unknown fields {', '.join(unknown)}; it has "
            f"{', '.join(known)} (is the other side another artisync version?)"
        )
    return cls(**data)


DEFAULT_ENTITY = "local"
"""The entity a project belongs to when the caller gives none.

W&B always has an entity (a user or team); a self-hosted node has no accounts, so
projects logged without one live under this explicit name rather than under NULL,
which keeps ``(entity, project)`` a plain unique key in every backend.
"""

LATEST = "latest"
"""The alias the registry maintains itself: it names the version logged last, which is
the highest one unless content logged again was an older version's (W&B's rule)."""

COMMITTED = "COMMITTED"
"""The state of a version whose content is all in the store: the only state reads show."""

DELETED = "DELETED"
"""The state of a deleted version's tombstone.

A deleted version keeps its row so that its number is never given out again and so
that committing its submission again (daemon crash recovery) finds it and does not
bring it back. Only ``delete_version`` and ``submission_result`` return tombstones.
"""

RUN_STATES = ("running", "finished", "crashed")
"""The states a run can be in: ``running`` from ``artisync.init`` until ``finish()``,
then ``finished``, or ``crashed`` when it finished with a non-zero exit code."""


@dataclass(frozen=True, slots=True)
class Project:
    """A project: the namespace that artifact names and run ids live in."""

    entity: str
    name: str
    created_at: float

    def to_json(self) -> dict[str, Any]:
        """The project as a JSON object (what the registry's HTTP API answers)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: object) -> Project:
        """The project that :meth:`to_json` gave; ``RegistryError`` if fields are off."""
        return _from_json(cls, data)


@dataclass(frozen=True, slots=True)
class Run:
    """A training run, as far as lineage needs it.

    ``id`` is the run id the SDK chose (W&B's ``run.id``); ``group`` and
    ``job_type`` follow ``artisync.init``; ``config`` is the run's config mapping and
    ``summary`` its summary (W&B's ``run.summary``: the last value of each metric).
    ``state`` is one of :data:`RUN_STATES`. ``updated_at`` is when the run's record
    last changed (its fields, summary, state or history, or a version it logged).
    ``tags`` and ``notes`` are W&B's ``run.tags`` (in the order given, each once) and
    ``run.notes``; ``sweep`` is the id of the sweep the run is a trial of. ``hidden``
    marks a lineage neighbour in a project the caller may not see (:func:`hidden_run`):
    it says a run is there, and nothing else.
    """

    id: str
    project: str
    entity: str
    name: str | None
    job_type: str | None
    group: str | None
    config: dict[str, Any]
    created_at: float
    summary: dict[str, Any] = field(default_factory=dict)
    state: str = "running"
    updated_at: float = 0.0
    tags: list[str] = field(default_factory=list)
    notes: str | None = None
    sweep: str | None = None
    hidden: bool = False

    def to_json(self) -> dict[str, Any]:
        """The run as a JSON object (what the daemon's registry routes answer)."""
        return _without_visible(asdict(self))

    @classmethod
    def from_json(cls, data: object) -> Run:
        """The run that :meth:`to_json` gave; ``RegistryError`` if fields are off.
        ``tags``, ``notes`` and ``sweep`` may be absent (an older server's answer)."""
        return _from_json(cls, data, added=_ADDED_HIDDEN | _ADDED_RUN_FIELDS)


@dataclass(frozen=True, slots=True)
class Sweep:
    """A hyperparameter sweep (W&B's ``wandb.sweep``): its id in the project and its
    sweep config (``method``, ``metric``, ``parameters``...), stored as given.

    Its runs are the project's runs whose :attr:`Run.sweep` is this ``id``. ``state``
    is W&B's sweep state (``RUNNING`` when created).
    """

    id: str
    project: str
    entity: str
    config: dict[str, Any]
    created_at: float
    state: str = "RUNNING"

    def to_json(self) -> dict[str, Any]:
        """The sweep as a JSON object (what the registry's HTTP API answers)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: object) -> Sweep:
        """The sweep that :meth:`to_json` gave; ``RegistryError`` if fields are off."""
        return _from_json(cls, data)


@dataclass(frozen=True, slots=True)
class Collection:
    """An artifact name in a project, with the one type that name has there.

    ``version_count`` counts committed versions; version numbers are never reused,
    so it can be lower than the next index once versions can be deleted.
    """

    project: str
    entity: str
    name: str
    type: str
    created_at: float
    version_count: int

    def to_json(self) -> dict[str, Any]:
        """The collection as a JSON object (what the registry's HTTP API answers)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: object) -> Collection:
        """The collection that :meth:`to_json` gave; ``RegistryError`` if fields are off."""
        return _from_json(cls, data)


@dataclass(frozen=True, slots=True)
class Version:
    """One committed version of an artifact collection.

    ``id`` is a registry-wide stable string. ``aliases`` includes ``"latest"`` when
    this is the version :data:`LATEST` names. ``run_id`` is the run that created
    the version (the first producer when identical content was logged again; the
    run that called ``finish_artifact`` for a version merged from parts).
    ``manifest_key`` is where the manifest lives in the store. ``state`` is
    :data:`COMMITTED`, or :data:`DELETED` for the tombstone of a deleted version
    (which has no aliases). ``store`` is the URL of the store that holds the version's
    manifest and content, as the committing daemon was configured (``s3://bucket/prefix``,
    ``gs://bucket/prefix``, ``file:///path`` or an absolute path), so that a reader on any
    node finds the content without a store setting of its own; None for a version
    committed before versions recorded their store, whose content is in the reader's
    configured store. ``hidden`` marks a lineage neighbour in a project the caller may
    not see (:func:`hidden_version`): it says a version is there, and nothing else.
    """

    id: str
    project: str
    entity: str
    name: str
    type: str
    index: int
    digest: str
    manifest_key: str
    size: int
    file_count: int
    description: str | None
    metadata: dict[str, Any]
    aliases: list[str]
    tags: list[str]
    created_at: float
    run_id: str | None
    ttl_seconds: float | None
    state: str = field(default=COMMITTED)
    store: str | None = None
    hidden: bool = False

    def to_json(self) -> dict[str, Any]:
        """The version as a JSON object (what the daemon's registry routes answer)."""
        return _without_visible(asdict(self))

    @classmethod
    def from_json(cls, data: object) -> Version:
        """The version that :meth:`to_json` gave; ``RegistryError`` if fields are off.
        ``store`` may be absent (an older server's answer): it is then None."""
        return _from_json(cls, data, added=_ADDED_STORE | _ADDED_HIDDEN)

    @property
    def expires_at(self) -> float | None:
        """When the version's TTL runs out (seconds since the epoch), or None."""
        return None if self.ttl_seconds is None else self.created_at + self.ttl_seconds

    @property
    def version(self) -> str:
        """The version label W&B users know: ``"v0"``, ``"v1"``, ..."""
        return f"v{self.index}"

    @property
    def qualified_name(self) -> str:
        """``entity/project/name:vN``, the form ``Api().artifact()`` accepts."""
        return f"{self.entity}/{self.project}/{self.name}:{self.version}"


@dataclass(frozen=True, slots=True)
class CommitResult:
    """What committing a submission produced.

    ``created`` is False when the content was identical to an existing version,
    which is then returned instead of a new one (W&B's behaviour). Asking again
    for the same submission returns the same ``created`` as the first time.
    """

    version: Version
    created: bool

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON object: the version's and ``created``."""
        return {"version": self.version.to_json(), "created": self.created}

    @classmethod
    def from_json(cls, data: object) -> CommitResult:
        """The result that :meth:`to_json` gave; ``RegistryError`` if fields are off."""
        raw = _from_json(_RawCommitResult, data)
        if not isinstance(raw.created, bool):
            raise RegistryError(
                f"a CommitResult's created must be true or false, not {raw.created!r}"
            )
        return cls(version=Version.from_json(raw.version), created=raw.created)


@dataclass(frozen=True, slots=True)
class _RawCommitResult:
    """A :class:`CommitResult` as JSON carries it, before its version is decoded."""

    version: object
    created: object


@dataclass(frozen=True, slots=True)
class Part:
    """A manifest a run upserted into a distributed version not yet finished.

    W&B's ``upsert_artifact(artifact, distributed_id=...)``: many runs add parts of
    one version under a shared ``distributed_id``; ``finish_artifact`` merges them
    into one committed version, which consumes them. ``run_id`` is the run that
    added the part (None when logged outside a run); ``size`` and ``file_count``
    describe the part's own entries. ``store`` holds the part's manifest and content,
    as :attr:`Version.store` does for a version (None: not recorded).
    """

    submission_id: str
    distributed_id: str
    manifest_key: str
    run_id: str | None
    size: int
    file_count: int
    created_at: float
    store: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The part as a JSON object (what the registry's HTTP API answers)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: object) -> Part:
        """The part that :meth:`to_json` gave; ``RegistryError`` if fields are off.
        ``store`` may be absent (an older server's answer): it is then None."""
        return _from_json(cls, data, added=_ADDED_STORE)


@dataclass(frozen=True, slots=True, kw_only=True)
class _NewContent:
    """What a version and a part both name: the submission, the artifact, its manifest,
    and the store that holds them (see :attr:`Version.store`; None: not recorded)."""

    submission_id: str
    project: str
    entity: str | None
    name: str
    type: str
    manifest_key: str
    size: int
    file_count: int
    run_id: str | None = None
    store: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NewVersion(_NewContent):
    """A version to commit: what the daemon checked and stored, handed to the registry.

    The one value that crosses from the pipeline to ``Registry.commit_version``, so every
    backend receives the same fields. ``submission_id`` makes the commit idempotent;
    ``entity=None`` means :data:`DEFAULT_ENTITY`; ``digest`` is the artifact digest of
    the manifest stored under ``manifest_key``; ``size`` and ``file_count`` describe its
    entries. ``aliases`` may include ``latest`` (a no-op); ``run_id`` is the producing
    run; ``ttl_seconds`` (positive, or None) makes the version expire. ``distributed_id``
    is set only by ``finish_artifact``: the commit consumes that id's pending parts.
    ``store`` is the store the daemon wrote the manifest and content to.
    """

    digest: str
    description: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    aliases: Sequence[str] = ()
    tags: Sequence[str] = ()
    ttl_seconds: float | None = None
    distributed_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The new version as a JSON object: mappings as objects, sequences as arrays;
        ``store`` is left out when None."""
        return _new_json(self)

    @classmethod
    def from_json(cls, data: object, *, error: type[Exception] = RegistryError) -> NewVersion:
        """The new version that :meth:`to_json` gave (fields with defaults may be left out);
        ``error`` names a missing or unknown field."""
        return _from_json(cls, data, every_field=False, error=error)


@dataclass(frozen=True, slots=True, kw_only=True)
class NewPart(_NewContent):
    """A part of a distributed version to record (``upsert_artifact``), for
    ``Registry.add_part``.

    ``distributed_id`` is the id the part's writers share; the commit of a
    :class:`NewVersion` with the same id merges and consumes the part. ``size`` and
    ``file_count`` describe the part's own entries; ``run_id`` is the run that wrote it.
    """

    distributed_id: str

    def to_json(self) -> dict[str, Any]:
        """The new part as a JSON object: mappings as objects, sequences as arrays;
        ``store`` is left out when None."""
        return _new_json(self)

    @classmethod
    def from_json(cls, data: object, *, error: type[Exception] = RegistryError) -> NewPart:
        """The new part that :meth:`to_json` gave (fields with defaults may be left out);
        ``error`` names a missing or unknown field."""
        return _from_json(cls, data, every_field=False, error=error)


def _without_visible(data: dict[str, Any]) -> dict[str, Any]:
    if not data.get("hidden"):
        data.pop("hidden", None)
    return data


def hidden_run() -> Run:
    """A lineage neighbour run the caller may not see: no name, no project, nothing."""
    return Run(
        id="",
        project="",
        entity="",
        name=None,
        job_type=None,
        group=None,
        config={},
        created_at=0.0,
        hidden=True,
    )


def hidden_version() -> Version:
    """A lineage neighbour version the caller may not see: no name, no project, nothing."""
    return Version(
        id="",
        project="",
        entity="",
        name="",
        type="",
        index=0,
        digest="",
        manifest_key="",
        size=0,
        file_count=0,
        description=None,
        metadata={},
        aliases=[],
        tags=[],
        created_at=0.0,
        run_id=None,
        ttl_seconds=None,
        hidden=True,
    )


def _new_json(record: NewVersion | NewPart) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(record):
        value = getattr(record, f.name)
        if f.name in _ADDED_STORE and value is None:
            # Left out rather than null: a server older than stores being recorded
            # refuses fields it does not know, and a null store tells nothing.
            continue
        if isinstance(value, Mapping):
            value = dict(value)
        elif isinstance(value, Sequence) and not isinstance(value, str):
            value = list(value)
        out[f.name] = value
    return out
