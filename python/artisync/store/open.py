"""From a store URL (``--store``, ``ARTISYNC_STORE``, ``config.toml``) to a :class:`Store`.

Accepted: ``file:///abs/path`` (``file://localhost/abs/path`` too) and a plain path;
``~`` is expanded and a relative path is taken under ``ARTISYNC_HOME``, so that
``store = "store"`` in ``config.toml`` means the same thing wherever the daemon starts.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from artisync.errors import InvalidInputError
from artisync.store.base import Store
from artisync.store.local import LocalStore

__all__ = ["open_store"]

# "scheme://": a plain path may contain ':' ("runs/a:b"), but never this.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_COMING = {"s3": "S3", "gs": "GCS"}


def open_store(url: str, home: Path) -> Store:
    """The store at ``url``; relative paths are under ``home`` (``ARTISYNC_HOME``).

    Raises :class:`InvalidInputError` for a URL artisync cannot use, and
    :class:`~artisync.store.StoreUnavailableError` if the directory cannot be created.
    """
    if not url.strip():
        raise InvalidInputError("the store URL is empty: give a directory or file:///path")
    match = _SCHEME.match(url)
    if match is None:
        return LocalStore(home / Path(url).expanduser())
    scheme = match.group(1).lower()
    if scheme == "file":
        return LocalStore(_file_url_path(url))
    if scheme in _COMING:
        raise InvalidInputError(
            f"store {url!r}: {_COMING[scheme]} stores are not supported yet (coming in the "
            "S3/GCS issue); use a directory or a file:///path URL for now"
        )
    raise InvalidInputError(
        f"store {url!r}: unknown scheme {scheme!r}; use a directory or a file:///path URL"
    )


def _file_url_path(url: str) -> Path:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise InvalidInputError(
            f"store {url!r}: file URLs name a local path, not host {parts.netloc!r}; "
            "write file:///path (three slashes)"
        )
    if parts.query or parts.fragment:
        raise InvalidInputError(f"store {url!r}: a file URL takes no '?' or '#' part")
    path = unquote(parts.path)
    if not path.startswith("/"):
        raise InvalidInputError(f"store {url!r}: a file URL needs an absolute path")
    return Path(path)
