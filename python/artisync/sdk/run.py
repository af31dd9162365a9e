"""``Run``: the run that logs artifacts and metrics (:mod:`artisync.sdk.run_init` starts
one).

A run is a record in the registry: its name, group, job type, config, tags, notes,
summary, history rows (``run.log``) and state, and the versions it logged and used.
``log`` and ``log_artifact`` never wait: rows go to the registry from a background
thread (:mod:`artisync.sdk.run_recorder`), artifacts to the daemon, which hashes and
uploads. ``finish()`` waits, as W&B's does, until everything the run logged is
committed, and raises the first rejection.
"""

from __future__ import annotations

import json
import os
import posixpath
import secrets
import string
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final
from urllib.parse import unquote, urlparse

from artisync.config import Config
from artisync.data_types.entries import Stored
from artisync.errors import (
    ArtisyncError,
    InvalidInputError,
    NoDaemonWarning,
    RegistryUnavailableError,
)
from artisync.names import (
    check_list_length,
    check_notes,
    parse_artifact_path,
    validate_alias,
    validate_artifact_name,
    validate_distributed_id,
    validate_entity,
    validate_project,
    validate_run_label,
    validate_run_tag,
    validate_tag,
)
from artisync.registry.run_rules import history_batches
from artisync.sdk import in_flight, log_code
from artisync.sdk.api import Api
from artisync.sdk.artifact import Artifact
from artisync.sdk.client import DaemonClient
from artisync.sdk.collection_types import refuse_type_conflict
from artisync.sdk.current import forget
from artisync.sdk.init_options import InitOptions, Mode
from artisync.sdk.links import commit_link, is_registry_project, link_aliases, parse_target
from artisync.sdk.patience import RUN_PATIENCE, patiently
from artisync.sdk.registry_access import default_entity, registry_for
from artisync.sdk.run_config import Config as RunConfig
from artisync.sdk.run_history import History
from artisync.sdk.run_recorder import Batch, RunRecorder
from artisync.sdk.run_summary import Summary
from artisync.sdk.validation import check_run_id, optional_str, require_json, str_list
from artisync.spool import RunInfo
from artisync.spool.submission import Action

__all__ = ["ResumeError", "Run"]

RUN_ID_LENGTH: Final = 8
_RUN_ID_ALPHABET: Final = string.ascii_lowercase + string.digits
DEFAULT_TYPE: Final = "unspecified"
DEFAULT_PROJECT: Final = "uncategorized"  # W&B's project when none is given
RESUME_FILE: Final = "wandb-resume.json"  # where resume="auto" keeps the last run id
# How often finish() checks that a daemon is still there to commit what it waits for.
_FINISH_CHECK: Final = 2.0


def _checked(value: object, what: str) -> str | None:
    """``None``, or a non-empty str that passes the ``names`` rule for ``what``."""
    text = optional_str(value, what)
    if text is None:
        return None
    return validate_entity(text) if what == "entity" else validate_run_label(text, what)


def _generate_run_id() -> str:
    return "".join(secrets.choice(_RUN_ID_ALPHABET) for _ in range(RUN_ID_LENGTH))


def _checked_tags(tags: Sequence[str]) -> tuple[str, ...]:
    return tuple(validate_run_tag(t) for t in check_list_length(list(tags), "run tags"))


def _auto_resume_id(options: InitOptions) -> tuple[str | None, Path]:
    """``resume="auto"``: the id of the run that last started in ``dir`` and did not
    finish cleanly (W&B keeps it in ``wandb/wandb-resume.json``), and that file."""
    path = options.dir / "wandb" / RESUME_FILE
    try:
        known = json.loads(path.read_text(encoding="utf-8")).get("run_id")
    except (OSError, ValueError, AttributeError):
        known = None
    return (known if isinstance(known, str) else None), path


class ResumeError(ArtisyncError):
    """``init(resume=...)`` asked for a run that does not exist, or must not exist."""


