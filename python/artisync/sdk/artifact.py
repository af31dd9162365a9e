"""``Artifact``: W&B's artifact object, filled in the training script, logged by a run.

An artifact is a draft until a run logs it: files, directories and references are
added (each checked and, under the default ``mutable`` policy, snapshotted at once),
then ``run.log_artifact`` hands it to the daemon, and ``wait()`` blocks until the
daemon has committed it as a version (``v0``, ``v1``, ...) or rejected it. While it is
pending nothing can change; once committed (after ``wait()``, or as returned by
``Api().artifact()`` and ``run.use_artifact()``) its content is fixed, but its aliases,
description, metadata and TTL can be edited and stored with ``save()``.

Each artifact gets its submission id when it is made; the id names its staging area
in the spool and, later, its submission.
"""

from __future__ import annotations

import copy
import os
import threading
import time
import uuid
import warnings
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Final, Literal

from artisync import data_types
from artisync.config import Config
from artisync.data_types import Stored
from artisync.errors import ArtisyncError, InvalidInputError, RejectedError
from artisync.names import (
    check_description,
    check_list_length,
    normalize_entry_path,
    validate_alias,
    validate_artifact_name,
    validate_artifact_type,
    validate_tag,
)
from artisync.registry.contract import user_aliases
from artisync.registry.model import Version
from artisync.sdk import committed
from artisync.sdk.artifact_files import ArtifactFiles
from artisync.sdk.client import DaemonClient
from artisync.sdk.contents import Contents, EntryNotFoundError
from artisync.sdk.current import active_run
from artisync.sdk.links import commit_link, default_project, link_aliases, parse_target
from artisync.sdk.manifest_view import (
    AnyEntry,
    ArtifactManifest,
    PendingEntry,
    pending_entries,
    read_committed_manifest,
)
from artisync.sdk.media_entries import MediaPlan
from artisync.sdk.patience import patiently
from artisync.sdk.public_run import PublicRun
from artisync.sdk.registry_access import registry_for
from artisync.sdk.same_content import warn_unapplied
from artisync.sdk.validation import require_json, require_json_object, str_list
from artisync.spool import ArtifactInfo, BaseInfo, RunInfo, Submission, staged_list
from artisync.spool.submission import Action

__all__ = ["Artifact", "ArtifactFinalizedError"]

# Held while an artifact is claimed for logging: of two threads logging one artifact,
# exactly one must fail.
_LOG_LOCK: Final = threading.Lock()


class ArtifactFinalizedError(ArtisyncError):
    """The artifact was already logged: its content and attributes are fixed."""


def _reference_of(entry: object) -> str:
    """The URI of a reference entry given to ``add_reference`` instead of a URI."""
    ref = getattr(entry, "ref", None)
    if not isinstance(ref, str):
        path = getattr(entry, "path", None)
        raise InvalidInputError(
            f"add_reference takes a URI, or an entry that is a reference; "
            f"{type(entry).__name__} {path!r} is stored content: add the file itself "
            "(download it with entry.download(), then add_file)"
        )
    return ref


