"""The submission: what the SDK hands the daemon for one ``log_artifact`` call.

A submission is one JSON file in the spool. It names the artifact, the run that logged
it, and its entries in one of four kinds, each saying how far the SDK got:

- ``staged``: a "mutable" file already snapshotted into the spool's staging area, with
  the digest taken in the same read pass (the daemon does not hash it again);
- ``file``: an "immutable" file, recorded by path and stat; the daemon hashes it and
  rejects the version if the stat no longer matches;
- ``dir``: an "immutable" directory, recorded by path and the time it was logged; the
  daemon lists and hashes it, rejecting files modified after that time;
- ``reference``: a URI the daemon expands (``file://`` now; S3, GCS, HTTP later).

A draft made from a committed version (``artifact.new_draft()``) also names that version
(``base``): its entries are the base version's, but those the draft removed or replaced,
plus its own, and the daemon reads them from the base version's manifest.

The file carries ``format`` and ``format_version``; a version this code does not know
is rejected, never guessed at. With a registry server, it also carries the caller's API
key sealed for the daemon (``sealed_key``, :mod:`artisync.sealed_keys`), never the key.
"""

from __future__ import annotations

import json
import operator
import os
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Final, Literal

from artisync.errors import InvalidInputError, SubmissionError
from artisync.names import (
    check_description,
    check_list_length,
    normalize_entry_path,
    validate_alias,
    validate_artifact_name,
    validate_artifact_type,
    validate_distributed_id,
    validate_entity,
    validate_project,
    validate_run_id,
    validate_run_label,
    validate_tag,
)
from artisync.references.uri import check_reference
from artisync.spool.batch_checks import (
    all_canonical_md5,
    all_normal_paths,
    all_of_type,
)
from artisync.spool.field_checks import (
    INT64_MAX,
    UINT64_MAX,
    check_digest,
    check_int,
    check_optional_str,
    check_str_list,
    check_ttl,
    check_unknown_keys,
    strict_json,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "ArtifactInfo",
    "BaseInfo",
    "DirEntry",
    "Entry",
    "FileEntry",
    "ReferenceEntry",
    "RunInfo",
    "SealedKey",
    "StagedEntry",
    "StagedListEntry",
    "Submission",
    "staged_row",
]

FORMAT: Final = "artisync.submission"
FORMAT_VERSION: Final = 1

# Characters of each field of a sealed key: far above a server URL or a sealed key.
SEALED_KEY_MAX: Final = 4096

Action = Literal["log", "upsert", "finish"]
_ACTIONS: Final = ("log", "upsert", "finish")


@dataclass(slots=True)
class StagedEntry:
    """A snapshot in the spool's staging area; ``staged`` is relative to the spool root."""

    path: str
    staged: str
    digest: str
    size: int
    kind: Literal["staged"] = "staged"


@dataclass(slots=True)
class FileEntry:
    """An immutable file: the daemon hashes it and checks the stat still matches."""

    path: str
    local_path: str
    size: int
    mtime_ns: int
    inode: int
    kind: Literal["file"] = "file"


@dataclass(slots=True)
class DirEntry:
    """An immutable directory whose files go under ``path`` (``""`` for the root)."""

    path: str
    local_path: str
    kind: Literal["dir"] = "dir"


@dataclass(slots=True)
class ReferenceEntry:
    """A reference to expand; ``path`` is the name (or prefix) it is stored under.

    ``path`` is ``""`` when the user gave no name: the daemon then names a single
    object by its basename and stores a prefix's objects relative to the prefix.
    """

    path: str
    ref: str
    checksum: bool = True
    max_objects: int | None = None
    kind: Literal["reference"] = "reference"


@dataclass(slots=True)
class StagedListEntry:
    """Many snapshots at once: a JSON-lines file in the submission's staging area, one
    ``[path, staged, digest, size]`` row per snapshot (:mod:`artisync.spool.staged_list`).

    ``list`` is relative to the spool root; ``count`` rows, ``digest`` the base64 MD5 of
    the file and ``size`` the snapshots' bytes let the daemon check it and show progress
    while it reads it a chunk at a time. ``path`` is always ``""``.
    """

    list: str
    count: int
    digest: str
    size: int
    path: str = ""
    kind: Literal["staged_list"] = "staged_list"


