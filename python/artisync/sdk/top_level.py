"""The module-level calls of W&B scripts: ``artisync.log``, ``artisync.config``,
``artisync.summary``, ``artisync.login``, ``artisync.define_metric``… each acting on
the current run (the last ``artisync.init``), as ``wandb.<name>`` does.

Before ``init``, ``artisync.config`` and ``artisync.summary`` are placeholders that
raise on use saying to call ``init`` first, and the calls raise the same way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from artisync.config import Config
from artisync.credentials import save_key
from artisync.errors import ArtisyncError, InvalidInputError
from artisync.sdk.artifact import Artifact
from artisync.sdk.current import active_run
from artisync.sdk.disabled_run import DisabledRun
from artisync.sdk.run import Run

__all__ = [
    "PreInit",
    "alert",
    "current_run",
    "define_metric",
    "finish",
    "log",
    "log_artifact",
    "login",
    "mark_preempting",
    "save",
    "unwatch",
    "use_artifact",
    "watch",
]


def current_run() -> Run | DisabledRun | None:
    """The run the last ``artisync.init()`` started, unless it has finished."""
    run = active_run()
    return run if isinstance(run, Run | DisabledRun) else None


class PreInit:
    """``artisync.config`` / ``artisync.summary`` before ``artisync.init()``."""

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_name", name)

    def _refuse(self, what: str) -> ArtisyncError:
        name = object.__getattribute__(self, "_name")
        return ArtisyncError(f"You must call artisync.init() before {name}{what}")

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        raise self._refuse(f".{key}")

    def __getitem__(self, key: str) -> Any:
        raise self._refuse(f"[{key!r}]")

    def __setattr__(self, key: str, value: Any) -> None:
        raise self._refuse(f".{key}")

    def __setitem__(self, key: str, value: Any) -> None:
        raise self._refuse(f"[{key!r}]")


def _run(call: str) -> Run | DisabledRun:
    run = current_run()
    if run is None:
        raise ArtisyncError(
            f"You must call artisync.init() before artisync.{call}(): no run is active; "
            "call artisync.init() first"
        )
    return run


def log(data: Mapping[str, Any], step: int | None = None, commit: bool | None = None) -> None:
    """:meth:`Run.log` on the current run."""
    _run("log").log(data, step=step, commit=commit)


def define_metric(name: str, *args: Any, **kwargs: Any) -> Any:
    """:meth:`Run.define_metric` on the current run."""
    return _run("define_metric").define_metric(name, *args, **kwargs)


def watch(*args: Any, **kwargs: Any) -> None:
    """:meth:`Run.watch` on the current run (no effect)."""
    _run("watch").watch(*args, **kwargs)


def unwatch(*args: Any, **kwargs: Any) -> None:
    """:meth:`Run.unwatch` on the current run (no effect)."""
    _run("unwatch").unwatch(*args, **kwargs)


def alert(*args: Any, **kwargs: Any) -> None:
    """:meth:`Run.alert` on the current run (no effect)."""
    _run("alert").alert(*args, **kwargs)


def mark_preempting() -> None:
    """:meth:`Run.mark_preempting` on the current run (no effect)."""
    _run("mark_preempting").mark_preempting()


def save(*args: Any, **kwargs: Any) -> bool:
    """:meth:`Run.save` on the current run (keeps nothing; warns)."""
    return _run("save").save(*args, **kwargs)


def login(
    key: str | None = None,
    relogin: bool | None = None,
    host: str | None = None,
    anonymous: str | None = None,
    timeout: int | None = None,
    verify: bool = False,
    *,
    home: str | Path | None = None,
    **ignored: Any,
) -> bool:
    """W&B's ``wandb.login()``: with ``key``, keep it for the registry server (``host``,
    else this home's ``registry``), as ``artisync login`` does. Without a key, or with
    the embedded registry (there is nothing to log in to), it does nothing. Returns True.

    ``verify=True`` asks the server whose key it is first (an invalid key raises).
    """
    del relogin, anonymous, timeout, ignored
    if key is None:
        return True
    if not isinstance(key, str) or not key.strip():
        raise InvalidInputError("artisync.login(key=...) takes a non-empty API key string")
    server = host or Config.load(None if home is None else Path(home)).registry_server
    if server is None:
        return True
    if verify:
        from artisync.registry.http import HttpRegistry

        with HttpRegistry(server, api_key=key.strip()) as registry:
            registry.viewer()
    save_key(server, key.strip())
    return True


def log_artifact(
    artifact_or_path: Artifact | str | os.PathLike[str],
    name: str | None = None,
    type: str | None = None,
    aliases: list[str] | str | None = None,
    tags: list[str] | str | None = None,
) -> Artifact:
    """:meth:`Run.log_artifact` on the current run (the last :func:`init`)."""
    run = _run("log_artifact")
    return run.log_artifact(artifact_or_path, name=name, type=type, aliases=aliases, tags=tags)


def use_artifact(artifact_or_name: Artifact | str, type: str | None = None) -> Artifact:
    """:meth:`Run.use_artifact` on the current run."""
    return _run("use_artifact").use_artifact(artifact_or_name, type)


def finish(exit_code: int | None = None) -> None:
    """Finish the current run, if there is one."""
    run = current_run()
    if run is not None:
        run.finish(exit_code=exit_code)
