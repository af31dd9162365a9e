"""The SDK: W&B's Artifacts API for training scripts (``init``, ``Run``, ``Artifact``, ``Api``)."""

from artisync.sdk.api import Api, ArtifactCollection
from artisync.sdk.artifact import Artifact, ArtifactFinalizedError
from artisync.sdk.client import DaemonClient
from artisync.sdk.contents import EntryNotFoundError
from artisync.sdk.manifest_view import ArtifactManifest, PendingEntry
from artisync.sdk.public_run import PublicRun
from artisync.sdk.public_sweep import PublicSweep
from artisync.sdk.run import ResumeError, Run
from artisync.sdk.run_init import init
from artisync.sdk.sweep_agent import agent, sweep
from artisync.sdk.top_level import current_run, finish, log_artifact, use_artifact

__all__ = [
    "Api",
    "Artifact",
    "ArtifactCollection",
    "ArtifactFinalizedError",
    "ArtifactManifest",
    "DaemonClient",
    "EntryNotFoundError",
    "PendingEntry",
    "PublicRun",
    "PublicSweep",
    "ResumeError",
    "Run",
    "agent",
    "current_run",
    "finish",
    "init",
    "log_artifact",
    "sweep",
    "use_artifact",
]