Entry = StagedEntry | FileEntry | DirEntry | ReferenceEntry | StagedListEntry
_KINDS: Final[dict[str, type[Entry]]] = {
    "staged": StagedEntry,
    "file": FileEntry,
    "dir": DirEntry,
    "reference": ReferenceEntry,
    "staged_list": StagedListEntry,
}


@dataclass(slots=True)
class RunInfo:
    """The run that logged the artifact, as much of it as the registry should record."""

    id: str
    name: str | None = None
    job_type: str | None = None
    group: str | None = None
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ArtifactInfo:
    """The artifact's identity and the attributes its new version gets."""

    name: str
    type: str
    description: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    ttl_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class SealedKey:
    """The caller's API key for the registry server ``server``, sealed for the node's
    daemon (:func:`artisync.sealed_keys.seal`): only the daemon can open it, and only
    for this submission, as the user who wrote its file."""

    server: str
    sealed: str


@dataclass(slots=True)
class BaseInfo:
    """The committed version a draft was made from (``artifact.new_draft()``): the new
    version holds that version's entries but the paths in ``removed`` (removed from the
    draft, or replaced by an entry of its own), besides the submission's own entries.
    The daemon reads them from that version's manifest: a client names a version it
    may read, never stored content by digest."""

    version_id: str
    removed: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Submission:
    """One ``log_artifact`` call, as written to the spool."""

    id: str
    created_ns: int
    project: str
    artifact: ArtifactInfo
    entries: list[Entry]
    entity: str | None = None
    run: RunInfo | None = None
    action: Action = "log"
    distributed_id: str | None = None
    sealed_key: SealedKey | None = None
    base: BaseInfo | None = None

    @property
    def collection_key(self) -> tuple[str | None, str, str]:
        """What versions are ordered within: (entity, project, artifact name)."""
        return (self.entity, self.project, self.artifact.name)

    def to_json(self) -> dict[str, Any]:
        """The JSON object written to the spool."""
        return {**self._fields_json(), "entries": [_entry_json(e) for e in self.entries]}

    def _fields_json(self) -> dict[str, Any]:
        """Every field of the JSON object but ``entries``."""
        obj: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "id": self.id,
            "created_ns": self.created_ns,
            "project": self.project,
            "entity": self.entity,
            "run": None if self.run is None else asdict(self.run),
            "action": self.action,
            "distributed_id": self.distributed_id,
            "artifact": asdict(self.artifact),
        }
        if self.sealed_key is not None:
            # Only when there is one: a submission for the embedded registry stays
            # what daemons before sealed keys read.
            obj["sealed_key"] = asdict(self.sealed_key)
        if self.base is not None:
            # Likewise: a daemon that does not know drafts refuses one, naming the field.
            obj["base"] = asdict(self.base)
        return obj

    def dumps(self) -> bytes:
        """The spool file's bytes; fails on metadata that is not JSON (names the key)."""
        try:
            fields = json.dumps(self._fields_json(), allow_nan=False, separators=(",", ":"))
            # The entries last, each written as json.dumps would (see _entry_text).
            entries = ",".join(map(_entry_text, self.entries))
        except (TypeError, ValueError) as e:
            raise InvalidInputError(
                f"artifact {self.artifact.name!r}: metadata, config and description must be "
                f"JSON-serialisable (str, int, float, bool, None, lists and dicts of them): {e}"
            ) from None
        return f'{fields[:-1]},"entries":[{entries}]}}'.encode()

    @classmethod
    def loads(cls, data: bytes) -> Submission:
        """Parse and validate a spool file; any problem is a :class:`SubmissionError`."""
        return cls.from_json(strict_json(data))

    @classmethod
    def from_json(cls, obj: Any) -> Submission:
        """Validate a decoded submission: format, version, fields, names and paths."""
        if not isinstance(obj, dict):
            raise SubmissionError("the submission must be a JSON object")
        if obj.get("format") != FORMAT:
            raise SubmissionError(f"not an artisync submission: format is {obj.get('format')!r}")
        version = obj.get("format_version")
        # type() first: True and 1.0 equal 1 in Python, but are not version 1.
        if type(version) is not int or version != FORMAT_VERSION:
            raise SubmissionError(
                f"unknown submission format_version {version!r}: this daemon reads version "
                f"{FORMAT_VERSION}; upgrade the daemon to match the SDK that wrote it"
            )
        check_unknown_keys(obj)
        try:
            artifact = ArtifactInfo(**_object(obj, "artifact"))
            run_obj = obj.get("run")
            run = None if run_obj is None else RunInfo(**_require_dict(run_obj, "run"))
            listed = _list(obj, "entries")
            # The common submission's entries are checked as a batch; any other, one
            # at a time (which names what is wrong).
            batch = _plain_staged(listed)
            entries = batch if batch is not None else [_entry(i, e) for i, e in enumerate(listed)]
            sub = cls(
                id=_str(obj, "id"),
                created_ns=_int(obj, "created_ns"),
                project=_str(obj, "project"),
                entity=obj.get("entity"),
                run=run,
                action=obj.get("action", "log"),
                distributed_id=obj.get("distributed_id"),
                artifact=artifact,
                entries=entries,
                sealed_key=_sealed_key(obj.get("sealed_key")),
                base=_base(obj.get("base")),
            )
        except TypeError as e:
            raise SubmissionError(f"malformed submission: {e}") from None
        sub._validate(entries_checked=batch is not None)
        return sub

    def _validate(self, entries_checked: bool = False) -> None:
        """Every check of the fields; those of the entries but when ``entries_checked``
        (:func:`_plain_staged` found them all of the form that passes them)."""
        self._check_fields(entries_checked)
        if self.action not in _ACTIONS:
            raise SubmissionError(f"unknown action {self.action!r}: expected one of {_ACTIONS}")
        distributed = self.action != "log"
        if distributed != (self.distributed_id is not None):
            raise SubmissionError(
                f"action {self.action!r} "
                + ("needs a distributed_id" if distributed else "takes no distributed_id")
            )
        if distributed and self.base is not None:
            raise SubmissionError(
                f"action {self.action!r} takes no base version: a draft made by new_draft() "
                "is logged with log_artifact"
            )
        try:
            # The SDK's rules again (names.py): a submission may come from anywhere.
            if self.distributed_id is not None:
                validate_distributed_id(self.distributed_id)
            if self.entity is not None:
                validate_entity(self.entity)
            if self.run is not None:
                validate_run_id(self.run.id)
                for key in ("name", "job_type", "group"):
                    if (value := getattr(self.run, key)) is not None:
                        validate_run_label(value, "run name" if key == "name" else f"run {key}")
            validate_project(self.project)
            validate_artifact_name(self.artifact.name)
            validate_artifact_type(
                self.artifact.type, self.artifact.name, allow_reserved_names=True
            )
            check_description(self.artifact.description)
            for alias in check_list_length(self.artifact.aliases, "aliases"):
                validate_alias(alias)
            for tag in check_list_length(self.artifact.tags, "tags"):
                validate_tag(tag)
            if self.base is not None:
                self.base.removed = [normalize_entry_path(p) for p in self.base.removed]
            for entry in () if entries_checked else self.entries:
                if isinstance(entry, StagedListEntry):
                    if entry.path != "":
                        raise SubmissionError("a staged_list entry has no path of its own")
                else:
                    if isinstance(entry, ReferenceEntry):
                        check_reference(entry.ref)
                    if not (isinstance(entry, DirEntry | ReferenceEntry) and entry.path == ""):
                        entry.path = normalize_entry_path(entry.path)
        except SubmissionError:
            raise
        except InvalidInputError as e:
            raise SubmissionError(str(e)) from None
        if not isinstance(self.artifact.metadata, dict):
            raise SubmissionError("artifact metadata must be a JSON object")

    def _check_fields(self, entries_checked: bool = False) -> None:
        """Types and ranges the dataclasses do not enforce (see ``field_checks``)."""
        check_int(self.created_ns, "created_ns", 0, INT64_MAX)
        check_optional_str(self.entity, "entity")
        check_optional_str(self.distributed_id, "distributed_id")
        art = self.artifact
        check_optional_str(art.description, "artifact description")
        check_str_list(art.aliases, "artifact aliases")
        check_str_list(art.tags, "artifact tags")
        check_ttl(art.ttl_seconds)
        if self.run is not None:
            run = self.run
            if not isinstance(run.id, str):
                raise SubmissionError("run id must be a string")
            for key in ("name", "job_type", "group"):
                check_optional_str(getattr(run, key), f"run {key}")
            if not isinstance(run.config, dict):
                raise SubmissionError("run config must be a JSON object")
        for i, entry in enumerate(() if entries_checked else self.entries):
            _check_entry(i, entry)


