"""artisync: self-hosted artifact versioning for ML training, with a sync daemon per node."""

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

__all__ = [
    "Api",
    "Artifact",
    "ArtisyncError",
    "Image",
    "PartitionedTable",
    "Run",
    "Table",
    "__version__",
    "agent",
    "data_types",
    "finish",
    "init",
    "log_artifact",
    "sweep",
    "use_artifact",
]


def __getattr__(name: str) -> Any:
    # `artisync.run` is the current run, read when accessed, as `wandb.run` is.
    if name == "run":
        return current_run()
    raise AttributeError(f"module 'artisync' has no attribute {name!r}")
