"""The registry writes a client may ask of the daemon: ``POST /v1/registry/<method>``.

A training script reads ``registry.db`` directly, but on a shared node only the daemon
may write it (the file is 0640, ``registry/sqlite/files.py``), so the writes that
belong to the script come here: its run (``ensure_run``, ``set_run_state``,
``set_run_summary``, ``append_history``), the sweeps it creates (``create_sweep``), the
versions it uses (``record_use``), edits of committed versions (``update_version``,
``set_aliases``, ``delete_version``) and links of them into other collections
(``link_version``, a commit the registry builds from the source version itself, so a
client names a version, never content). The body is a JSON object of the method's
keyword arguments, as the ``Registry`` protocol names them; the answer is
``{"result": ...}`` (a run, a sweep or a version as ``to_json`` gives it, or null).
A shared server's HTTP registry will take the same shape.

Every caller is untrusted: each argument is checked (its type, names by
``artisync.names``, no control characters in identifiers) before the registry sees it,
and a bad one is a 400 whose ``{"error", "field"}`` names it. The registry's own
refusals keep their type through the status: ``NotFoundError`` 404,
``TypeConflictError`` 409, ``InvalidInputError`` 400; a database failure is a 503.
What only the daemon does (``commit_version``, ``add_part``, expiry, collection) is
not offered: those are 403, any other name 404.

Each write is logged with the caller's uid and pid from ``SO_PEERCRED``, so a shared
node's journal says who changed what.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Mapping
from typing import Any, Final

from aiohttp import web

from artisync.daemon.app_key import DAEMON_KEY
from artisync.daemon.peer import peer_of
from artisync.errors import InvalidInputError, NotFoundError, RegistryError, TypeConflictError
from artisync.logs import get_logger
from artisync.names import (
    check_notes,
    validate_alias,
    validate_artifact_name,
    validate_project,
    validate_run_tag,
    validate_sweep_id,
)
from artisync.registry import RUN_STATES, UNSET, CommitResult, Registry, Run, Sweep, Version
from artisync.registry.contract import MAX_JSON_DEPTH, json_depth
from artisync.registry.run_rules import MAX_HISTORY_ROWS

__all__ = ["CLIENT_WRITES", "DAEMON_ONLY", "MAX_DEPTH", "add_registry_routes"]

log = get_logger("artisync.daemon")

MAX_DEPTH: Final = MAX_JSON_DEPTH

# Longest id or free-text name taken: far beyond real ones, short enough for a log line.
_MAX_ID: Final = 1024
_RUN_ID_FORBIDDEN: Final = "/\\#?%:"


class _BadArgument(Exception):
    """An argument a caller sent that the method cannot take; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class _Arguments:
    """The JSON body of one call, read a field at a time, each checked as it is read."""

    def __init__(self, body: dict[str, Any]) -> None:
        self._body = body
        self._read: set[str] = set()

    def given(self, field: str) -> bool:
        """Whether the caller sent ``field`` (absent keyword arguments keep defaults)."""
        return field in self._body

    def _take(self, field: str, required: bool) -> Any:
        self._read.add(field)
        if field not in self._body and required:
            raise _BadArgument(field, "is required")
        return self._body.get(field)

    def identifier(
        self,
        field: str,
        *,
        required: bool = True,
        check: Callable[[str], str] | None = None,
    ) -> str | None:
        """A non-empty str without control characters (None allowed when not required),
        then ``check`` (a ``names`` validator)."""
        value = self._take(field, required)
        if value is None and not required:
            return None
        text = _text(field, value)
        if not text:
            raise _BadArgument(field, "must not be empty")
        if check is not None:
            try:
                check(text)
            except InvalidInputError as exc:
                raise _BadArgument(field, str(exc)) from None
        return text

    def required_identifier(self, field: str, check: Callable[[str], str] | None = None) -> str:
        """:meth:`identifier` of a field that must be there."""
        value = self.identifier(field, check=check)
        assert value is not None
        return value

    def free_text(self, field: str) -> str | None:
        """A str (any characters but NUL) or None."""
        value = self._take(field, False)
        if value is None:
            return None
        if not isinstance(value, str):
            raise _BadArgument(field, f"must be a string or null, not {_kind(value)}")
        if "\x00" in value:
            raise _BadArgument(field, "must not contain NUL characters")
        return value

    def json_object(self, field: str, *, required: bool = True) -> dict[str, Any] | None:
        """A JSON object, nested at most :data:`MAX_DEPTH` deep."""
        value = self._take(field, required)
        if value is None and not required:
            return None
        if not isinstance(value, dict):
            raise _BadArgument(field, f"must be a JSON object, not {_kind(value)}")
        if json_depth(value) > MAX_DEPTH:
            raise _BadArgument(field, f"nests deeper than {MAX_DEPTH} levels")
        return value

    def number_or_none(self, field: str) -> float | None:
        """A finite number or None (the registry says which numbers it takes)."""
        value = self._take(field, False)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _BadArgument(field, f"must be a number of seconds or null, not {_kind(value)}")
        if not math.isfinite(value):
            raise _BadArgument(field, "must be a finite number")
        return float(value)

    def boolean(self, field: str, default: bool) -> bool:
        """true or false."""
        value = self._take(field, False)
        if value is None and not self.given(field):
            return default
        if not isinstance(value, bool):
            raise _BadArgument(field, f"must be true or false, not {_kind(value)}")
        return value

    def aliases(self, field: str) -> list[str]:
        """A list of aliases, each valid by ``names.validate_alias``."""
        out = self.labels(field, validate_alias, required=True)
        assert out is not None
        return out

    def labels(
        self, field: str, check: Callable[[str], str], *, required: bool = False
    ) -> list[str] | None:
        """A list of strings, each valid by ``check`` (None when absent or null and not
        required)."""
        value = self._take(field, required)
        if value is None and not required:
            return None
        if not isinstance(value, list):
            raise _BadArgument(field, f"must be a list of strings, not {_kind(value)}")
        out: list[str] = []
        for i, item in enumerate(value):
            text = _text(f"{field}[{i}]", item)
            try:
                out.append(check(text))
            except InvalidInputError as exc:
                raise _BadArgument(f"{field}[{i}]", str(exc)) from None
        return out

    def notes(self, field: str) -> str | None:
        """Run notes: a str within ``names.check_notes``' bound, or None."""
        value = self.free_text(field)
        try:
            return check_notes(value)
        except InvalidInputError as exc:
            raise _BadArgument(field, str(exc)) from None

    def json_objects(self, field: str, *, limit: int) -> list[dict[str, Any]]:
        """A list of at most ``limit`` JSON objects, each nested at most
        :data:`MAX_DEPTH` deep."""
        value = self._take(field, True)
        if not isinstance(value, list):
            raise _BadArgument(field, f"must be a list of JSON objects, not {_kind(value)}")
        if len(value) > limit:
            raise _BadArgument(field, f"holds {len(value)} items; at most {limit} at once")
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise _BadArgument(f"{field}[{i}]", f"must be a JSON object, not {_kind(item)}")
            if json_depth(item) > MAX_DEPTH:
                raise _BadArgument(f"{field}[{i}]", f"nests deeper than {MAX_DEPTH} levels")
        return value

    def finish(self, method: str) -> None:
        """Refuse a field the method does not take (a typo must not pass silently)."""
        if unknown := sorted(set(self._body) - self._read):
            raise _BadArgument(
                unknown[0],
                f"is not an argument of {method}; it takes {', '.join(sorted(self._read))}",
            )


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _text(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise _BadArgument(field, f"must be a string, not {_kind(value)}")
    if len(value) > _MAX_ID:
        raise _BadArgument(field, f"is {len(value)} characters long; at most {_MAX_ID} are taken")
    if bad := sorted({c for c in value if c < " " or c == "\x7f"}):
        raise _BadArgument(
            field, f"must not contain control characters (found {', '.join(map(repr, bad))})"
        )
    return value


def _entity(text: str) -> str:
    if "/" in text:
        raise InvalidInputError(f"Invalid entity {text!r}: must not contain '/'")
    return text


def _run_id(text: str) -> str:
    if bad := ", ".join(repr(c) for c in _RUN_ID_FORBIDDEN if c in text):
        raise InvalidInputError(f"Invalid run id {text!r}: must not contain {bad}")
    return text


def _run_key(args: _Arguments) -> dict[str, Any]:
    """The ``project``, ``run_id`` and ``entity`` that name a run."""
    return {
        "project": args.required_identifier("project", validate_project),
        "run_id": args.required_identifier("run_id", _run_id),
        "entity": args.identifier("entity", required=False, check=_entity),
    }


# -- the methods: each reads its arguments, then calls the registry in a worker thread --


def _ensure_run(args: _Arguments) -> Callable[[Registry], Any]:
    key = _run_key(args)
    name, job_type = args.free_text("name"), args.free_text("job_type")
    group, config = args.free_text("group"), args.json_object("config", required=False)
    tags = args.labels("tags", validate_run_tag)
    notes = args.notes("notes")
    sweep = args.identifier("sweep", required=False, check=validate_sweep_id)
    return lambda r: r.ensure_run(
        key["project"],
        key["entity"],
        key["run_id"],
        name=name,
        job_type=job_type,
        group=group,
        config=config,
        tags=tags,
        notes=notes,
        sweep=sweep,
    )


def _append_history(args: _Arguments) -> Callable[[Registry], Any]:
    key = _run_key(args)
    rows = args.json_objects("rows", limit=MAX_HISTORY_ROWS)
    return lambda r: r.append_history(key["project"], key["run_id"], rows, entity=key["entity"])


def _create_sweep(args: _Arguments) -> Callable[[Registry], Any]:
    project = args.required_identifier("project", validate_project)
    sweep_id = args.required_identifier("sweep_id", validate_sweep_id)
    entity = args.identifier("entity", required=False, check=_entity)
    config = args.json_object("config")
    assert config is not None
    return lambda r: r.create_sweep(project, sweep_id, config, entity=entity)


def _set_run_state(args: _Arguments) -> Callable[[Registry], Any]:
    key = _run_key(args)
    state = args.required_identifier("state")
    if state not in RUN_STATES:
        raise _BadArgument(
            "state", f"{state!r} is not a run state; use one of {', '.join(map(repr, RUN_STATES))}"
        )
    return lambda r: r.set_run_state(key["project"], key["run_id"], state, entity=key["entity"])


def _set_run_summary(args: _Arguments) -> Callable[[Registry], Any]:
    key = _run_key(args)
    summary = args.json_object("summary")
    assert summary is not None
    return lambda r: r.set_run_summary(key["project"], key["run_id"], summary, entity=key["entity"])


def _update_version(args: _Arguments) -> Callable[[Registry], Any]:
    version_id = args.required_identifier("version_id")
    # A field left out of the body keeps its value (UNSET); null clears it.
    description = args.free_text("description") if args.given("description") else UNSET
    metadata = args.json_object("metadata") if args.given("metadata") else UNSET
    ttl = args.number_or_none("ttl_seconds") if args.given("ttl_seconds") else UNSET
    return lambda r: r.update_version(
        version_id,
        description=description,
        metadata=UNSET if metadata is None else metadata,
        ttl_seconds=ttl,
    )


def _set_aliases(args: _Arguments) -> Callable[[Registry], Any]:
    version_id = args.required_identifier("version_id")
    aliases = args.aliases("aliases")
    return lambda r: r.set_aliases(version_id, aliases)


def _delete_version(args: _Arguments) -> Callable[[Registry], Any]:
    version_id = args.required_identifier("version_id")
    delete_aliases = args.boolean("delete_aliases", False)
    return lambda r: r.delete_version(version_id, delete_aliases=delete_aliases)


def _record_use(args: _Arguments) -> Callable[[Registry], Any]:
    run_id = args.required_identifier("run_id", _run_id)
    version_id = args.required_identifier("version_id")
    project = args.identifier("project", required=False, check=validate_project)
    entity = args.identifier("entity", required=False, check=_entity)
    return lambda r: r.record_use(run_id, version_id, project=project, entity=entity)


def _link_version(args: _Arguments) -> Callable[[Registry], Any]:
    version_id = args.required_identifier("version_id")
    project = args.required_identifier("project", validate_project)
    name = args.required_identifier("name", validate_artifact_name)
    entity = args.identifier("entity", required=False, check=_entity)
    aliases = args.aliases("aliases")
    submission_id = args.required_identifier("submission_id")
    return lambda r: r.link_version(
        version_id,
        project=project,
        name=name,
        entity=entity,
        aliases=aliases,
        submission_id=submission_id,
    )


CLIENT_WRITES: Final[Mapping[str, Callable[[_Arguments], Callable[[Registry], Any]]]] = {
    "ensure_run": _ensure_run,
    "set_run_state": _set_run_state,
    "set_run_summary": _set_run_summary,
    "append_history": _append_history,
    "create_sweep": _create_sweep,
    "update_version": _update_version,
    "set_aliases": _set_aliases,
    "delete_version": _delete_version,
    "record_use": _record_use,
    "link_version": _link_version,
}
"""The ``Registry`` methods a client may call through the daemon, each with the reader
of its arguments, which returns the call to make."""

DAEMON_ONLY: Final = frozenset(
    {"commit_version", "add_part", "expired_versions", "live_manifest_keys", "close", "gc"}
)
"""Methods only the daemon calls: committing what it checked, expiry, collection."""

# The registry's refusals, most specific first (TypeConflictError is a RegistryError).
_STATUS: Final = ((NotFoundError, 404), (TypeConflictError, 409), (InvalidInputError, 400))


def _answer(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def _result_json(result: object) -> Any:
    if isinstance(result, Run | Sweep | Version | CommitResult):
        return result.to_json()
    return None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def registry_write(request: web.Request) -> web.Response:
    """``POST /v1/registry/<method>``: one client write, checked, applied, logged."""
    method = request.match_info["method"]
    peer = peer_of(request.transport.get_extra_info("socket") if request.transport else None)
    who = {"uid": peer.uid, "pid": peer.pid} if peer is not None else {}
    if method in DAEMON_ONLY:
        log.warning("registry_write_refused", method=method, reason="daemon only", **who)
        return _answer(
            403,
            f"{method} is the daemon's own: clients commit versions by logging artifacts "
            "(run.log_artifact), and expiry and collection run in the daemon",
        )
    read_arguments = CLIENT_WRITES.get(method)
    if read_arguments is None:
        return _answer(
            404,
            f"no registry method {method[:100]!r} here; the daemon takes "
            f"{', '.join(sorted(CLIENT_WRITES))}",
        )
    daemon = request.app[DAEMON_KEY]
    if daemon.pipeline is None:
        return _answer(503, "the daemon is starting; ask again in a moment")
    try:
        body = json.loads(await request.text(), parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        return _answer(
            400, f"body: must be a JSON object of {method}'s arguments ({exc})", field="body"
        )
    if not isinstance(body, dict):
        return _answer(400, f"body: must be a JSON object, not {_kind(body)}", field="body")
    args = _Arguments(body)
    try:
        call = read_arguments(args)
        args.finish(method)
    except _BadArgument as exc:
        log.warning(
            "registry_write_refused", method=method, field=exc.field, reason=str(exc), **who
        )
        return _answer(400, str(exc), field=exc.field)
    what = {
        k: body.get(k)
        for k in ("project", "entity", "run_id", "sweep_id", "version_id")
        if k in body
    }
    registry = daemon.pipeline.registry
    try:
        result = await asyncio.to_thread(call, registry)
    except (RegistryError, InvalidInputError) as exc:
        status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 503)
        log.warning("registry_write_refused", method=method, reason=str(exc), **who, **what)
        return _answer(status, str(exc))
    except RecursionError:
        return _answer(400, "body: nests too deeply to store", field="body")
    log.info("registry_write", method=method, **who, **what)
    return web.json_response({"result": _result_json(result)})


def add_registry_routes(app: web.Application) -> None:
    """Serve the client registry writes on ``app`` (the daemon's socket API)."""
    app.router.add_post("/v1/registry/{method}", registry_write)