# JSON types of entry fields, checked once here so later stages can trust them.
# W&B's digest of a file (base64 of an MD5) in its canonical form; anything else gets
# the full check, which names the entry.
_MD5_BASE64: Final = re.compile(r"[A-Za-z0-9+/]{21}[AQgw]==")

# Exact types, as JSON decodes them (so a bool is never taken for an int).
_FIELD_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "path": (str,),
    "staged": (str,),
    "digest": (str,),
    "local_path": (str,),
    "ref": (str,),
    "kind": (str,),
    "size": (int,),
    "mtime_ns": (int,),
    "inode": (int,),
    "checksum": (bool,),
    "max_objects": (int, type(None)),
    "list": (str,),
    "count": (int,),
}


# Field names per entry class: ``asdict`` deep-copies every value and cost a third of
# ``log_artifact`` on a 10,000-file directory; entries hold only scalars.
_FIELDS: Final = {cls: tuple(f.name for f in fields(cls)) for cls in _KINDS.values()}


def _entry_json(entry: Entry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in _FIELDS[type(entry)]}


_quoted: Final = json.encoder.encode_basestring_ascii  # json.dumps's own, in C


def _entry_text(entry: Entry) -> str:
    """An entry's JSON text, as ``json.dumps(_entry_json(entry))`` writes it compactly:
    the common entry (once per file of a version) formatted directly, not through a
    dict and the generic encoder."""
    if type(entry) is StagedEntry and type(entry.size) is int:
        e = entry
        return (
            f'{{"path":{_quoted(e.path)},"staged":{_quoted(e.staged)},'
            f'"digest":{_quoted(e.digest)},"size":{e.size},"kind":"staged"}}'
        )
    return json.dumps(_entry_json(entry), allow_nan=False, separators=(",", ":"))


