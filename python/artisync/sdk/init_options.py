"""What ``artisync.init(...)`` was asked for: its arguments, else the environment.

A cluster that runs W&B jobs already sets ``WANDB_PROJECT``, ``WANDB_RUN_GROUP``,
``WANDB_MODE``… ; they act here as in W&B, and each has an ``ARTISYNC_`` twin that wins
over it. An argument given to ``init`` wins over both, as in W&B. The table below is the
whole list (docs/wandb-compat.md repeats it for users).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from artisync.errors import InvalidInputError

__all__ = [
    "ENV",
    "MODES",
    "REINIT_VALUES",
    "RESUME_VALUES",
    "InitOptions",
    "Settings",
    "env_value",
    "resolve_mode",
    "resolve_reinit",
    "resolve_resume",
]

Mode = Literal["online", "offline", "disabled"]
Reinit = Literal["return_previous", "finish_previous", "create_new"]

# option -> the variables that set it, the stronger last.
ENV: Final[Mapping[str, tuple[str, ...]]] = {
    "project": ("WANDB_PROJECT", "ARTISYNC_PROJECT"),
    "group": ("WANDB_RUN_GROUP", "ARTISYNC_RUN_GROUP"),
    "job_type": ("WANDB_JOB_TYPE", "ARTISYNC_JOB_TYPE"),
    "name": ("WANDB_NAME", "ARTISYNC_NAME"),
    "notes": ("WANDB_NOTES", "ARTISYNC_NOTES"),
    "tags": ("WANDB_TAGS", "ARTISYNC_TAGS"),
    "id": ("WANDB_RUN_ID", "ARTISYNC_RUN_ID"),
    "resume": ("WANDB_RESUME", "ARTISYNC_RESUME"),
    "mode": ("WANDB_MODE", "ARTISYNC_MODE"),
    "dir": ("WANDB_DIR", "ARTISYNC_DIR"),
    "config_paths": ("WANDB_CONFIG_PATHS", "ARTISYNC_CONFIG_PATHS"),
}

MODES: Final = ("online", "offline", "disabled")
# W&B's older spellings of the modes, and "shared" (many processes log one run: every
# artisync run can already be written from many processes).
_MODE_ALIASES: Final[Mapping[str, Mode]] = {
    "online": "online",
    "run": "online",
    "shared": "online",
    "offline": "offline",
    "dryrun": "offline",
    "disabled": "disabled",
}
RESUME_VALUES: Final = (None, True, False, "allow", "must", "never", "auto")
REINIT_VALUES: Final = (
    None,
    True,
    False,
    "default",
    "return_previous",
    "finish_previous",
    "create_new",
)
_TRUE: Final = ("1", "true", "yes", "on")


def env_value(option: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The environment's value of ``option`` (see :data:`ENV`), or None; empty is unset."""
    env = os.environ if environ is None else environ
    found = None
    for variable in ENV[option]:
        if value := env.get(variable):
            found = value
    return found


def resolve_mode(given: object, environ: Mapping[str, str] | None = None) -> Mode:
    """``init(mode=...)``, else ``WANDB_MODE``/``ARTISYNC_MODE``, else ``WANDB_DISABLED``
    set true, else ``"online"``."""
    env = os.environ if environ is None else environ
    source = "mode"
    value = given
    if value is None:
        value = env_value("mode", env)
        source = "WANDB_MODE / ARTISYNC_MODE"
    if value is None and env.get("WANDB_DISABLED", "").lower() in _TRUE:
        return "disabled"
    if value is None:
        return "online"
    if not isinstance(value, str) or value.lower() not in _MODE_ALIASES:
        raise InvalidInputError(
            f"Invalid {source} {value!r}: use 'online', 'offline' or 'disabled'"
        )
    return _MODE_ALIASES[value.lower()]


def resolve_resume(given: object, environ: Mapping[str, str] | None = None) -> bool | str | None:
    """``init(resume=...)``, else ``WANDB_RESUME``/``ARTISYNC_RESUME``."""
    value: object = given
    if value is None:
        text = env_value("resume", environ)
        value = {"true": True, "false": False}.get(text.lower(), text) if text else None
    if value not in RESUME_VALUES:
        raise InvalidInputError(
            f"Invalid resume {value!r}: use one of {', '.join(map(repr, RESUME_VALUES))}"
        )
    assert value is None or isinstance(value, bool | str)
    return value


