"""artisync: self-hosted artifact versioning for ML training, with a sync daemon per node.

``import artisync as wandb`` is the one change a W&B training script needs: the names
below are W&B's (docs/wandb-compat.md lists what each does here).
"""

from typing import Any

from artisync import data_types
from artisync._core import __version__
from artisync.data_types import Image, PartitionedTable, Table
from artisync.errors import ArtisyncError
from artisync.sdk import (
    Api,
    Artifact,
    Run,
    agent,
    current_run,
    finish,
    init,
    log_artifact,
    sweep,
    use_artifact,
)
from artisync.sdk.init_options import Settings
from artisync.sdk.top_level import (
    PreInit,
    alert,
    define_metric,
    log,
    login,
    mark_preempting,
    save,
    unwatch,
    watch,
)

__all__ = [
    "Api",
    "Artifact",
    "ArtisyncError",
    "Image",
    "PartitionedTable",
    "Run",
    "Settings",
    "Table",
    "__version__",
    "agent",
    "alert",
    "data_types",
    "define_metric",
    "finish",
    "init",
    "log",
    "log_artifact",
    "login",
    "mark_preempting",
    "save",
    "sweep",
    "unwatch",
    "use_artifact",
    "watch",
]

# `artisync.config` is the current run's config, as `wandb.config` is. The settings
# module of the same name (artisync/config.py) was bound here by the imports above;
# unbound, the name falls through to __getattr__. The module stays importable
# (`from artisync.config import Config`): it is in sys.modules.
del globals()["config"]


def __getattr__(name: str) -> Any:
    # Read when accessed, as wandb.run / wandb.config / wandb.summary are: the current
    # run's (placeholders that say to call init() before it).
    if name in ("run", "config", "summary"):
        run = current_run()
        if name == "run":
            return run
        if run is None:
            return PreInit(f"artisync.{name}")
        return run.config if name == "config" else run.summary
    raise AttributeError(f"module 'artisync' has no attribute {name!r}")