def _where(where: int | str) -> str:
    """An entry's place for messages: its index in ``entries``, or said by the caller."""
    return f"entries[{where}]" if isinstance(where, int) else where


def _entry(where: int | str, obj: Any) -> Entry:
    # Messages are built only on failure: this runs once per file of a version.
    item = obj if type(obj) is dict else _require_dict(obj, _where(where))
    kind = item.get("kind")
    entry_type = _KINDS.get(kind) if isinstance(kind, str) else None
    if entry_type is None:
        raise SubmissionError(
            f"{_where(where)}: unknown kind {kind!r}: expected one of {sorted(_KINDS)}"
        )
    for key, value in item.items():
        expected = _FIELD_TYPES.get(key)
        if expected is not None and type(value) not in expected:
            raise SubmissionError(
                f"{_where(where)} ({kind}): {key} has the wrong type ({type(value).__name__})"
            )
    try:
        return entry_type(**item)
    except TypeError as e:
        raise SubmissionError(f"{_where(where)} ({kind}): {e}") from None


_STAGED_KEYS: Final = frozenset(_FIELDS[StagedEntry])
_STAGED_COLUMNS: Final = operator.itemgetter(*_FIELDS[StagedEntry])  # path, ..., kind


def _plain_staged(listed: list[Any]) -> list[Entry] | None:
    """The entries, if every one is a staged snapshot as the SDK writes it (every field,
    of the right type and range, a canonical digest, a path in normal form), checked a
    column at a time (:mod:`artisync.spool.batch_checks`); else None, for the checks
    one entry at a time. All or nothing, so that a bad entry is always reported by
    those, in the same words and order."""
    if not listed or not all_of_type(listed, dict):
        return None
    # Each object has exactly the staged keys: as many, and each of them there.
    if set(map(len, listed)) != {len(_STAGED_KEYS)}:
        return None
    try:
        paths, staged, digests, sizes, kinds = zip(*map(_STAGED_COLUMNS, listed), strict=True)
    except KeyError:
        return None
    if set(kinds) != {"staged"}:
        return None
    if not (
        all_of_type(paths, str)
        and all_of_type(staged, str)
        and all_of_type(digests, str)
        and all_of_type(sizes, int)
    ):
        return None
    if min(sizes) < 0 or max(sizes) > INT64_MAX:
        return None
    if not (all_canonical_md5(digests) and all_normal_paths(paths)):
        return None
    return list(map(StagedEntry, paths, staged, digests, sizes))


