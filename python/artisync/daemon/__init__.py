"""The node's sync daemon: spool intake, the pipeline, ordering, the socket API."""

from artisync.daemon.service import Daemon, DaemonAlreadyRunningError

__all__ = ["Daemon", "DaemonAlreadyRunningError"]
