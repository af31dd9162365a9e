"""How a sweep agent tells ``init`` that the run it starts is a trial: W&B's environment.

W&B's agent sets, around each call of the trial function: ``WANDB_SWEEP_ID``, the
trial's run id in ``WANDB_RUN_ID``, the sweep's ``WANDB_PROJECT`` and
``WANDB_ENTITY``, and ``WANDB_SWEEP_PARAM_PATH``: a file of the sampled parameters
as ``{"wandb_version": 1, "<key>": {"value": <value>}, ...}``. ``wandb.init`` reads
them, takes the parameters into ``run.config`` over its own ``config`` argument, and
ignores the project, entity and id it is given. artisync's agent sets the same
variables (and ``ARTISYNC_HOME`` when it was given a home), so a process the trial
function starts inherits them too, as with W&B. The file is written as JSON, which is
also YAML, so W&B's own reader takes it.

:func:`trial_for_init` is what ``init`` asks: the trial running in this process, or
None.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from artisync.errors import InvalidInputError

__all__ = [
    "ENTITY_ENV",
    "PARAM_PATH_ENV",
    "PROJECT_ENV",
    "RUN_ID_ENV",
    "SWEEP_ID_ENV",
    "Trial",
    "read_param_file",
    "trial_environment",
    "trial_for_init",
    "write_param_file",
]

SWEEP_ID_ENV: Final = "WANDB_SWEEP_ID"
PARAM_PATH_ENV: Final = "WANDB_SWEEP_PARAM_PATH"
RUN_ID_ENV: Final = "WANDB_RUN_ID"
PROJECT_ENV: Final = "WANDB_PROJECT"
ENTITY_ENV: Final = "WANDB_ENTITY"
HOME_ENV: Final = "ARTISYNC_HOME"
_FILE_VERSION: Final = 1


@dataclass(frozen=True)
class Trial:
    """One trial of a sweep, as ``init`` sees it.

    ``parameters`` go into the run's config over what ``init(config=...)`` gave (W&B
    locks them: the sweep's values win); ``project``, ``entity`` and ``run_id``, when
    set, replace what ``init`` was given (W&B ignores those arguments in a sweep), and
    the run is recorded as a member of ``sweep_id``.
    """

    sweep_id: str
    parameters: dict[str, Any]
    run_id: str | None = None
    project: str | None = None
    entity: str | None = None

    def config_over(self, config: Mapping[str, Any] | None) -> dict[str, Any]:
        """``config`` with the trial's parameters in it, the parameters winning."""
        return {**(config or {}), **self.parameters}


def trial_for_init(environ: Mapping[str, str] | None = None) -> Trial | None:
    """The sweep trial this process runs (from W&B's variables), or None.

    Raises:
        InvalidInputError: ``WANDB_SWEEP_PARAM_PATH`` names a file that is missing or
            is not a parameter file.
    """
    env = os.environ if environ is None else environ
    sweep_id = env.get(SWEEP_ID_ENV)
    if not sweep_id:
        return None
    path = env.get(PARAM_PATH_ENV)
    parameters = read_param_file(Path(path)) if path else {}
    return Trial(
        sweep_id=sweep_id,
        parameters=parameters,
        run_id=env.get(RUN_ID_ENV) or None,
        project=env.get(PROJECT_ENV) or None,
        entity=env.get(ENTITY_ENV) or None,
    )


def write_param_file(path: Path, parameters: Mapping[str, Any]) -> None:
    """Write a trial's parameters in W&B's shape (``{"key": {"value": v}}``)."""
    body: dict[str, Any] = {"wandb_version": _FILE_VERSION}
    body.update({key: {"value": value} for key, value in parameters.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=1))


def read_param_file(path: Path) -> dict[str, Any]:
    """The parameters a file of W&B's shape holds (JSON, or YAML when PyYAML is
    installed: what W&B's own agent writes)."""
    try:
        text = path.read_text()
    except OSError as e:
        raise InvalidInputError(
            f"{PARAM_PATH_ENV} names {str(path)!r}, which cannot be read ({e.strerror}): "
            f"unset {SWEEP_ID_ENV} and {PARAM_PATH_ENV} outside a sweep agent"
        ) from None
    loaded = _load(text, path)
    if not isinstance(loaded, dict):
        raise InvalidInputError(f"sweep parameter file {str(path)!r} does not hold a mapping")
    version = loaded.pop("wandb_version", _FILE_VERSION)
    if version != _FILE_VERSION:
        raise InvalidInputError(
            f"sweep parameter file {str(path)!r} has wandb_version {version!r}; only 1 is known"
        )
    parameters: dict[str, Any] = {}
    for key, entry in loaded.items():
        if not isinstance(entry, dict) or "value" not in entry:
            raise InvalidInputError(
                f"sweep parameter file {str(path)!r}: {key!r} must be {{'value': ...}}"
            )
        parameters[str(key)] = entry["value"]
    return parameters


def _load(text: str, path: Path) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        import yaml  # type: ignore[import-untyped, unused-ignore]  # optional (W&B's files)
    except ImportError:
        raise InvalidInputError(
            f"sweep parameter file {str(path)!r} is not JSON (a YAML file needs PyYAML)"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise InvalidInputError(f"sweep parameter file {str(path)!r} is not valid: {e}") from None


@contextlib.contextmanager
def trial_environment(variables: Mapping[str, str | None]) -> Iterator[None]:
    """Set ``variables`` in ``os.environ`` (None unsets one) for the block, then put
    back what was there: the agent's process is the caller's, and outlives the sweep."""
    saved = {name: os.environ.get(name) for name in variables}
    try:
        for name, value in variables.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
