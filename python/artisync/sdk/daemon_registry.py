"""The registry a training script uses: reads from ``registry.db``, writes through the daemon.

On a shared node ``registry.db`` belongs to the daemon's user and its group may only
read it (0640), so that no job rewrites the registry behind the daemon's back. A job
reads the file directly (fast, and WAL lets it read beside the daemon's commits) and
sends the writes that belong to it (its run and its history, the sweeps it creates, the
versions it uses, edits of committed versions, links of them into other collections)
to the daemon: ``POST /v1/registry/<method>`` on the socket
(``daemon/registry_routes.py``). The daemon's refusals come back as the exceptions
``SqliteRegistry`` raises (``NotFoundError``, ``TypeConflictError``,
``InvalidInputError``), so callers cannot tell the two apart.

When the daemon does not answer, a registry file that is this user's own (the single
user's ``~/.local/share/artisync``) is written directly, as before daemons took the
writes: nothing a single user does needs the daemon. Anyone else is told to start it.
Every client write is idempotent (setting a state, replacing aliases, recording a use
twice, writing a history step again, creating a sweep with the same config), so a write
repeated directly after a daemon died mid-answer changes nothing.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

from artisync.errors import InvalidInputError, NotFoundError, RegistryError, TypeConflictError
from artisync.names import validate_sweep_id
from artisync.registry import (
    UNSET,
    Collection,
    CommitResult,
    NewPart,
    NewVersion,
    Part,
    Project,
    Run,
    SqliteRegistry,
    Sweep,
    Unset,
    Version,
)
from artisync.registry.run_rules import check_run_fields, history_chunks, history_rows, sweep_config
from artisync.sdk.client import UnixHTTPConnection

__all__ = ["STARTING_WAIT", "WRITE_TIMEOUT", "DaemonRegistry"]

WRITE_TIMEOUT: Final = 60.0
"""How long one write may take: the daemon may wait for SQLite's write lock (30 s)."""

STARTING_WAIT: Final = 10.0
"""How long a write waits for a daemon that answers "starting" before giving up."""

_R = TypeVar("_R")
# The daemon's answers that keep the registry's exception types.
_ERRORS: Final[Mapping[int, type[RegistryError | InvalidInputError]]] = {
    400: InvalidInputError,
    404: NotFoundError,
    409: TypeConflictError,
}


class _Unreachable(Exception):
    """Nothing (or nothing that takes registry writes) answers on the socket."""


