"""``init(mode="disabled")`` (or ``WANDB_MODE=disabled``): a run that records nothing.

As W&B's disabled run: every call succeeds and nothing reaches the daemon, the spool
or the registry. ``log`` keeps the summary in memory; ``log_artifact`` and the other
artifact calls return a stand-in that accepts any call; ``use_artifact`` returns None.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Self

from artisync.config import Config
from artisync.sdk.current import forget
from artisync.sdk.init_options import InitOptions
from artisync.sdk.run_config import Config as RunConfig
from artisync.sdk.run_summary import Summary

__all__ = ["DisabledRun", "Nothing"]


class Nothing:
    """What a disabled run returns for an artifact: every attribute and call is itself."""

    def __getattr__(self, _: str) -> Self:
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> Self:
        return self

    def __repr__(self) -> str:
        return "<disabled>"


def _nothing(*args: Any, **kwargs: Any) -> Any:
    return Nothing()


def _none(*args: Any, **kwargs: Any) -> Any:
    return None


class DisabledRun:
    """A run whose calls all succeed and record nothing (W&B's ``mode="disabled"``)."""

    mode = "disabled"
    disabled = True
    offline = False
    resumed = False
    url = None
    sweep_id = None
    group: str | None
    job_type: str | None

    def __init__(self, options: InitOptions, config: Mapping[str, Any]) -> None:
        self.id = options.id or "dummy"
        self.name = options.name or f"dummy-{self.id}"
        project = options.project
        self.project = project if project and project != "uncategorized" else "dummy"
        self.entity = options.entity or "dummy"
        self.group = options.group
        self.job_type = options.job_type
        self.tags = tuple(options.tags or ())
        self.notes = options.notes
        self.config = RunConfig()
        self.config.update(config, allow_val_change=True)
        self.summary = Summary()
        self.start_time = time.time()
        self.step = 0
        self.dir = str(options.dir)
        self.exit_code: int | None = None
        self._finished = False
        self._settings: Config | None = None

    def __repr__(self) -> str:
        return f"<Run {self.project}/{self.id} (disabled)>"

    @property
    def settings(self) -> Config:
        """The default home's settings: where drafts snapshot files they are given
        (a disabled run logs nothing, but a script may still build artifacts)."""
        if self._settings is None:
            self._settings = Config.load()
        return self._settings

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.finish()

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def path(self) -> str:
        return f"{self.project}/{self.id}"

    def log(self, data: Mapping[str, Any], *args: Any, **kwargs: Any) -> None:
        self.summary.update(data)

    def finish(self, exit_code: int | None = None, quiet: bool | None = None) -> None:
        self._finished = True
        self.exit_code = exit_code
        forget(self)

    def _abandon(self) -> None:
        self.finish()

    def save(self, *args: Any, **kwargs: Any) -> bool:
        return False

    def define_metric(self, name: str, *args: Any, **kwargs: Any) -> str:
        return name

    log_artifact = _nothing
    upsert_artifact = _nothing
    finish_artifact = _nothing
    link_artifact = _none
    use_artifact = _none
    log_code = _none
    logged_artifacts = _nothing
    used_artifacts = _nothing
    log_model = _none
    use_model = _none
    link_model = _none
    watch = _none
    unwatch = _none
    alert = _none
    mark_preempting = _none
