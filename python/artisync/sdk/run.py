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
import os
import posixpath
import secrets
import string
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final
from urllib.parse import unquote, urlparse

from artisync.config import Config
from artisync.errors import ArtisyncError, InvalidInputError
from artisync.names import validate_alias, validate_project, validate_tag
from artisync.sdk.artifact import Artifact
from artisync.sdk.client import DaemonClient
from artisync.sdk.validation import (
    check_run_id,
    optional_str,
    require_json,
    require_json_object,
    str_list,
)
from artisync.spool import RunInfo

__all__ = ["Run", "active_config", "current_run", "finish", "init", "log_artifact"]

RUN_ID_LENGTH: Final = 8
_RUN_ID_ALPHABET: Final = string.ascii_lowercase + string.digits
# W&B's accepted `resume` values.
_RESUME_VALUES: Final = (None, True, False, "allow", "must", "never", "auto")
DEFAULT_TYPE: Final = "unspecified"

_lock = threading.Lock()
_current: Run | None = None


def current_run() -> Run | None:
    """The run the last ``artisync.init()`` started, unless it has finished."""
    return _current


def active_config() -> Config:
    """The current run's configuration, or the default one (``ARTISYNC_HOME``)."""
    run = _current
    return run.settings if run is not None else Config.load()


def _generate_run_id() -> str:
    return "".join(secrets.choice(_RUN_ID_ALPHABET) for _ in range(RUN_ID_LENGTH))


def _run_config(config: object) -> dict[str, Any]:
    if config is None:
        return {}
    if isinstance(config, argparse.Namespace):
        config = vars(config)
    return require_json_object(config, "run config")


def init(
    project: str,
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

    ``id`` defaults to 8 random lowercase letters and digits, as in W&B; ``name``
    defaults to the id. ``home`` is the artisync home (default ``ARTISYNC_HOME``):
    where the spool and the daemon's socket are. ``resume`` is recorded for now.
    """
    global _current
    settings = Config.load(None if home is None else Path(home))
    run = Run(
        project,
        entity=entity,
        job_type=job_type,
        group=group,
        name=name,
        id=id,
        resume=resume,
        config=config,
        settings=settings,
    )
    with _lock:
        previous, _current = _current, run
    if previous is not None:
        previous.finish()
    return run


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
        self.entity = optional_str(entity, "entity")
        self.job_type = optional_str(job_type, "job_type")
        self.group = optional_str(group, "group")
        self.id: str = _generate_run_id() if id is None else check_run_id(id)
        self.name: str = optional_str(name, "run name") or self.id
        if resume not in _RESUME_VALUES:
            raise InvalidInputError(
                f"Invalid resume {resume!r}: use one of {', '.join(map(repr, _RESUME_VALUES))}"
            )
        self.resume = resume
        self.config: dict[str, Any] = _run_config(config)
        self.settings = settings
        self.exit_code: int | None = None
        self._client = DaemonClient(settings)
        self._finished = False
        self._logged: list[Artifact] = []

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

    def finish(self, exit_code: int | None = None) -> None:
        """End the run. Logged artifacts are the daemon's already: nothing is waited for."""
        global _current
        if self._finished:
            return
        self._finished = True
        self.exit_code = exit_code
        with _lock:
            if _current is self:
                _current = None

    def logged_artifacts(self) -> list[Artifact]:
        """The artifacts this run logged, in the order it logged them."""
        return list(self._logged)

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
        if self._finished:
            raise ArtisyncError(
                f"run {self.id!r} is finished: log artifacts before run.finish(), or start "
                "another run with artisync.init()"
            )
        alias_list = ["latest"] if aliases is None else str_list(aliases, "aliases", single=True)
        alias_list = [validate_alias(a) for a in alias_list]
        tag_list = (
            [] if tags is None else [validate_tag(t) for t in str_list(tags, "tags", single=True)]
        )
        artifact = self._artifact(artifact_or_path, name, type)
        require_json(self.config, "run config")
        submission = artifact._submission(
            project=self.project,
            entity=self.entity,
            run=RunInfo(self.id, self.name, self.job_type, self.group, dict(self.config)),
            aliases=alias_list,
            tags=tag_list,
            spool_root=self.settings.spool,
            client=self._client,
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


def _require_run(action: str) -> Run:
    run = _current
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


def finish(exit_code: int | None = None) -> None:
    """Finish the current run, if there is one."""
    run = _current
    if run is not None:
        run.finish(exit_code=exit_code)
