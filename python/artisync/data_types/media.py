"""What a media object (an ``Image``) needs from the artifact it is written into or
read from.

An image in a table is stored twice over, as W&B stores it: its file is an entry of the
artifact (``media/images/...``), and the table cell is a small JSON object naming that
entry. Writing, the artifact lends a :class:`MediaWriter`, which adds the files;
reading, a :data:`MediaFetcher`, which brings the files of the named entries to local
paths, all in one call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Final, Protocol

__all__ = ["IMAGE_DIR", "MediaFetcher", "MediaWriter"]

IMAGE_DIR: Final = "media/images"
"""Where W&B puts the files of the images an artifact holds."""


class MediaWriter(Protocol):
    """The artifact an object is being written into, as its media files see it."""

    def added_name(self, local_path: str) -> str | None:
        """The entry path a file added from ``local_path`` (exactly that string, as W&B
        keys it) already has in the artifact, or None: W&B points an image at that
        entry rather than storing its file twice."""

    def add_media_file(self, local_path: str, name: str, digest: str) -> str:
        """Store the file ``local_path`` (MD5 ``digest``, base64) as the entry ``name``
        and return the entry's path. The same content at that path already is fine;
        other content there is an error."""


MediaFetcher = Callable[[Sequence[str]], Mapping[str, str]]
"""Given entry paths, download those entries and return each one's local file path."""