class Artifact:
    """A set of files, directories and references that becomes one artifact version.

    ``name`` is the artifact (collection) name, ``type`` its type, both checked with
    W&B's rules now. ``metadata`` must be JSON: a value JSON cannot hold fails here, in
    the training script, rather than in the daemon. See DESIGN.md for the path rules
    and the ``mutable``/``immutable`` policies.
    """

    def __init__(
        self,
        name: str,
        type: str,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        _internal: bool = False,
    ) -> None:
        self._name = validate_artifact_name(name)
        self._type = validate_artifact_type(type, name, allow_reserved_names=_internal)
        self._id = uuid.uuid4().hex
        self._description: str | None = None
        self._metadata: dict[str, Any] = {}
        self._aliases: list[str] = []
        self._tags: list[str] = []
        self._ttl: timedelta | None = None
        self._contents = Contents(self._name, self._id)
        # The local path each snapshotted file came from (W&B's "added local paths"):
        # an Image of one of them names its entry instead of storing it again.
        self._local_names: dict[str, str] = {}
        # Set when the artifact is logged; the daemon's answer when wait() has it.
        self._client: DaemonClient | None = None
        self._result: dict[str, Any] | None = None
        self._rejection_raised = False  # wait() raised this version's rejection
        # Set once committed: the version as the registry has it, and whose home it is in.
        self._version: Version | None = None
        self._settings: Config | None = None
        self._committed: ArtifactManifest | None = None
        self.description = description
        self.metadata = metadata if metadata is not None else {}

    @classmethod
    def _from_version(cls, version: Version, settings: Config) -> Artifact:
        """The committed ``version`` (what ``Api().artifact()`` returns)."""
        artifact = cls(version.name, version.type, _internal=True)
        artifact._adopt(version, settings)
        return artifact

    def _adopt(self, version: Version, settings: Config) -> None:
        """Become the committed ``version``: its attributes replace the local ones.

        Its content is read from the store the version records (every node reads a
        version another node committed with no store setting of its own); a version
        from before versions recorded it is in the reader's configured store."""
        if version.store is not None and version.store != settings.store:
            settings = replace(settings, store=version.store)
        self._version, self._settings = version, settings
        self._description = version.description
        self._metadata = dict(version.metadata)
        self._aliases = list(version.aliases)
        self._tags = list(version.tags)
        ttl = version.ttl_seconds
        self._ttl = None if ttl is None else timedelta(seconds=ttl)
        self._committed = None

    def __repr__(self) -> str:
        if self.version is not None:
            return f"<Artifact {self._name}:{self.version} ({self._type})>"
        return f"<Artifact {self._name} ({self._type}, {self.state})>"

    # -- attributes ------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The artifact (collection) name; the version is in :attr:`version`."""
        return self._name

    @property
    def qualified_name(self) -> str:
        """``entity/project/name`` once committed, else the bare name."""
        v = self._version
        return self._name if v is None else f"{v.entity}/{v.project}/{v.name}"

    @property
    def project(self) -> str | None:
        """The project the version is in; ``None`` before it is committed."""
        return None if self._version is None else self._version.project

    @property
    def entity(self) -> str | None:
        """The entity of the version's project; ``None`` before it is committed."""
        return None if self._version is None else self._version.entity

    @property
    def type(self) -> str:
        """The artifact type, e.g. ``"model"`` or ``"dataset"``."""
        return self._type

    @property
    def submission_id(self) -> str:
        """The id of this artifact's submission (and of its staging area in the spool)."""
        return self._id

    @property
    def description(self) -> str | None:
        """Free text describing the artifact (editable after commit; then ``save()``)."""
        return self._description

    @description.setter
    def description(self, value: str | None) -> None:
        self._check_editable("change the description of")
        if value is not None and not isinstance(value, str):
            raise InvalidInputError(
                f"Invalid description {value!r}: must be a str or None, not {type(value).__name__}"
            )
        self._description = check_description(value)

    @property
    def metadata(self) -> dict[str, Any]:
        """User metadata: a JSON object (checked when set and again when stored)."""
        return self._metadata

    @metadata.setter
    def metadata(self, value: dict[str, Any]) -> None:
        self._check_editable("change the metadata of")
        self._metadata = require_json_object(value, f"artifact {self._name!r} metadata")

    @property
    def aliases(self) -> list[str]:
        """Aliases: for a draft, those the new version gets; once committed, those it has
        (with ``latest`` if it is the newest). Edit the list in place, then ``save()``."""
        return self._aliases

    @aliases.setter
    def aliases(self, value: list[str]) -> None:
        self._check_editable("change the aliases of")
        aliases = check_list_length(str_list(value, "aliases"), "aliases")
        self._aliases = [validate_alias(a) for a in aliases]

    @property
    def tags(self) -> list[str]:
        """Tags for the new version; once committed, those it has."""
        return self._tags

    @tags.setter
    def tags(self, value: list[str]) -> None:
        self._check_draft("change the tags of")
        self._tags = [validate_tag(t) for t in check_list_length(str_list(value, "tags"), "tags")]

    @property
    def ttl(self) -> timedelta | None:
        """How long the version is kept after it was created; ``None`` keeps it until
        deleted. The daemon deletes expired versions (with their aliases)."""
        return self._ttl

    @ttl.setter
    def ttl(self, value: timedelta | None) -> None:
        self._check_editable("change the ttl of")
        if value is not None and (not isinstance(value, timedelta) or value <= timedelta(0)):
            raise InvalidInputError(
                f"Invalid ttl {value!r}: must be a positive datetime.timedelta, or None"
            )
        self._ttl = value

    @property
    def state(self) -> Literal["PENDING", "COMMITTED", "DELETED"]:
        """``"PENDING"`` until the version is committed, then ``"COMMITTED"`` (as W&B);
        ``"DELETED"`` after :meth:`delete`."""
        if self._version is None:
            return "PENDING"
        return "DELETED" if self._version.state == "DELETED" else "COMMITTED"

    @property
    def version(self) -> str | None:
        """The committed version, ``"v0"``, ``"v1"``...; ``None`` before ``wait()``."""
        return None if self._version is None else self._version.version

    @property
    def id(self) -> str | None:
        """The committed version's registry id; ``None`` before ``wait()``."""
        return None if self._version is None else self._version.id

    @property
    def digest(self) -> str | None:
        """The artifact digest: the committed version's; before that, the digest of the
        entries if all of them are hashed already (snapshots only), else ``None``."""
        if self._version is not None:
            return self._version.digest
        if self._client is not None or not self._contents.fully_hashed():
            return None
        return self.manifest.digest()

    @property
    def size(self) -> int | None:
        """Total bytes of the committed version's entries; ``None`` before commit."""
        return None if self._version is None else self._version.size

    @property
    def file_count(self) -> int | None:
        """How many entries the committed version has; ``None`` before commit."""
        return None if self._version is None else self._version.file_count

    @property
    def created_at(self) -> datetime | None:
        """When the version was committed (UTC); ``None`` before."""
        v = self._version
        return None if v is None else datetime.fromtimestamp(v.created_at, UTC)

    def _settled(self) -> bool:
        """Whether the daemon's answer about this logged artifact is known (committed,
        rejected, or a part it took)."""
        return self._version is not None or self._result is not None

    def is_draft(self) -> bool:
        """Whether the artifact has not been logged yet."""
        return self._client is None and self._version is None

    def _check_draft(self, action: str) -> None:
        if not self.is_draft():
            raise ArtifactFinalizedError(
                f"cannot {action} artifact {self._name!r}: it was already logged, so its "
                "content is fixed. Create a new Artifact for a new version"
            )

    def _check_editable(self, action: str) -> None:
        """Drafts and committed versions may change their attributes; pending ones not."""
        if self._client is not None and self._version is None:
            raise ArtifactFinalizedError(
                f"cannot {action} artifact {self._name!r} while it is being committed: "
                "call artifact.wait() first, then edit it and call artifact.save()"
            )

    def _require_committed(self, action: str) -> tuple[Version, Config]:
        if self._version is None or self._settings is None:
            hint = (
                "log it with run.log_artifact() and call wait()"
                if self.is_draft()
                else "call artifact.wait() first"
            )
            raise ArtisyncError(f"cannot {action} artifact {self._name!r}: not committed; {hint}")
        if self._version.state == "DELETED":
            raise ArtisyncError(
                f"cannot {action} {self._version.qualified_name}: the version was deleted"
            )
        return self._version, self._settings

    # -- content ---------------------------------------------------------------------

    @property
    def manifest(self) -> ArtifactManifest:
        """The entries: those added so far, or once committed the committed manifest.

        Before commit, files of an ``immutable`` directory are listed on each access
        and have no digest yet; a reference shows as one entry under its name.
        Committed entries can ``download()`` themselves.
        """
        if self._version is None:
            return ArtifactManifest(self._contents.view())
        if self._committed is None:
            version, settings = self._version, self._settings
            assert settings is not None
            manifest = read_committed_manifest(
                committed.reading_store(settings), version.manifest_key, settings.home
            )
            self._committed = ArtifactManifest(
                {
                    p: committed.CommittedEntry(e, self._require_committed)
                    for p, e in manifest.entries.items()
                }
            )
        return self._committed

    def new_draft(self) -> Artifact:
        """A draft with this committed version's name, type, description, metadata and
        entries, as W&B's ``new_draft``: add, replace (``overwrite=True``) or remove
        entries, then log it as the next version. Only what the draft adds is read and
        uploaded; the entries it keeps are the version's, already stored.

        Raises:
            ArtisyncError: the artifact is not committed (log it and ``wait()`` first).
        """
        version, _ = self._require_committed("make a new draft of")
        draft = Artifact(version.name, version.type, _internal=True)
        draft.description = version.description
        draft.metadata = copy.deepcopy(version.metadata)
        plain = {path: committed.plain_entry(e) for path, e in self.manifest.entries.items()}
        draft._contents.start_from(version.id, plain)
        return draft

    def get_entry(self, name: str) -> AnyEntry:
        """The entry at path ``name``.

        Raises:
            EntryNotFoundError: (a ``KeyError``) no entry has that path.
        """
        path = normalize_entry_path(os.fspath(name))
        if self._version is not None:
            entry: AnyEntry | None = self.manifest.entries.get(path)
        else:
            entry = self._contents.get(path)
        if entry is None:
            raise EntryNotFoundError(f"Path not contained in artifact {self._name!r}: {path!r}")
        return entry

    def add_file(
        self,
        local_path: str | os.PathLike[str],
        name: str | None = None,
        policy: str = "mutable",
        overwrite: bool = False,
    ) -> PendingEntry:
        """Add the file ``local_path`` as the entry ``name`` (default: its basename).

        ``policy="mutable"`` snapshots it now, so it may change right after;
        ``"immutable"`` records its stat and the daemon reads it later (the version is
        rejected if it changed). An existing entry is replaced only with
        ``overwrite=True``. Returns the new entry.
        """
        self._check_draft("add files to")
        path = self._contents.add_file(local_path, name, policy, overwrite)
        self._local_names[os.fspath(local_path)] = path
        entry = self._contents.get(path)
        assert entry is not None  # just added
        return entry

    def add_dir(
        self, local_path: str | os.PathLike[str], name: str | None = None, policy: str = "mutable"
    ) -> None:
        """Add every file under ``local_path``, under the directory ``name`` (default: the
        artifact root): ``add_dir("images")`` stores ``cat.png``, ``add_dir("images",
        name="images")`` stores ``images/cat.png``.

        ``policy="mutable"`` copies and hashes the tree now; ``"immutable"`` records only
        the directory, which the daemon lists and hashes later.
        """
        self._check_draft("add directories to")
        self._local_names.update(self._contents.add_dir(local_path, name, policy))

    def new_file(
        self, name: str, mode: str = "x", encoding: str | None = "utf-8"
    ) -> AbstractContextManager[IO[Any]]:
        """Write a new entry ``name``: a context manager yielding a file open for writing.

        The file is written straight into the staging area; when the ``with`` block
        ends it is hashed and becomes the entry, and if the block raises nothing is
        added. ``mode`` is ``"x"`` (the default: fails if the entry exists) or ``"w"``
        (replaces it), with ``"b"`` for bytes.
        """
        self._check_draft("add files to")
        return self._contents.new_file(name, mode, encoding)

    def add_reference(
        self,
        uri: str | AnyEntry,
        name: str | None = None,
        checksum: bool = True,
        max_objects: int | None = None,
    ) -> list[PendingEntry]:
        """Add a reference to ``uri`` (``file://``, ``s3://``, ``gs://``, ``http(s)://``,
        or an entry of another artifact that is a reference: its URI).

        The daemon expands it: one entry for an object or file, one per object under a
        prefix or directory (at most ``max_objects``, default 10,000, or it rejects the
        version). With ``checksum=False`` the URI itself is the entry's digest.

        Returns the entries added, as W&B does: here the reference as one entry under
        its name, since the daemon lists a prefix and hashes its objects only later
        (without blocking the script); after ``wait()`` the manifest has each object.
        """
        self._check_draft("add references to")
        if not isinstance(uri, str):
            # An entry keeps its path as the default name, as W&B's entry references do.
            name = name if name is not None else getattr(uri, "path", None)
            uri = _reference_of(uri)
        entry = self._contents.add_reference(uri, name, checksum, max_objects)
        return list(pending_entries([entry], self._contents.spool_root).values())

    def remove(self, item: str | os.PathLike[str] | AnyEntry) -> None:
        """Remove the entry at path ``item``, or every entry under the directory ``item``.

        Raises:
            EntryNotFoundError: (a ``KeyError``) nothing matches ``item``.
        """
        self._check_draft("remove entries from")
        raw = item if isinstance(item, str | os.PathLike) else item.path
        self._contents.remove(normalize_entry_path(os.fspath(raw)))

    # -- logging (called by Run) and waiting -------------------------------------------

    def _submission(
        self,
        *,
        project: str,
        entity: str | None,
        run: RunInfo | None,
        aliases: list[str],
        tags: list[str],
        spool_root: Path,
        client: DaemonClient,
        action: Action = "log",
        distributed_id: str | None = None,
    ) -> Submission:
        """The submission for this artifact, to be handed over through ``client``.

        Claims the artifact: from here on it is fixed, unless the hand-over fails and
        :meth:`_not_handed_over` makes it a draft again.
        """
        with _LOG_LOCK:
            if not self.is_draft():
                raise ArtifactFinalizedError(
                    f"artifact {self._name!r} was already logged (submission {self._id}); "
                    "an artifact can be logged once. Create a new Artifact for a new version"
                )
            base = self._contents.base_version_id
            if base is not None and action != "log":
                raise InvalidInputError(
                    f"artifact {self._name!r} is a draft of a committed version "
                    "(new_draft()): log it with run.log_artifact(), not as a part of a "
                    "distributed version"
                )
            staged_in = self._contents.spool_root
            if staged_in is not None and staged_in.resolve() != Path(spool_root).resolve():
                raise InvalidInputError(
                    f"artifact {self._name!r} snapshotted its files into the spool "
                    f"{staged_in}, but the run logs to {spool_root}; create the artifact "
                    "after artisync.init() so both use the same artisync home"
                )
            # Again: the dict may have been changed in place since it was set.
            require_json(self._metadata, f"artifact {self._name!r} metadata")
            info = ArtifactInfo(
                name=self._name,
                type=self._type,
                description=self._description,
                metadata=self._metadata,
                aliases=list(dict.fromkeys([*aliases, *self._aliases])),
                tags=list(dict.fromkeys([*tags, *self._tags])),
                ttl_seconds=None if self._ttl is None else self._ttl.total_seconds(),
            )
            self._client = client
        submission = Submission(
            id=self._id,
            # As late as possible: an immutable directory's files must not change after it.
            created_ns=time.time_ns(),
            project=project,
            entity=entity,
            run=run,
            artifact=info,
            entries=self._contents.entries(),
            action=action,
            distributed_id=distributed_id,
            base=None if base is None else BaseInfo(base, self._contents.base_removed()),
        )
        # A big snapshot's entries go to a file of their own (spool.staged_list).
        return staged_list.pack(submission, spool_root)

    def _not_handed_over(self) -> None:
        """The hand-over failed: the artifact is a draft again."""
        self._client = None

    def _handed_over(self) -> None:
        """The daemon has the submission: its snapshots are the daemon's now."""
        if self._contents.staging is not None:
            self._contents.staging.release()

    def wait(self, timeout: float | None = None) -> Artifact:
        """Block until the logged version is committed; return this artifact.

        Then :attr:`version`, :attr:`digest`, :attr:`id`, :attr:`aliases` and
        :attr:`manifest` describe the committed version, and :attr:`state` is
        ``"COMMITTED"``. Content identical to an existing version gives that version
        (with this log's aliases, and ``latest``); a description, metadata or TTL this
        log gave that it does not have is not applied, and a
        :class:`~artisync.errors.SameContentWarning` says so. A part given to
        ``upsert_artifact`` has no version of its own: ``wait()`` returns once the
        daemon has it, and the artifact stays ``"PENDING"``.

        Raises:
            RejectedError: the daemon rejected the version; the message says why.
            TimeoutError: not committed within ``timeout`` seconds (it may be later).
        """
        if self._version is not None:
            return self
        if self._client is None:
            raise ArtisyncError(
                f"artifact {self._name!r} has not been logged: call "
                "run.log_artifact(artifact) before artifact.wait()"
            )
        started = time.monotonic()
        if self._result is None:
            self._result = self._client.wait(self._id, timeout, f"artifact {self._name!r}")
        if self._result.get("status") == "rejected":
            reason = self._result.get("reason") or "the daemon gave no reason"
            self._rejection_raised = True  # run.finish() need not raise it again
            raise RejectedError(str(reason), submission_id=self._id)
        if isinstance(self._result.get("version_id"), str):
            settings = self._client.config
            # By submission: a version deleted since its commit comes back as its
            # tombstone (state "DELETED") rather than as "not found".
            registry = registry_for(settings)
            left = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
            done = patiently(
                lambda: registry.submission_result(self._id),
                seconds=left,
                what=f"reading committed artifact {self._name!r}",
            )
            if done is None:
                raise ArtisyncError(
                    f"the daemon committed artifact {self._name!r} (submission {self._id}) "
                    f"but the registry at {settings.registry} does not know it: does the "
                    "daemon use another registry?"
                )
            if not done.created:
                warn_unapplied(
                    self._name,
                    done.version,
                    description=self._description,
                    metadata=self._metadata,
                    ttl_seconds=None if self._ttl is None else self._ttl.total_seconds(),
                    stacklevel=3,
                )
            self._adopt(done.version, settings)
        return self

    # -- committed versions: edits, lineage, downloads --------------------------------

    def save(self) -> None:
        """Store edits of a committed version's aliases, description, metadata and TTL.

        ``latest`` stays where the registry puts it (on the newest version) whatever
        the list says. On a draft, ``save()`` logs the artifact in the current run,
        as W&B does.
        """
        if self.is_draft():
            run = active_run()
            if run is None:
                raise ArtisyncError(
                    "no active run: call artisync.init() first, then artisync.log_artifact()"
                )
            run.log_artifact(self)
            return
        version, settings = self._require_committed("save")
        require_json(self._metadata, f"artifact {self._name!r} metadata")
        registry = registry_for(settings)
        registry.update_version(
            version.id,
            description=self._description,
            metadata=self._metadata,
            ttl_seconds=None if self._ttl is None else self._ttl.total_seconds(),
        )
        wanted = user_aliases(self._aliases, artifact=self._name)
        self._adopt(registry.set_aliases(version.id, wanted), settings)

    def delete(self, delete_aliases: bool = False) -> None:
        """Delete this version. One that still has aliases (other than ``latest``) is
        refused unless ``delete_aliases=True``. Its number is never reused; its blobs
        go at the next garbage collection if no other version shares them."""
        version, settings = self._require_committed("delete")
        self._version = registry_for(settings).delete_version(
            version.id, delete_aliases=delete_aliases
        )

    def logged_by(self) -> PublicRun[Artifact] | None:
        """The run that logged this version (``None`` if logged outside a run, or in a
        project the caller may not see)."""
        version, settings = self._require_committed("find the run that logged")
        run = registry_for(settings).produced_by(version.id)
        if run is None or run.hidden:
            return None
        return PublicRun(run, settings, Artifact._from_version)

    def used_by(self) -> list[PublicRun[Artifact]]:
        """The runs that used this version, in the order they first used it (those in
        projects the caller may not see left out)."""
        version, settings = self._require_committed("find the runs that used")
        used_by = registry_for(settings).used_by(version.id)
        return [PublicRun(r, settings, Artifact._from_version) for r in used_by if not r.hidden]

    def download(
        self, root: str | os.PathLike[str] | None = None, path_prefix: str | None = None
    ) -> str:
        """Download the version's files into ``root`` (default ``./artifacts/<name>:<vN>``)
        and return it. Every byte is checked against its digest; files already there
        and unchanged since an earlier download are kept as they are."""
        version, settings = self._require_committed("download")
        target = committed.download_root(version, root)
        entries = self.manifest.entries
        committed.download(settings, entries, target, path_prefix)
        return str(target)

    def checkout(self, root: str | os.PathLike[str] | None = None) -> str:
        """Make ``root`` (default ``./artifacts/<name>``) hold exactly this version:
        every file under it that is not an entry is deleted, then the version is
        downloaded into it (unchanged files stay). Returns ``root``, as W&B.

        Raises:
            InvalidInputError: ``root`` is a file.
        """
        version, settings = self._require_committed("check out")
        target = Path(root) if root is not None else Path(committed.ARTIFACTS_DIR) / version.name
        entries = self.manifest.entries
        committed.remove_strays(entries, target)
        committed.download(settings, entries, target, None)
        return str(target)

    def files(self, names: list[str] | None = None, per_page: int = 50) -> ArtifactFiles:
        """The version's files (W&B's ``File`` objects), in path order; only those at
        the paths ``names`` when given. ``per_page`` is W&B's page size, unused here:
        the whole list is the committed manifest, already read."""
        del per_page
        version, settings = self._require_committed("list the files of")
        return ArtifactFiles(self.manifest.entries, version, settings.store, names)

    def link(self, target_path: str, aliases: Iterable[str] | str | None = None) -> Artifact:
        """Link this version into the collection ``target_path``
        (``[entity/]project/collection``: ``model-registry/Classifier``,
        ``wandb-registry-model/Classifier``) with ``aliases`` (and ``latest``); return
        the linked version, which ``Api().artifact("model-registry/Classifier:latest")``
        finds. Linking the same version again moves the aliases to the same linked
        version. A draft is logged in the current run first, and one in flight is
        waited for, as W&B does.

        Raises:
            InvalidInputError: a bad target path or alias.
            TypeConflictError: the target collection has another type.
        """
        target = parse_target(target_path)
        names = link_aliases(aliases)
        self._logged_for_link()
        version, settings = self._require_committed("link")
        linked = commit_link(version, settings, target, names, project=default_project())
        return Artifact._from_version(linked, settings)

    def _logged_for_link(self) -> None:
        """Log a draft in the current run (W&B's ``link`` saves it), then wait for it."""
        if self.is_draft():
            run = active_run()
            if run is None:
                raise ArtisyncError(
                    f"cannot link artifact {self._name!r}: it was never logged and no run "
                    "is active; call artisync.init() first (link then logs it), or log it "
                    "with run.log_artifact() and link the result"
                )
            run.log_artifact(self)
        self.wait()

    def verify(self, root: str | os.PathLike[str] | None = None) -> None:
        """Check that ``root`` holds exactly this version's files, re-hashing each.

        As W&B's, references whose files cannot be checked by an MD5 (S3 and HTTP
        references keep their server's ETag) are skipped, with a warning.

        Raises:
            VerificationError: listing every missing, changed and unexpected file (a
                ``ValueError``, as W&B raises).
        """
        version, _ = self._require_committed("verify")
        skipped = committed.verify(self.manifest.entries, committed.download_root(version, root))
        if skipped:
            warnings.warn(
                f"skipped verification of {skipped} references: their digest is their "
                "server's ETag, not an MD5 of the bytes (a download checks them against "
                "the server instead)",
                stacklevel=2,
            )

    def add(self, obj: Stored, name: str) -> PendingEntry:
        """Add a ``Table``, ``PartitionedTable`` or ``Image`` as the JSON entry ``name``
        (W&B's ``<name>.table.json``, ``<name>.partitioned-table.json``,
        ``<name>.image-file.json``).

        The files of the images it holds become entries too, where W&B puts them
        (``media/images/...``); if anything fails, nothing of it is added.
        """
        self._check_draft("add objects to")
        path = data_types.entry_path(obj, name)
        target = self.new_file(path, mode="xb")  # checks now that the name is free
        media = MediaPlan(self._contents, self._local_names)
        data = data_types.to_json_bytes(obj, media)
        media.add_files()
        try:
            with target as f:
                f.write(data)
        except BaseException:
            media.undo()
            raise
        self._local_names.update(media.planned_names)
        return self._contents.get(normalize_entry_path(path))  # type: ignore[return-value]

    def get(self, name: str) -> Stored | None:
        """The ``Table``, ``PartitionedTable`` or ``Image`` stored as ``name`` (with or
        without its suffix); ``None`` if there is none, as in W&B.

        The files of the images it holds are downloaded (all at once) into the
        artifact's download root, ``./artifacts/<name>:<vN>`` as in W&B, and each
        ``Image`` reads its file there.
        """
        version, settings = self._require_committed("read tables from")
        entries = self.manifest.entries
        base = normalize_entry_path(name)
        suffixes = tuple(data_types.SUFFIXES.values())
        for path in (base + suffix for suffix in suffixes):
            if path in entries:
                break
        else:
            if base not in entries or not base.endswith(suffixes):
                return None
            path = base

        def read(entry_path: str) -> bytes:
            entry = entries[entry_path]
            assert not isinstance(entry, PendingEntry)  # committed
            return committed.read_entry(settings, entry)

        def under(prefix: str) -> list[str]:
            start = prefix.rstrip("/") + "/"
            return sorted(p for p in entries if p.startswith(start))

        def fetch(paths: Sequence[str]) -> dict[str, str]:
            for media_path in paths:
                if media_path not in entries:
                    raise InvalidInputError(
                        f"{path!r} in {version.qualified_name} names the file {media_path!r}, "
                        "which the version does not hold"
                    )
            root = committed.download_root(version, None).absolute()
            committed.download(settings, {p: entries[p] for p in paths}, root, None)
            return {p: str(root / p) for p in paths}

        return data_types.from_json_bytes(
            read(path), name=path, read_entry=read, list_entries=under, fetch_media=fetch
        )
