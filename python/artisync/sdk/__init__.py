"""The SDK: W&B's Artifacts API for training scripts (``init``, ``Run``, ``Artifact``)."""

from artisync.sdk.artifact import Artifact, ArtifactFinalizedError
from artisync.sdk.client import DaemonClient
from artisync.sdk.contents import EntryNotFoundError
from artisync.sdk.manifest_view import ArtifactManifest, PendingEntry
from artisync.sdk.run import Run, current_run, finish, init, log_artifact

__all__ = [
    "Artifact",
    "ArtifactFinalizedError",
    "ArtifactManifest",
    "DaemonClient",
    "EntryNotFoundError",
    "PendingEntry",
    "Run",
    "current_run",
    "finish",
    "init",
    "log_artifact",
]