def _is_ours(path: Path) -> bool:
    """Whether this process owns, and may write, the registry file (or, before it
    exists, the nearest directory that would hold it): the single-user case."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return probe.stat().st_uid == os.geteuid() and os.access(probe, os.W_OK)
    except OSError:
        return False


class DaemonRegistry:
    """A :class:`~artisync.registry.contract.Registry` that reads ``path`` itself and
    writes through the daemon listening on ``socket_path``.

    ``commit_version`` and ``add_part`` are the daemon's alone and raise
    ``RegistryError`` here: a client commits by logging an artifact.
    """

    def __init__(self, path: Path, socket_path: Path) -> None:
        self.path = path
        self.socket_path = socket_path
        self.ours = _is_ours(path)
        self._lock = threading.Lock()
        self._local: SqliteRegistry | None = None

    def close(self) -> None:
        """Close the registry file's connections."""
        with self._lock:
            local, self._local = self._local, None
        if local is not None:
            local.close()

    # -- the file, read directly ----------------------------------------------------------

    def _file(self) -> SqliteRegistry:
        """The registry file: read-write when it is ours (created and migrated as
        before), read-only when it is the daemon's."""
        with self._lock:
            if self._local is None:
                if self.ours:
                    self._local = SqliteRegistry(self.path)
                elif not self.path.exists():
                    raise RegistryError(
                        f"no registry at {self.path} yet, and only the artisync daemon may "
                        f"create it: {self._start_the_daemon()}"
                    )
                else:
                    self._local = SqliteRegistry(self.path, read_only=True)
            return self._local

    def _start_the_daemon(self) -> str:
        return (
            f"start the daemon that listens on {self.socket_path} (`systemctl start "
            "artisync` on a shared node, or `artisync daemon`), then try again"
        )

    # -- writes, through the daemon -------------------------------------------------------

    def _post(self, method: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            payload = json.dumps(body, allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"{method}: the arguments must hold only JSON values (str, int, float, bool, "
                f"None, lists, dicts with str keys; no NaN or infinity): {exc}"
            ) from exc
        conn = UnixHTTPConnection(self.socket_path, WRITE_TIMEOUT)
        try:
            conn.request(
                "POST",
                f"/v1/registry/{method}",
                body=payload,
                headers={"Content-Type": "application/json"},
            )
            response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise _Unreachable(str(exc)) from exc
        finally:
            conn.close()
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            # A 404 page from a daemon of an older artisync, which has no such route.
            raise _Unreachable(f"HTTP {response.status} without a JSON answer")
        return response.status, answer

    def _write(
        self,
        method: str,
        body: dict[str, Any],
        direct: Callable[[SqliteRegistry], _R],
        decode: Callable[[Any], _R],
    ) -> _R:
        deadline = time.monotonic() + STARTING_WAIT
        while True:
            try:
                status, answer = self._post(method, body)
            except _Unreachable as exc:
                if self.ours:
                    return direct(self._file())
                raise RegistryError(
                    f"cannot {method.replace('_', ' ')}: the artisync daemon does not answer "
                    f"on {self.socket_path} ({exc}), and only the daemon may write the "
                    f"registry {self.path}, which is not this user's: {self._start_the_daemon()}"
                ) from None
            if status != 503 or time.monotonic() >= deadline:
                break
            time.sleep(0.05)  # the daemon is opening its registry: a moment, not a retry
        if status == 200:
            return decode(answer.get("result"))
        message = str(answer.get("error") or f"HTTP {status}")
        raise _ERRORS.get(status, RegistryError)(message)

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
        body: dict[str, Any] = {
            "project": project,
            "entity": entity,
            "run_id": run_id,
            "name": name,
            "job_type": job_type,
            "group": group,
            "config": None if config is None else dict(config),
        }
        # Sent only when given: a daemon older than run tags still takes a plain run.
        extra = check_run_fields(run_id, tags, notes, sweep)
        body.update({key: value for key, value in extra.items() if value is not None})
        return self._write(
            "ensure_run",
            body,
            lambda r: r.ensure_run(
                project,
                entity,
                run_id,
                name=name,
                job_type=job_type,
                group=group,
                config=config,
                tags=tags,
                notes=notes,
                sweep=sweep,
            ),
            Run.from_json,
        )

    def append_history(
        self,
        project: str,
        run_id: str,
        rows: Sequence[Mapping[str, Any]],
        entity: str | None = None,
    ) -> None:
        """Store history rows of a run; a row whose ``_step`` is stored replaces it.

        Checked here first; a large batch goes to the daemon as several requests (its
        socket takes bodies up to 1 MiB), which a step's idempotency makes safe.
        """
        checked = history_rows(rows, run=run_id)
        for chunk in history_chunks(checked) if checked else [[]]:
            self._append_chunk(project, run_id, [json.loads(text) for _, text in chunk], entity)

    def _append_chunk(
        self, project: str, run_id: str, rows: list[dict[str, Any]], entity: str | None
    ) -> None:
        body = {"project": project, "run_id": run_id, "entity": entity, "rows": rows}
        self._write(
            "append_history",
            body,
            lambda r: r.append_history(project, run_id, rows, entity),
            lambda _: None,
        )

    def create_sweep(
        self,
        project: str,
        sweep_id: str,
        config: Mapping[str, Any],
        entity: str | None = None,
    ) -> Sweep:
        """Create a sweep, or return it when it exists with the same config."""
        sweep_config(config, sweep_id=validate_sweep_id(sweep_id))  # refused as locally
        body = {"project": project, "sweep_id": sweep_id, "config": dict(config), "entity": entity}
        return self._write(
            "create_sweep",
            body,
            lambda r: r.create_sweep(project, sweep_id, config, entity),
            Sweep.from_json,
        )

    def set_run_summary(
        self,
        project: str,
        run_id: str,
        summary: Mapping[str, Any],
        entity: str | None = None,
    ) -> Run:
        """Replace a run's summary."""
        body = {"project": project, "run_id": run_id, "summary": summary, "entity": entity}
        return self._write(
            "set_run_summary",
            body,
            lambda r: r.set_run_summary(project, run_id, summary, entity=entity),
            Run.from_json,
        )

    def set_run_state(
        self, project: str, run_id: str, state: str, entity: str | None = None
    ) -> Run:
        """Set a run's state (``running``, ``finished``, ``crashed``)."""
        body = {"project": project, "run_id": run_id, "state": state, "entity": entity}
        return self._write(
            "set_run_state",
            body,
            lambda r: r.set_run_state(project, run_id, state, entity=entity),
            Run.from_json,
        )

    def set_aliases(self, version_id: str, aliases: Sequence[str]) -> Version:
        """Replace a version's user aliases, moving them from other versions."""
        body = {"version_id": version_id, "aliases": list(aliases)}
        return self._write(
            "set_aliases", body, lambda r: r.set_aliases(version_id, aliases), Version.from_json
        )

    def update_version(
        self,
        version_id: str,
        *,
        description: str | Unset | None = UNSET,
        metadata: Mapping[str, Any] | Unset = UNSET,
        ttl_seconds: float | Unset | None = UNSET,
    ) -> Version:
        """Change a version's description, metadata or TTL; what is left out stays."""
        body: dict[str, Any] = {"version_id": version_id}
        # Left out of the body is the wire's UNSET; null means None.
        if description is not UNSET:
            body["description"] = description
        if metadata is not UNSET:
            body["metadata"] = metadata
        if ttl_seconds is not UNSET:
            body["ttl_seconds"] = ttl_seconds
        return self._write(
            "update_version",
            body,
            lambda r: r.update_version(
                version_id, description=description, metadata=metadata, ttl_seconds=ttl_seconds
            ),
            Version.from_json,
        )

    def delete_version(self, version_id: str, *, delete_aliases: bool = False) -> Version:
        """Delete a version (its number stays taken); return its tombstone."""
        body = {"version_id": version_id, "delete_aliases": delete_aliases}
        return self._write(
            "delete_version",
            body,
            lambda r: r.delete_version(version_id, delete_aliases=delete_aliases),
            Version.from_json,
        )

    def record_use(
        self,
        run_id: str,
        version_id: str,
        *,
        project: str | None = None,
        entity: str | None = None,
    ) -> None:
        """Record that a run used a version."""
        body = {"run_id": run_id, "version_id": version_id, "project": project, "entity": entity}
        self._write(
            "record_use",
            body,
            lambda r: r.record_use(run_id, version_id, project=project, entity=entity),
            lambda _: None,
        )

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
        """Link a live version into ``entity/project/name`` (``registry.linking``); the
        daemon commits it, as it commits every version, unless the file is this user's
        and no daemon answers. ``submission_id`` makes a repeat return the first answer."""
        body = {
            "version_id": version_id,
            "project": project,
            "name": name,
            "entity": entity,
            "aliases": list(aliases),
            "submission_id": submission_id,
        }
        return self._write(
            "link_version",
            body,
            lambda r: r.link_version(
                version_id,
                project=project,
                name=name,
                entity=entity,
                aliases=aliases,
                submission_id=submission_id,
            ),
            CommitResult.from_json,
        )

    # -- the daemon's own writes ----------------------------------------------------------

    def _daemon_only(self, method: str) -> RegistryError:
        return RegistryError(
            f"{method} is the daemon's own: log an artifact (run.log_artifact) and the "
            "daemon commits it"
        )

    def commit_version(self, version: NewVersion) -> CommitResult:
        """Refused: only the daemon commits versions."""
        raise self._daemon_only("commit_version")

    def add_part(self, part: NewPart) -> None:
        """Refused: only the daemon records parts of distributed versions."""
        raise self._daemon_only("add_part")

    # -- reads, from the file -------------------------------------------------------------

    def get_run(self, project: str, run_id: str, entity: str | None = None) -> Run:
        """One run of a project."""
        return self._file().get_run(project, run_id, entity)

    def find_run(self, project: str, run_id: str, entity: str | None = None) -> Run | None:
        """One run of a project, or None if there is none."""
        return self._file().find_run(project, run_id, entity)

    def list_runs(self, project: str, entity: str | None = None) -> list[Run]:
        """A project's runs, oldest first."""
        return self._file().list_runs(project, entity)

    def run_history(
        self, project: str, run_id: str, entity: str | None = None
    ) -> list[dict[str, Any]]:
        """A run's history rows, by ``_step``."""
        return self._file().run_history(project, run_id, entity)

    def get_sweep(self, project: str, sweep_id: str, entity: str | None = None) -> Sweep:
        """One sweep of a project."""
        return self._file().get_sweep(project, sweep_id, entity)

    def submission_result(self, submission_id: str) -> CommitResult | None:
        """What committing a submission produced (maybe deleted since), or None."""
        return self._file().submission_result(submission_id)

    def list_parts(
        self, project: str, name: str, distributed_id: str, entity: str | None = None
    ) -> list[Part]:
        """The pending parts of a distributed version, in the order they were added."""
        return self._file().list_parts(project, name, distributed_id, entity)

    def get_version(
        self, project: str, name: str, alias_or_version: str, entity: str | None = None
    ) -> Version:
        """A version by alias or ``vN`` label."""
        return self._file().get_version(project, name, alias_or_version, entity)

    def get_version_by_id(self, version_id: str) -> Version:
        """A version by id."""
        return self._file().get_version_by_id(version_id)

    def list_versions(self, project: str, name: str, entity: str | None = None) -> list[Version]:
        """A collection's committed versions, by index."""
        return self._file().list_versions(project, name, entity)

    def list_projects(self) -> list[Project]:
        """Every project with an artifact or a run, by entity and name."""
        return self._file().list_projects()

    def list_collections(
        self, project: str, type: str | None = None, entity: str | None = None
    ) -> list[Collection]:
        """A project's artifact collections, by name."""
        return self._file().list_collections(project, type, entity)

    def expired_versions(self, now: float, limit: int = 1000) -> list[Version]:
        """Live versions whose TTL ran out at or before ``now``."""
        return self._file().expired_versions(now, limit)

    def live_manifest_keys(self) -> set[str]:
        """Manifest keys of live versions and pending parts (what GC must keep)."""
        return self._file().live_manifest_keys()

    def produced_by(self, version_id: str) -> Run | None:
        """The run that created a version."""
        return self._file().produced_by(version_id)

    def writers(self, version_id: str) -> list[Run]:
        """Every run that logged a version: its creator, part writers, re-loggers."""
        return self._file().writers(version_id)

    def used_by(self, version_id: str) -> list[Run]:
        """The runs that used a version."""
        return self._file().used_by(version_id)

    def logged_by_run(
        self, run_id: str, *, project: str | None = None, entity: str | None = None
    ) -> list[Version]:
        """The versions a run logged."""
        return self._file().logged_by_run(run_id, project=project, entity=entity)

    def used_by_run(
        self, run_id: str, *, project: str | None = None, entity: str | None = None
    ) -> list[Version]:
        """The versions a run used."""
        return self._file().used_by_run(run_id, project=project, entity=entity)