def resolve_reinit(given: object) -> Reinit:
    """W&B's ``reinit``: what ``init`` does while another run is active. Outside a
    notebook W&B's default returns that run; ``True`` finishes it (as
    ``"finish_previous"``); ``"create_new"`` starts another beside it."""
    if given not in REINIT_VALUES:
        raise InvalidInputError(
            f"Invalid reinit {given!r}: use one of {', '.join(map(repr, REINIT_VALUES))}"
        )
    if given is True or given == "finish_previous":
        return "finish_previous"
    if given == "create_new":
        return "create_new"
    return "return_previous"


def _tags(given: Sequence[str] | None, environ: Mapping[str, str] | None) -> list[str] | None:
    if given is not None:
        if isinstance(given, str) or not all(isinstance(t, str) for t in given):
            raise InvalidInputError(f"Invalid tags {given!r}: must be a list of str")
        return list(given)
    text = env_value("tags", environ)
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


@dataclass(frozen=True, slots=True)
class InitOptions:
    """``init``'s options once the environment has filled in what was not given."""

    project: str | None
    entity: str | None
    name: str | None
    id: str | None
    group: str | None
    job_type: str | None
    notes: str | None
    tags: list[str] | None
    resume: bool | str | None
    mode: Mode
    dir: Path
    config_paths: list[str]

    @classmethod
    def resolve(
        cls,
        *,
        project: str | None,
        entity: str | None,
        name: str | None,
        id: str | None,
        group: str | None,
        job_type: str | None,
        notes: str | None,
        tags: Sequence[str] | None,
        resume: object,
        mode: object,
        dir: str | os.PathLike[str] | None,
        settings: Mapping[str, Any] | object | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> InitOptions:
        """Each option: the argument, else W&B's ``settings`` of the same meaning, else
        the environment."""
        extra = _settings_dict(settings)
        paths = env_value("config_paths", environ)
        root = dir or extra.get("root_dir") or env_value("dir", environ) or os.getcwd()
        return cls(
            project=project or extra.get("project") or env_value("project", environ),
            entity=entity or extra.get("entity"),
            name=name or extra.get("run_name") or env_value("name", environ),
            id=id or extra.get("run_id") or env_value("id", environ),
            group=group or extra.get("run_group") or env_value("group", environ),
            job_type=job_type or extra.get("run_job_type") or env_value("job_type", environ),
            notes=notes or extra.get("run_notes") or env_value("notes", environ),
            tags=_tags(tags if tags is not None else extra.get("run_tags"), environ),
            resume=resolve_resume(resume if resume is not None else extra.get("resume"), environ),
            mode=resolve_mode(mode if mode is not None else extra.get("mode"), environ),
            dir=Path(os.fspath(root)).expanduser(),
            config_paths=[p for p in (paths or "").split(",") if p],
        )


def _settings_dict(settings: object) -> dict[str, Any]:
    """W&B's ``settings=``: a dict or a ``Settings`` object (``artisync.Settings``)."""
    if settings is None:
        return {}
    if isinstance(settings, Mapping):
        return {str(k): v for k, v in settings.items() if v is not None}
    data = getattr(settings, "__dict__", None)
    if isinstance(data, dict):
        return {k: v for k, v in data.items() if v is not None and not k.startswith("_")}
    raise InvalidInputError(
        f"settings must be a dict or artisync.Settings, not {type(settings).__name__}"
    )


class Settings:
    """W&B's ``wandb.Settings``, as scripts pass it to ``init(settings=...)``.

    Takes any keyword; the ones with a meaning here are those ``init`` also takes as
    arguments (``project``, ``entity``, ``run_name``, ``run_id``, ``run_group``,
    ``run_job_type``, ``run_notes``, ``run_tags``, ``resume``, ``mode``, ``root_dir``);
    the rest (``start_method``, ``console``, ``_disable_stats``…) tune W&B's own
    process and are kept but unused.
    """

    def __init__(self, **kwargs: Any) -> None:
        self.__dict__.update(kwargs)

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items())
        return f"Settings({fields})"
