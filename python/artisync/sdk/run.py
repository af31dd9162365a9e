"""``artisync.init`` and ``Run``: the run that logs artifacts, and the current run.

As in W&B, ``init`` starts a run and makes it the current one, so module-level
``artisync.log_artifact(...)`` acts on it; a new ``init`` finishes the previous run
(W&B's ``reinit="finish_previous"``, its default outside notebooks). A run needs no
server: it is the name, project and config recorded with every version it logs, and the
artisync home (spool, socket) its submissions go to.

``log_artifact`` returns as soon as the submission is the daemon's: it never hashes or
uploads (the ``mutable`` snapshots were taken when the files were added).
"""

from __future__ import annotations

import argparse
import atexit
import os
import posixpath
import secrets
import string
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final
from urllib.parse import unquote, urlparse

from artisync.config import Config
from artisync.errors import ArtisyncError, InvalidInputError
from artisync.names import (
    check_list_length,
    validate_alias,
    validate_distributed_id,
    validate_entity,
    validate_project,
    validate_run_label,
    validate_tag,
)
from artisync.sdk import log_code
from artisync.sdk.api import Api
from artisync.sdk.artifact import Artifact
from artisync.sdk.client import DaemonClient
from artisync.sdk.collection_types import refuse_type_conflict
from artisync.sdk.current import active_run, forget, make_current
from artisync.sdk.links import commit_link, is_registry_project, link_aliases, parse_target
from artisync.sdk.patience import RUN_PATIENCE, patiently
from artisync.sdk.registry_access import default_entity, registry_for
from artisync.sdk.validation import (
    check_run_id,
    optional_str,
    require_json,
    require_json_object,
    str_list,
)
from artisync.spool import RunInfo
from artisync.spool.submission import Action

__all__ = [
    "ResumeError",
    "Run",
    "current_run",
    "finish",
    "init",
    "log_artifact",
    "use_artifact",
]

RUN_ID_LENGTH: Final = 8
_RUN_ID_ALPHABET: Final = string.ascii_lowercase + string.digits
# W&B's accepted `resume` values.
_RESUME_VALUES: Final = (None, True, False, "allow", "must", "never", "auto")
DEFAULT_TYPE: Final = "unspecified"
DEFAULT_PROJECT: Final = "uncategorized"  # W&B's project when none is given
PROJECT_ENV: Final = "ARTISYNC_PROJECT"

_exit_hook_installed = threading.Event()


def current_run() -> Run | None:
    """The run the last ``artisync.init()`` started, unless it has finished."""
    run = active_run()
    return run if isinstance(run, Run) else None


def _checked(value: object, what: str) -> str | None:
    """``None``, or a non-empty str that passes the ``names`` rule for ``what``."""
    text = optional_str(value, what)
    if text is None:
        return None
    return validate_entity(text) if what == "entity" else validate_run_label(text, what)


def _generate_run_id() -> str:
    return "".join(secrets.choice(_RUN_ID_ALPHABET) for _ in range(RUN_ID_LENGTH))


def _run_config(config: object) -> dict[str, Any]:
    if config is None:
        return {}
    if isinstance(config, argparse.Namespace):
        config = vars(config)
    return require_json_object(config, "run config")


def init(
    project: str | None = None,
    entity: str | None = None,
    job_type: str | None = None,
    group: str | None = None,
    name: str | None = None,
    id: str | None = None,
    resume: bool | str | None = None,
    config: Mapping[str, Any] | argparse.Namespace | None = None,
    *,
    home: str | os.PathLike[str] | None = None,
) -> Run:
    """Start a run and make it the current one; usable as a context manager.

    ``project`` defaults to ``ARTISYNC_PROJECT``, else ``"uncategorized"`` (W&B's
    default). ``id`` defaults to 8 random lowercase letters and digits, as in W&B;
    ``name`` defaults to the id. ``home`` is the artisync home (default
    ``ARTISYNC_HOME``): where the spool, the daemon's socket and the registry are.

    ``resume``: with ``"allow"`` (or ``True``, ``"auto"``, ``None``) an existing run
    with this ``id`` is continued, keeping the name, group, job type, config and summary
    it had unless given again; ``"must"`` fails when there is no such run, ``"never"``
    (or ``False``) when there is one.

    Raises:
        ResumeError: ``resume`` says the run must (not) exist, and it does not (does).
    """
    settings = Config.load(None if home is None else Path(home))
    run = Run(
        project or os.environ.get(PROJECT_ENV) or DEFAULT_PROJECT,
        entity=entity,
        job_type=job_type,
        group=group,
        name=name,
        id=id,
        resume=resume,
        config=config,
        settings=settings,
    )
    run._start()
    previous = make_current(run)
    if previous is not None:
        previous.finish()
    if not _exit_hook_installed.is_set():
        _exit_hook_installed.set()
        atexit.register(finish)
    return run