def _check_entry(where: int | str, entry: Entry) -> None:
    """Ranges of an entry's numbers, its digest, and absolute local paths."""
    if (
        type(entry) is StagedEntry
        and 0 <= entry.size <= INT64_MAX
        and _MD5_BASE64.fullmatch(entry.digest)
    ):
        return  # the common case, checked without building any message
    _check_entry_fully(
        f"entries[{where}] ({entry.kind})" if isinstance(where, int) else where, entry
    )


def _check_entry_fully(where: str, entry: Entry) -> None:
    if isinstance(entry, StagedEntry | FileEntry):
        check_int(entry.size, f"{where} size", 0, INT64_MAX)
    if isinstance(entry, StagedEntry | StagedListEntry):
        check_digest(entry.digest, where)
    if isinstance(entry, StagedListEntry):
        check_int(entry.size, f"{where} size", 0, INT64_MAX)
        check_int(entry.count, f"{where} count", 0, INT64_MAX)
    if isinstance(entry, FileEntry):
        check_int(entry.mtime_ns, f"{where} mtime_ns", -INT64_MAX, INT64_MAX)
        check_int(entry.inode, f"{where} inode", 0, UINT64_MAX)
    if isinstance(entry, FileEntry | DirEntry) and (
        not os.path.isabs(entry.local_path) or "\0" in entry.local_path
    ):
        # A relative path would be read relative to wherever the daemon runs.
        raise SubmissionError(f"{where}: local_path {entry.local_path!r} must be an absolute path")
    if isinstance(entry, ReferenceEntry):
        if not entry.ref:
            raise SubmissionError(f"{where}: ref must not be empty")
        if entry.max_objects is not None:
            check_int(entry.max_objects, f"{where} max_objects", 1, INT64_MAX)


def _sealed_key(value: Any) -> SealedKey | None:
    if value is None:
        return None
    key = SealedKey(**_require_dict(value, "sealed_key"))
    for name in ("server", "sealed"):
        text = getattr(key, name)
        if not isinstance(text, str) or not 0 < len(text) <= SEALED_KEY_MAX:
            raise SubmissionError(
                f"sealed_key {name} must be a string of 1 to {SEALED_KEY_MAX} characters"
            )
    return key


def _base(value: Any) -> BaseInfo | None:
    if value is None:
        return None
    base = BaseInfo(**_require_dict(value, "base"))
    if not isinstance(base.version_id, str) or not 0 < len(base.version_id) <= SEALED_KEY_MAX:
        raise SubmissionError(
            f"base version_id must be a string of 1 to {SEALED_KEY_MAX} characters"
        )
    check_str_list(base.removed, "base removed")
    return base


def _require_dict(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SubmissionError(f"{where} must be a JSON object, not {type(value).__name__}")
    return value


def _object(obj: dict[str, Any], key: str) -> dict[str, Any]:
    return _require_dict(obj.get(key), key)


def _list(obj: dict[str, Any], key: str) -> list[Any]:
    value = obj.get(key)
    if not isinstance(value, list):
        raise SubmissionError(f"{key} must be a JSON list")
    return value


def _str(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise SubmissionError(f"{key} must be a non-empty string")
    return value


def _int(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise SubmissionError(f"{key} must be an integer")
    return value


def staged_row(where: str, row: Any) -> StagedEntry:
    """One row of a staged list (``[path, staged, digest, size]``), checked as an inline
    staged entry is; a problem is a :class:`SubmissionError` naming ``where``."""
    if not isinstance(row, list) or len(row) != 4:
        raise SubmissionError(f"{where}: expected [path, staged, digest, size], got {row!r:.200}")
    path, staged, digest, size = row
    obj = {"kind": "staged", "path": path, "staged": staged, "digest": digest, "size": size}
    entry = _entry(where, obj)
    assert isinstance(entry, StagedEntry)
    _check_entry(where, entry)
    try:
        entry.path = normalize_entry_path(entry.path)
    except InvalidInputError as e:
        raise SubmissionError(f"{where}: {e}") from None
    return entry
