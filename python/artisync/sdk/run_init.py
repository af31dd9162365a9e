"""``artisync.init``: W&B's ``wandb.init``, which starts a run and makes it the current one.

``init`` takes W&B's whole signature and reads the ``WANDB_*`` variables a cluster sets
(:mod:`artisync.sdk.init_options`). As in W&B, it makes the run the current one, so
module-level ``artisync.log_artifact(...)``, ``artisync.log(...)`` and
``artisync.config`` act on it (:mod:`artisync.sdk.top_level`); while a run is active
another ``init`` returns it (W&B's default ``reinit`` outside notebooks),
``reinit="finish_previous"`` finishes it first and ``reinit="create_new"`` starts one
beside it. A sweep agent's trial (:mod:`artisync.sweeps.trial`) takes the sweep's
project, entity, run id and parameters, as in W&B.
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from artisync.config import Config
from artisync.errors import ArtisyncError, InvalidInputError
from artisync.sdk.current import make_current
from artisync.sdk.disabled_run import DisabledRun
from artisync.sdk.init_options import InitOptions, resolve_reinit
from artisync.sdk.run import Run
from artisync.sdk.run_config import DEFAULTS_FILE, config_items
from artisync.sdk.top_level import current_run
from artisync.sweeps.trial import trial_for_init

__all__ = ["init"]

_exit_hook_installed = threading.Event()


def _initial_config(
    config: object,
    options: InitOptions,
    include: list[str] | None,
    exclude: list[str] | None,
) -> dict[str, Any]:
    """``config-defaults.yaml`` in the working directory, then ``WANDB_CONFIG_PATHS``,
    then ``init(config=...)`` (a dict, a YAML path, a Namespace…), as W&B merges them."""
    merged: dict[str, Any] = {}
    if Path(DEFAULTS_FILE).is_file():
        merged.update(config_items(DEFAULTS_FILE))
    for path in options.config_paths:
        merged.update(config_items(path))
    merged.update(config_items(config, include=include, exclude=exclude))
    return merged


def init(
    entity: str | None = None,
    project: str | None = None,
    dir: str | os.PathLike[str] | None = None,
    id: str | None = None,
    name: str | None = None,
    notes: str | None = None,
    tags: Sequence[str] | None = None,
    config: Mapping[str, Any] | argparse.Namespace | str | object | None = None,
    config_exclude_keys: list[str] | None = None,
    config_include_keys: list[str] | None = None,
    allow_val_change: bool | None = None,
    group: str | None = None,
    job_type: str | None = None,
    mode: str | None = None,
    force: bool | None = None,
    reinit: bool | str | None = None,
    resume: bool | str | None = None,
    resume_from: str | None = None,
    fork_from: str | None = None,
    save_code: bool | None = None,
    tensorboard: bool | None = None,
    sync_tensorboard: bool | None = None,
    monitor_gym: bool | None = None,
    settings: Mapping[str, Any] | object | None = None,
    anonymous: str | None = None,
    *,
    home: str | os.PathLike[str] | None = None,
    **legacy: Any,
) -> Run | DisabledRun:
    """Start a run and make it the current one; usable as a context manager.

    W&B's signature (docs/wandb-compat.md says what each argument does here). Each of
    ``project``, ``name``, ``id``, ``group``, ``job_type``, ``notes``, ``tags``,
    ``resume``, ``mode`` and ``dir`` falls back on its ``WANDB_*`` (or ``ARTISYNC_*``)
    variable; ``project`` then on ``"uncategorized"``. ``id`` defaults to 8 random
    lowercase letters and digits and ``name`` to the id. ``home`` is the artisync home
    (default ``ARTISYNC_HOME``).

    ``resume``: ``"allow"`` (or ``True``, or unset) continues an existing run with this
    ``id``, keeping what it had unless given again; ``"must"`` fails when there is no
    such run, ``"never"`` (or ``False``) when there is one; ``"auto"`` continues the run
    that last started in ``dir`` if it did not finish. ``mode="disabled"`` returns a run
    whose calls all succeed and record nothing.

    Raises:
        ResumeError: ``resume`` says the run must (not) exist, and it does not (does).
        InvalidInputError: a bad argument, named.
    """
    # W&B's arguments that tune its own UI or integrations: accepted, no effect here.
    del allow_val_change, force, tensorboard, sync_tensorboard, monitor_gym, anonymous
    _accept_legacy(legacy)
    if resume_from is not None or fork_from is not None:
        raise InvalidInputError(
            "resume_from and fork_from (rewinding or forking a run's history) are not "
            "supported: start the run with resume='allow' and its id instead"
        )
    options = InitOptions.resolve(
        project=project,
        entity=entity,
        name=name,
        id=id,
        group=group,
        job_type=job_type,
        notes=notes,
        tags=tags,
        resume=resume,
        mode=mode,
        dir=dir,
        settings=settings,
    )
    how = resolve_reinit(reinit)
    previous = current_run()
    if previous is not None:
        if how == "finish_previous":
            previous.finish()
        elif how == "return_previous":
            if options.resume == "must":
                raise ArtisyncError(
                    "cannot resume a run while another run is active: finish it with "
                    "run.finish(), or pass reinit='create_new' to artisync.init()"
                )
            return previous
    trial = trial_for_init()
    if trial is not None:  # a sweep agent's trial: W&B ignores init's project, entity, id
        options = dataclasses.replace(
            options,
            project=trial.project or options.project,
            entity=trial.entity or options.entity,
            id=trial.run_id or options.id,
        )
    items = _initial_config(config, options, config_include_keys, config_exclude_keys)
    run: Run | DisabledRun
    if options.mode == "disabled":
        run = DisabledRun(options, items)
    else:
        artisync_settings = Config.load(None if home is None else Path(home))
        sweep = None if trial is None else trial.sweep_id
        run = Run(options, items, settings=artisync_settings, sweep=sweep)
        if trial is not None:
            run.config.update_locked(trial.parameters)  # the sweep's values win
        run._start()
    if how != "create_new":
        make_current(run)
    if not _exit_hook_installed.is_set():
        _exit_hook_installed.set()
        atexit.register(_finish_at_exit)
    if save_code and isinstance(run, Run):
        run._save_main_program()
    return run


def _accept_legacy(legacy: Mapping[str, Any]) -> None:
    """Keywords of older W&B versions (``magic``, ``config_exclude_keys``…) that scripts
    still pass: accepted with no effect; anything else is a mistake, named."""
    unknown = sorted(set(legacy) - {"magic", "sync_tensorboard", "settings", "tensorboard"})
    if unknown:
        raise InvalidInputError(
            f"artisync.init() got unexpected keyword argument(s) {', '.join(unknown)}: "
            "see docs/wandb-compat.md for the arguments init takes"
        )


def _finish_at_exit() -> None:
    """At interpreter exit, finish the current run as W&B does (waiting for what it
    logged); an error is printed, not raised, since the script is over."""
    run = current_run()
    if run is None:
        return
    try:
        run.finish()
    except Exception as e:
        print(f"artisync: finishing run {run.id!r} at exit: {e}", file=sys.stderr)