class Run:
    """A run of a training script: what logs artifacts and metrics. Start one with
    :func:`init`."""

    def __init__(
        self,
        options: InitOptions,
        config: Mapping[str, Any],
        *,
        settings: Config,
        sweep: str | None = None,
    ) -> None:
        """``sweep`` is the id of the sweep this run is a trial of (W&B's
        ``run.sweep_id``)."""
        self.project: str = validate_project(options.project or DEFAULT_PROJECT)
        self.entity = _checked(options.entity, "entity")
        self.job_type = _checked(options.job_type, "job_type")
        self.group = _checked(options.group, "group")
        self.mode: Mode = options.mode
        self.resume = options.resume
        self._resume_file: Path | None = None
        run_id = options.id
        if self.resume == "auto" and run_id is None:
            run_id, self._resume_file = _auto_resume_id(options)
        self.id: str = _generate_run_id() if run_id is None else check_run_id(run_id)
        self.name: str = _checked(options.name, "run name") or self.id
        self._tags = _checked_tags(options.tags or ())
        self._notes = check_notes(options.notes)
        self.resumed = False
        self.settings = settings
        self.exit_code: int | None = None
        self.sweep_id = sweep
        self.start_time = time.time()
        self._root_dir = options.dir
        self._dir: Path | None = None
        self._recorder = RunRecorder(self._send, what=f"run {self.id!r}")
        self.config = RunConfig()
        self.config.update(config, allow_val_change=True)  # recorded by _start
        self.config._notify(lambda: self._recorder.changed("config"))
        self.summary = Summary(on_change=lambda: self._recorder.changed("summary"))
        self._history = History(started_at=self.start_time)
        self._client = DaemonClient(settings)
        self._finished = False
        # Whether finish() waits for what the run logged (W&B's finish does; a caller
        # that waits in its own way, such as `artisync log`, turns it off).
        self.wait_at_finish = True
        self._logged: list[Artifact] = []
        self._given = options  # what init was given, kept over a resumed run's own

    def _start(self) -> None:
        """Record the run in the registry, resuming it if it exists and ``resume`` lets."""
        registry = registry_for(self.settings)
        where = f"run {self.id!r} in project {self.project!r}"
        if self.entity is None:
            # W&B's default entity: the settings', or the caller's own on a server.
            self.entity = self._patiently(
                lambda: default_entity(self.settings),
                f"finding the default entity of {where}",
            )
        existing = self._patiently(
            lambda: registry.find_run(self.project, self.id, entity=self.entity),
            f"starting {where}",
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
            self.name = self._given.name or existing.name or self.id
            self.job_type = self._given.job_type or existing.job_type
            self.group = self._given.group or existing.group
            if self._given.tags is None:
                self._tags = tuple(existing.tags)
            if self._given.notes is None:
                self._notes = existing.notes
            self.config = self.config._over(existing.config)
            self.summary = Summary(
                existing.summary, on_change=lambda: self._recorder.changed("summary")
            )
            last = existing.summary.get("_step")
            first = last + 1 if isinstance(last, int) and not isinstance(last, bool) else 0
            self._history = History(first_step=first, started_at=self.start_time)
        if self._resume_file is not None:
            self._remember_for_auto_resume()

        def record() -> None:
            registry.ensure_run(
                self.project,
                self.entity,
                self.id,
                name=self.name,
                job_type=self.job_type,
                group=self.group,
                config=self.config.as_dict(),
                tags=list(self._tags),
                notes=self._notes,
                sweep=self.sweep_id,
            )
            registry.set_run_state(self.project, self.id, "running", entity=self.entity)

        self._patiently(record, f"starting {where}")

    def _patiently(self, call: Callable[[], Any], what: str) -> Any:
        """``call()``, riding out a registry server that is away; offline, a first failure
        is a warning instead (the run's records are sent at ``finish``)."""
        if self.mode != "offline":
            return patiently(call, seconds=RUN_PATIENCE, what=what)
        try:
            return call()
        except RegistryUnavailableError as e:
            warnings.warn(f"{what} offline, without the registry: {e}", stacklevel=4)
            return None

    def _remember_for_auto_resume(self) -> None:
        assert self._resume_file is not None
        self._resume_file.parent.mkdir(parents=True, exist_ok=True)
        self._resume_file.write_text(json.dumps({"run_id": self.id}), encoding="utf-8")

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

    # -- what W&B scripts read and set -------------------------------------------------

    @property
    def finished(self) -> bool:
        """Whether :meth:`finish` was called."""
        return self._finished

    @property
    def path(self) -> str:
        """``project/run_id``: what ``Api().run()`` takes."""
        return f"{self.project}/{self.id}"

    @property
    def tags(self) -> tuple[str, ...]:
        """The run's tags; assign a new tuple to change them (``run.tags += ("x",)``)."""
        return self._tags

    @tags.setter
    def tags(self, value: Sequence[str]) -> None:
        self._tags = _checked_tags(str_list(value, "run tags"))
        self._recorder.changed("run")

    @property
    def notes(self) -> str | None:
        return self._notes

    @notes.setter
    def notes(self, value: str | None) -> None:
        self._notes = check_notes(value)
        self._recorder.changed("run")

    @property
    def step(self) -> int:
        """The step the next ``run.log`` row gets."""
        return self._history.step

    @property
    def disabled(self) -> bool:
        return False

    @property
    def offline(self) -> bool:
        return self.mode == "offline"

    @property
    def dir(self) -> str:
        """A directory of this run's own (``<dir>/wandb/run-<time>-<id>/files``, as W&B
        lays it out), made on first use, for files the script writes beside the run."""
        if self._dir is None:
            stamp = time.strftime("%Y%m%d_%H%M%S", time.localtime(self.start_time))
            kind = "offline-run" if self.offline else "run"
            self._dir = self._root_dir / "wandb" / f"{kind}-{stamp}-{self.id}" / "files"
            self._dir.mkdir(parents=True, exist_ok=True)
        return str(self._dir)

    @property
    def url(self) -> str | None:
        """Where the run is shown: artisync has no web UI, so None."""
        return None

    def log(
        self,
        data: Mapping[str, Any],
        step: int | None = None,
        commit: bool | None = None,
    ) -> None:
        """Record metrics as a history row (W&B's step and ``commit`` rules, see
        :mod:`artisync.sdk.run_history`); the summary keeps each key's last value.
        Returns at once: rows reach the registry from a background thread.

        A ``Table``, ``PartitionedTable`` or ``Image`` value is logged as the artifact
        ``run-<run id>-<key>`` (type ``run_table``, W&B's name for tables a run logs),
        one version per logged value; the row keeps a pointer to it."""
        self._check_running("log")
        if not isinstance(data, Mapping):
            raise InvalidInputError(f"run.log takes a dict, not {type(data).__name__}")
        if any(isinstance(v, Stored) for v in data.values()):
            at = self.step if step is None else step
            data = {k: self._logged_media(k, v, at) for k, v in data.items()}
        rows = self._history.log(data, step=step, commit=commit)
        self._rows_done(rows)

    def _logged_media(self, key: str, value: Any, step: int) -> Any:
        """A media value of ``run.log`` logged as an artifact; what the row keeps of it."""
        if not isinstance(value, Stored):
            return value
        name = validate_artifact_name(f"run-{self.id}-{key}".replace("/", "_"))
        artifact = Artifact(name, "run_table", metadata={"_step": step}, _internal=True)
        entry = artifact.add(value, key.replace("/", "_"))
        self.log_artifact(artifact)
        return {
            "_type": f"{type(value).__name__.lower()}-file",
            "artifact": name,
            "path": entry.path,
        }

    def _rows_done(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self.summary._absorb(row)
        self._recorder.add_rows(rows)

    def define_metric(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """W&B's chart settings for a metric: accepted with no effect (the summary
        keeps the last value of each metric)."""
        del args, kwargs
        return name

    def watch(self, *args: Any, **kwargs: Any) -> None:
        """W&B's gradient logging of a model: accepted with no effect."""

    def unwatch(self, *args: Any, **kwargs: Any) -> None:
        """Accepted with no effect (see :meth:`watch`)."""

    def alert(self, *args: Any, **kwargs: Any) -> None:
        """W&B's Slack/email alerts: accepted with no effect."""

    def mark_preempting(self) -> None:
        """W&B's "this run is about to be preempted": accepted with no effect (a run
        that does not finish stays ``running`` and resumes with ``resume='allow'``)."""

    def save(self, *args: Any, **kwargs: Any) -> bool:
        """W&B's upload of files beside the run: artisync keeps files in artifacts.
        Returns False (nothing was saved) and warns once, saying what to do instead."""
        warnings.warn(
            "run.save() keeps no files in artisync: log them as an artifact "
            "(run.log_artifact(path)) instead",
            stacklevel=2,
        )
        return False

    def _save_main_program(self) -> None:
        """``init(save_code=True)``: the main script as a ``code`` artifact."""
        main = getattr(sys.modules.get("__main__"), "__file__", None)
        if not main or not os.path.isfile(main):
            return
        program = os.path.abspath(main)
        self.log_code(
            os.path.dirname(program),
            include_fn=lambda path: os.path.abspath(path) == program,
        )

    # -- finishing ---------------------------------------------------------------------

    def finish(self, exit_code: int | None = None, quiet: bool | None = None) -> None:
        """End the run, as W&B's ``finish`` does: wait until every artifact it logged is
        committed, send its last history rows and summary, and set its state
        (``finished``, or ``crashed`` for a non-zero exit code).

        Raises:
            RejectedError: an artifact this run logged was rejected (the first one; the
                run is finished all the same).
        """
        del quiet
        if self._finished:
            return
        self._finished = True
        self.exit_code = exit_code
        forget(self)
        rejected = self._wait_for_logged() if self.wait_at_finish else None
        self._rows_done(self._history.close())
        state = "crashed" if exit_code not in (None, 0) else "finished"
        registry = registry_for(self.settings)

        def record() -> None:
            self._recorder.close()
            registry.set_run_state(self.project, self.id, state, entity=self.entity)

        self._patiently(record, f"finishing run {self.id!r}")
        if state == "finished" and self._resume_file is not None:
            self._resume_file.unlink(missing_ok=True)
        if rejected is not None:
            raise rejected

    def _abandon(self) -> None:
        """Stop being the current run and drop what was not sent, without finishing
        (for a process that must not wait: a test harness cleaning up)."""
        self._finished = True
        forget(self)
        self._recorder.abandon()

    def _wait_for_logged(self) -> Exception | None:
        """Wait for every artifact this run logged; the first rejection, if any.

        With no daemon running and none that can be started, nothing would commit them
        while this process waits: warn and return (they commit once a daemon runs)."""
        pending = [a for a in self._logged if a._version is None and not a._rejection_raised]
        if not pending:
            return None
        if self._no_daemon_will_commit(pending):
            return None
        first: Exception | None = None
        for artifact in pending:
            while True:
                try:
                    artifact.wait(timeout=_FINISH_CHECK)
                    break
                except TimeoutError:
                    if self._no_daemon_will_commit(pending):
                        return first
                except ArtisyncError as e:
                    first = first or e
                    break
        return first

    def _no_daemon_will_commit(self, pending: list[Artifact]) -> bool:
        """Whether no daemon answers and none can be started (then nothing commits
        while this process waits): if so, warn with what is left."""
        if self._client.queue_status() is not None or self._client.start_daemon() is None:
            return False
        waiting = sum(1 for a in pending if not a._settled())
        warnings.warn(
            f"run {self.id!r} finishes without waiting for {waiting} logged "
            f"artifact(s): no artisync daemon runs; they wait in {self.settings.spool} "
            "and commit once one starts",
            NoDaemonWarning,
            stacklevel=4,
        )
        return True

    def _send(self, batch: Batch) -> None:
        """The recorder's send: rows first, then the run's changed fields."""
        registry = registry_for(self.settings)
        for rows in history_batches(batch.rows):
            registry.append_history(self.project, self.id, rows, entity=self.entity)
        if "config" in batch.changed or "run" in batch.changed:
            tags_or_notes = "run" in batch.changed
            registry.ensure_run(
                self.project,
                self.entity,
                self.id,
                config=self.config.as_dict() if "config" in batch.changed else None,
                tags=list(self._tags) if tags_or_notes else None,
                notes=self._notes if tags_or_notes else None,
            )
        if "summary" in batch.changed:
            summary = self.summary.as_dict()
            require_json(summary, "run summary")
            registry.set_run_summary(self.project, self.id, summary, entity=self.entity)

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
            self._settle(artifact_or_name)
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

    def _settle(self, name: str) -> None:
        """Wait for this process's in-flight versions of the collection ``name`` names."""
        entity, project, collection, _ = parse_artifact_path(name)
        in_flight.settle(collection, entity=entity or self.entity, project=project or self.project)

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
        # W&B raises a type conflict here, not at wait(): so do we, when the registry knows.
        refuse_type_conflict(self.settings, self.entity, self.project, artifact.name, artifact.type)
        submission = artifact._submission(
            project=self.project,
            entity=self.entity,
            run=RunInfo(self.id, self.name, self.job_type, self.group, self.config.as_dict()),
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
        in_flight.logged(artifact, entity=self.entity, project=self.project)
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
