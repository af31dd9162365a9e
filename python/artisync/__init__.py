"""artisync: self-hosted artifact versioning for ML training, with a sync daemon per node."""

from artisync._core import __version__
from artisync.errors import ArtisyncError

__all__ = ["ArtisyncError", "__version__"]
