"""From a store URL (``--store``, ``ARTISYNC_STORE``, ``config.toml``) to a :class:`Store`.

Accepted: ``file:///abs/path`` (``file://localhost/abs/path`` too) and a plain path;
``~`` is expanded and a relative path is taken under ``ARTISYNC_HOME``, so that
``store = "store"`` in ``config.toml`` means the same thing wherever the daemon starts.
``s3://bucket[/prefix]`` and ``gs://bucket[/prefix]`` open a bucket, checked at once
(credentials, bucket, endpoint), with the journal of their unfinished uploads in
``ARTISYNC_HOME/uploads``. Their client libraries are imported only then.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from artisync.errors import InvalidInputError
from artisync.store.base import Store
from artisync.store.local import LocalStore
from artisync.store.part_sizes import DEFAULT_PART_SIZE, DEFAULT_THRESHOLD

__all__ = ["open_store"]

# "scheme://": a plain path may contain ':' ("runs/a:b"), but never this.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def open_store(
    url: str,
    home: Path,
    *,
    upload_concurrency: int | None = None,
    multipart_threshold: int | None = None,
    part_size: int | None = None,
) -> Store:
    """The store at ``url``; relative paths are under ``home`` (``ARTISYNC_HOME``).

    ``upload_concurrency`` bounds the requests in flight to a bucket (default 16);
    blobs of at least ``multipart_threshold`` bytes go up to it in parts of
    ``part_size`` bytes (defaults and rules: :mod:`artisync.store.part_sizes`). The
    daemon passes its :class:`~artisync.config.Config`'s; a reader needs none of them.

    Raises :class:`InvalidInputError` for a URL artisync cannot use,
    :class:`~artisync.store.StoreUnavailableError` if the directory cannot be created,
    and :class:`~artisync.store.StoreAccessError` if a bucket cannot be used
    as configured (credentials, bucket, endpoint), saying what to set.
    """
    if not url.strip():
        raise InvalidInputError("the store URL is empty: give a directory or file:///path")
    match = _SCHEME.match(url)
    if match is None:
        return LocalStore(home / Path(url).expanduser())
    scheme = match.group(1).lower()
    if scheme == "file":
        return LocalStore(_file_url_path(url))
    if scheme in ("s3", "gs"):
        from artisync.store.remote import DEFAULT_CONCURRENCY

        concurrency = upload_concurrency or DEFAULT_CONCURRENCY
        threshold = multipart_threshold or DEFAULT_THRESHOLD
        part = part_size or DEFAULT_PART_SIZE
        if scheme == "s3":
            from artisync.store.s3 import S3Store

            return S3Store.open(
                url,
                state_dir=home / "uploads" / "s3",
                concurrency=concurrency,
                multipart_threshold=threshold,
                part_size=part,
            )
        from artisync.store.gcs import GCSStore

        return GCSStore.open(
            url,
            state_dir=home / "uploads" / "gcs",
            concurrency=concurrency,
            resumable_threshold=threshold,
            chunk_size=part,
        )
    raise InvalidInputError(
        f"store {url!r}: unknown scheme {scheme!r}; use a directory, a file:///path, "
        "s3://bucket/prefix or gs://bucket/prefix URL"
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
