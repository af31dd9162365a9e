"""artisync: self-hosted artifact versioning for ML training, with a sync daemon per node."""

from typing import Any

from artisync._core import __version__
from artisync.errors import ArtisyncError
from artisync.sdk import Artifact, Run, current_run, finish, init, log_artifact

__all__ = [
    "Artifact",
    "ArtisyncError",
    "Run",
    "__version__",
    "finish",
    "init",
    "log_artifact",
]


def __getattr__(name: str) -> Any:
    # `artisync.run` is the current run, read when accessed, as `wandb.run` is.
    if name == "run":
        return current_run()
    raise AttributeError(f"module 'artisync' has no attribute {name!r}")