class ResumeError(ArtisyncError):
    """``init(resume=...)`` asked for a run that does not exist, or must not exist."""


class Run:
    """A run of a training script: what logs artifacts. Start one with :func:`init`."""

    def __init__(
        self,
        project: str,
        *,
        entity: str | None = None,
        job_type: str | None = None,
        group: str | None = None,
        name: str | None = None,
        id: str | None = None,
        resume: bool | str | None = None,
        config: Mapping[str, Any] | argparse.Namespace | None = None,
        settings: Config,
    ) -> None:
        self.project: str = validate_project(project)
        self.entity = _checked(entity, "entity")
        self.job_type = _checked(job_type, "job_type")
        self.group = _checked(group, "group")
        self.id: str = _generate_run_id() if id is None else check_run_id(id)
        self.name: str = _checked(name, "run name") or self.id
        if resume not in _RESUME_VALUES:
            raise InvalidInputError(
                f"Invalid resume {resume!r}: use one of {', '.join(map(repr, _RESUME_VALUES))}"
            )
        self.resume = resume
        self.resumed = False
        self.config: dict[str, Any] = _run_config(config)
        self.summary: dict[str, Any] = {}
        self.settings = settings
        self.exit_code: int | None = None
        self._client = DaemonClient(settings)
        self._finished = False
        self._logged: list[Artifact] = []
        self._given = {"name": name, "job_type": job_type, "group": group}

    def _start(self) -> None:
        """Record the run in the registry, resuming it if it exists and ``resume`` lets."""
        registry = registry_for(self.settings)
        where = f"run {self.id!r} in project {self.project!r}"
        if self.entity is None:
            # W&B's default entity: the settings', or the caller's own on a server.
            self.entity = patiently(
                lambda: default_entity(self.settings),
                seconds=RUN_PATIENCE,
                what=f"finding the default entity of {where}",
            )
        existing = patiently(
            lambda: registry.find_run(self.project, self.id, entity=self.entity),
            seconds=RUN_PATIENCE,
            what=f"starting {where}",
        )
        if existing is None and self.resume == "must":
            raise ResumeError(
                f"resume='must' but there is no {where}: check the id, or use resume='allow' "
                "to start it"
            )
        if existing is not None and self.resume in ("never", False):
            raise ResumeError(
                f"resume={self.resume!r} but {where} exists already: pick another id, or "
                "use resume='allow' to continue it"
            )
        if existing is not None:
            self.resumed = True
            self.name = self._given["name"] or existing.name or self.id
            self.job_type = self._given["job_type"] or existing.job_type
            self.group = self._given["group"] or existing.group
            self.config = {**existing.config, **self.config}
            self.summary = dict(existing.summary)

        def record() -> None:
            registry.ensure_run(
                self.project,
                self.entity,
                self.id,
                name=self.name,
                job_type=self.job_type,
                group=self.group,
                config=self.config,
            )
            registry.set_run_state(self.project, self.id, "running", entity=self.entity)

        patiently(record, seconds=RUN_PATIENCE, what=f"starting {where}")

    def __repr__(self) -> str:
        state = "finished" if self._finished else "running"
        return f"<Run {self.project}/{self.id} ({self.name}, {state})>"

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.finish(exit_code=0 if exc_type is None else 1)

    @property
    def finished(self) -> bool:
        """Whether :meth:`finish` was called."""
        return self._finished

    @property
    def path(self) -> str:
        """``project/run_id``: what ``Api().run()`` takes."""
        return f"{self.project}/{self.id}"

    def log(self, data: Mapping[str, Any]) -> None:
        """Record metrics; as in W&B, the summary keeps each key's last value."""
        if not isinstance(data, Mapping):
            raise InvalidInputError(f"run.log takes a dict, not {type(data).__name__}")
        self.summary.update(data)

    def finish(self, exit_code: int | None = None) -> None:
        """End the run: store its summary and state (``finished``, or ``crashed`` for a
        non-zero exit code). Logged artifacts are the daemon's already: nothing waits."""
        if self._finished:
            return
        self._finished = True
        self.exit_code = exit_code
        forget(self)
        require_json(self.summary, "run summary")
        registry = registry_for(self.settings)
        state = "crashed" if exit_code not in (None, 0) else "finished"

        def record() -> None:
            registry.set_run_summary(self.project, self.id, self.summary, entity=self.entity)
            registry.set_run_state(self.project, self.id, state, entity=self.entity)

        patiently(record, seconds=RUN_PATIENCE, what=f"finishing run {self.id!r}")

    # -- lineage -----------------------------------------------------------------------

    def logged_artifacts(self) -> list[Artifact]:
        """The committed versions this run logged (or wrote parts of), oldest first.

        A version appears once the daemon has committed it (``artifact.wait()``)."""
        registry = registry_for(self.settings)
        versions = registry.logged_by_run(self.id, project=self.project, entity=self.entity)
        return [Artifact._from_version(v, self.settings) for v in versions if not v.hidden]

    def used_artifacts(self) -> list[Artifact]:
        """The versions this run used (``use_artifact``), in the order it used them."""
        registry = registry_for(self.settings)
        versions = registry.used_by_run(self.id, project=self.project, entity=self.entity)
        return [Artifact._from_version(v, self.settings) for v in versions if not v.hidden]

    def use_artifact(
        self,
        artifact_or_name: Artifact | str,
        type: str | None = None,
        aliases: list[str] | None = None,
        use_as: str | None = None,
    ) -> Artifact:
        """Record that this run uses a version, and return it (committed).

        ``artifact_or_name`` is ``[[entity/]project/]name[:alias_or_vN]`` (this run's
        project and ``latest`` by default) or an artifact that was logged (it is waited
        for). ``type``, when given, must be the artifact's type. ``aliases`` and
        ``use_as`` are accepted for W&B compatibility and not used.
        """
        del aliases, use_as
        self._check_running("use artifacts")
        if isinstance(artifact_or_name, Artifact):
            artifact = artifact_or_name
            if artifact.is_draft():
                raise InvalidInputError(
                    f"artifact {artifact.name!r} was never logged: log it first "
                    "(run.log_artifact(artifact), then artifact.wait()), or pass its name"
                )
            artifact.wait()
            if type is not None and artifact.type != type:
                raise InvalidInputError(
                    f"artifact {artifact.name!r} has type {artifact.type!r}, not {type!r}"
                )
        elif isinstance(artifact_or_name, str):
            api = Api(home=self.settings.home, project=self.project, entity=self.entity)
            artifact = api.artifact(artifact_or_name, type)
        else:
            raise InvalidInputError(
                "use_artifact takes an artifact name such as 'dataset:latest' or an "
                f"Artifact, not {artifact_or_name.__class__.__name__}"
            )
        version_id = artifact.id
        assert version_id is not None  # committed
        registry_for(self.settings).record_use(
            self.id, version_id, project=self.project, entity=self.entity
        )
        return artifact

    def log_code(
        self,
        root: str | os.PathLike[str] = ".",
        name: str | None = None,
        include_fn: Callable[..., bool] | None = None,
        exclude_fn: Callable[..., bool] | None = None,
    ) -> Artifact | None:
        """Log the source files under ``root`` as a ``code`` artifact (see
        :mod:`artisync.sdk.log_code`); ``None`` when no file matched."""
        self._check_running("log code")
        return log_code.log_code(
            self,
            root,
            name,
            include_fn or log_code.default_include,
            exclude_fn or log_code.default_exclude,
        )

    def _check_running(self, action: str) -> None:
        if self._finished:
            raise ArtisyncError(
                f"run {self.id!r} is finished: {action} before run.finish(), or start "
                "another run with artisync.init()"
            )

    # -- logging -----------------------------------------------------------------------

    def log_artifact(
        self,
        artifact_or_path: Artifact | str | os.PathLike[str],
        name: str | None = None,
        type: str | None = None,
        aliases: list[str] | str | None = None,
        tags: list[str] | str | None = None,
    ) -> Artifact:
        """Log an artifact (or a file, directory or reference URI) as a new version.

        Returns at once, with the submission handed to the daemon (or queued in the
        spool if the daemon is down); ``artifact.wait()`` blocks until it is committed.
        For a path, ``name`` defaults to its basename and ``type`` to
        ``"unspecified"``; for an :class:`Artifact` both are ignored, as in W&B.
        ``aliases`` default to ``["latest"]`` (``latest`` always follows the newest
        version anyway).

        Raises:
            ArtifactFinalizedError: the artifact was logged before.
            InvalidInputError: a bad alias, tag, path or metadata value, named.
        """
        artifact = self._artifact(artifact_or_path, name, type)
        return self._hand_over(artifact, aliases, tags, "log", None)

    def upsert_artifact(
        self,
        artifact_or_path: Artifact | str | os.PathLike[str],
        name: str | None = None,
        type: str | None = None,
        aliases: list[str] | str | None = None,
        distributed_id: str | None = None,
    ) -> Artifact:
        """Add a part to the version that several runs build together (W&B's parallel
        writers); the version is committed by :meth:`finish_artifact`.

        ``distributed_id`` names the version being built; it defaults to the run's
        ``group``. Parts are merged at finish: the same path with different content
        from two parts rejects the version, naming the path.
        """
        return self._distributed(artifact_or_path, name, type, aliases, distributed_id, "upsert")

    def finish_artifact(
        self,
        artifact_or_path: Artifact | str | os.PathLike[str],
        name: str | None = None,
        type: str | None = None,
        aliases: list[str] | str | None = None,
        distributed_id: str | None = None,
    ) -> Artifact:
        """Commit the version the parts of ``distributed_id`` (default: the run's
        ``group``) make, with this artifact's own entries added, once every part logged
        before this call is in. An upsert after this starts the next version."""
        return self._distributed(artifact_or_path, name, type, aliases, distributed_id, "finish")

    def _distributed(
        self,
        artifact_or_path: Artifact | str | os.PathLike[str],
        name: str | None,
        type_: str | None,
        aliases: list[str] | str | None,
        given: str | None,
        action: Action,
    ) -> Artifact:
        """``upsert_artifact`` / ``finish_artifact``: a part or a finish of ``given``."""
        artifact = self._artifact(artifact_or_path, name, type_)
        part_of = self._distributed_id(given, artifact, f"{action}_artifact")
        return self._hand_over(artifact, aliases, None, action, part_of)

    def _distributed_id(self, given: str | None, artifact: Artifact, call: str) -> str:
        chosen = given if given is not None else self.group
        if chosen is None:
            raise InvalidInputError(
                f"{call} of artifact {artifact.name!r} needs a distributed_id, or a run group "
                "(artisync.init(group=...)) to use as one: every writer of the version must "
                "pass the same value"
            )
        return validate_distributed_id(chosen)

    def _hand_over(
        self,
        artifact: Artifact,
        aliases: list[str] | str | None,
        tags: list[str] | str | None,
        action: Action,
        distributed_id: str | None,
    ) -> Artifact:
        self._check_running("log artifacts")
        alias_list = ["latest"] if aliases is None else str_list(aliases, "aliases", single=True)
        alias_list = [validate_alias(a) for a in check_list_length(alias_list, "aliases")]
        tag_list = [] if tags is None else str_list(tags, "tags", single=True)
        tag_list = [validate_tag(t) for t in check_list_length(tag_list, "tags")]
        require_json(self.config, "run config")
        # W&B raises a type conflict here, not at wait(): so do we, when the registry knows.
        refuse_type_conflict(self.settings, self.entity, self.project, artifact.name, artifact.type)
        submission = artifact._submission(
            project=self.project,
            entity=self.entity,
            run=RunInfo(self.id, self.name, self.job_type, self.group, dict(self.config)),
            aliases=alias_list,
            tags=tag_list,
            spool_root=self.settings.spool,
            client=self._client,
            action=action,
            distributed_id=distributed_id,
        )
        try:
            self._client.hand_over(submission)
        except BaseException:
            artifact._not_handed_over()
            raise
        artifact._handed_over()
        self._logged.append(artifact)
        return artifact

    def _artifact(
        self,
        artifact_or_path: Artifact | str | os.PathLike[str],
        name: str | None,
        type_: str | None,
    ) -> Artifact:
        """The artifact to log: the one given, or one made of a path as W&B makes it."""
        if isinstance(artifact_or_path, Artifact):
            return artifact_or_path
        if not isinstance(artifact_or_path, str | os.PathLike):
            raise InvalidInputError(
                f"log_artifact takes an Artifact or a path, not {type(artifact_or_path).__name__}"
            )
        path = os.fspath(artifact_or_path)
        is_uri = "://" in path
        if is_uri:
            default = posixpath.basename(unquote(urlparse(path).path).rstrip("/"))
        else:
            default = os.path.basename(os.path.normpath(path))
        try:
            artifact = Artifact(name or default, type_ or DEFAULT_TYPE)
        except InvalidInputError as e:
            if name is not None:
                raise
            raise InvalidInputError(
                f"{e} (the name was taken from the path {path!r}; pass name= to log_artifact)"
            ) from None
        if is_uri:
            artifact.add_reference(path)
        elif os.path.isdir(path):
            artifact.add_dir(path)
        elif os.path.isfile(path):
            artifact.add_file(path)
        else:
            raise InvalidInputError(
                f"Cannot log {path!r}: no such file or directory (log_artifact takes an "
                "Artifact, a file, a directory or a reference URI such as 's3://bucket/key')"
            )
        return artifact

    # -- links -------------------------------------------------------------------------

    def link_artifact(
        self,
        artifact: Artifact,
        target_path: str,
        aliases: list[str] | None = None,
    ) -> Artifact:
        """Link ``artifact`` into the collection ``target_path`` with ``aliases`` (and
        ``latest``); return the linked version (see :meth:`Artifact.link`). A draft is
        logged in this run first; one in flight is waited for. A target without a
        project is in this run's project; a target that is not a registry
        (``wandb-registry-*``) and names no entity is in this run's entity, as W&B.
        """
        self._check_running("link artifacts")
        if not isinstance(artifact, Artifact):
            raise InvalidInputError(
                f"link_artifact takes an Artifact, not {type(artifact).__name__}; fetch a "
                "logged one with run.use_artifact('name:alias')"
            )
        target = parse_target(target_path)
        names = link_aliases(aliases)
        if artifact.is_draft():
            self.log_artifact(artifact)
        artifact.wait()
        version, settings = artifact._require_committed("link")
        project = target.project or self.project
        if target.entity is None and not is_registry_project(project):
            target = target._replace(entity=self.entity)
        linked = commit_link(version, settings, target, names, project=project)
        return Artifact._from_version(linked, settings)


def _require_run(action: str) -> Run:
    run = current_run()
    if run is None:
        raise ArtisyncError(f"no active run: call artisync.init() first, then {action}")
    return run


def log_artifact(
    artifact_or_path: Artifact | str | os.PathLike[str],
    name: str | None = None,
    type: str | None = None,
    aliases: list[str] | str | None = None,
    tags: list[str] | str | None = None,
) -> Artifact:
    """:meth:`Run.log_artifact` on the current run (the last :func:`init`)."""
    run = _require_run("artisync.log_artifact()")
    return run.log_artifact(artifact_or_path, name=name, type=type, aliases=aliases, tags=tags)


def use_artifact(artifact_or_name: Artifact | str, type: str | None = None) -> Artifact:
    """:meth:`Run.use_artifact` on the current run."""
    return _require_run("artisync.use_artifact()").use_artifact(artifact_or_name, type)


def finish(exit_code: int | None = None) -> None:
    """Finish the current run, if there is one."""
    run = current_run()
    if run is not None:
        run.finish(exit_code=exit_code)
