"""artisync: self-hosted artifact versioning for ML training, with a sync daemon per node."""

from typing import Any

from artisync._core import __version__
from artisync.errors import ArtisyncError
from artisync.sdk import (
    Api,
    Artifact,
    Run,
    current_run,
    finish,
    init,
    log_artifact,
    use_artifact,
)

__all__ = [
    "Api",
    "Artifact",
    "ArtisyncError",
    "PartitionedTable",
    "Run",
    "Table",
    "__version__",
    "finish",
    "init",
    "log_artifact",
    "use_artifact",
]


def __getattr__(name: str) -> Any:
    # `artisync.run` is the current run, read when accessed, as `wandb.run` is.
    if name == "run":
        return current_run()
    # The table types load on first use: they are not needed to log files.
    if name in ("Table", "PartitionedTable"):
        from artisync import data_types

        return getattr(data_types, name)
    raise AttributeError(f"module 'artisync' has no attribute {name!r}")
