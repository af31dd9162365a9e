"""From a store URL (``--store``, ``ARTISYNC_STORE``, ``config.toml``) to a :class:`Store`.

Accepted: ``file:///abs/path`` (``file://localhost/abs/path`` too) and a plain path;
``~`` is expanded and a relative path is taken under ``ARTISYNC_HOME``, so that
``store = "store"`` in ``config.toml`` means the same thing wherever the daemon starts.
``s3://bucket[/prefix]`` and ``gs://bucket[/prefix]`` open a bucket, checked at once
(credentials, bucket, endpoint), with the journal of their unfinished uploads in
``ARTISYNC_HOME/uploads``. Their client libraries are imported only then.

A bucket a registry server serves with presigned transfers is opened through that
server's grants instead (:func:`open_granted`: no bucket credentials), by the daemon
of a node with no store of its own (``daemon/store_choice.py``) and by every reader whose
registry is that server (:func:`shared_store` with ``server``).

This is the one place a URL becomes a store: the daemon opens its own with
:func:`open_store` (and closes it at shutdown); the SDK's readers (manifests, downloads,
entries read in memory) take the process's shared one from :func:`shared_store`.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from artisync.credentials import api_key_for
from artisync.errors import InvalidInputError
from artisync.store.base import Store
from artisync.store.local import LocalStore
from artisync.store.part_sizes import DEFAULT_PART_SIZE, DEFAULT_THRESHOLD

if TYPE_CHECKING:
    from artisync.store.served import ServedStore

__all__ = [
    "on_this_node",
    "open_directory",
    "open_granted",
    "open_store",
    "shared_store",
    "store_url",
]

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


def open_granted(
    served: ServedStore,
    home: Path,
    *,
    ca_file: str | None = None,
    upload_concurrency: int | None = None,
    part_size: int | None = None,
) -> Store:
    """The bucket ``served`` names, reached through its server's grants, with the
    caller's key (:class:`~artisync.store.granted.GrantedStore`); the journal of its
    unfinished uploads in ``home/uploads/granted``. ``part_size`` is the chunk of a
    GCS session (S3 parts are the server's); ``ca_file`` the CA of the server's
    certificate, as for the registry."""
    from artisync.store.granted import GrantedStore
    from artisync.store.remote import DEFAULT_CONCURRENCY
    from artisync.store.served import server_transport

    return GrantedStore(
        served,
        server_transport(served.server, ca_file),
        state_dir=home / "uploads" / "granted",
        concurrency=upload_concurrency or DEFAULT_CONCURRENCY,
        chunk_size=part_size or DEFAULT_PART_SIZE,
    )


def store_url(url: str, home: Path) -> str:
    """The store at ``url`` as a version records it (what its ``Store.url`` is), without
    opening it: ``file:///abs/path`` for a directory (relative: under ``home``), the
    bucket URL as given."""
    match = _SCHEME.match(url)
    if match is None:
        return Path(os.path.abspath(home / Path(url).expanduser())).as_uri()
    if match.group(1).lower() == "file":
        return Path(os.path.abspath(_file_url_path(url))).as_uri()
    return url


def on_this_node(url: str) -> bool:
    """Whether the store at ``url`` is a directory (plain path or ``file://``), which
    only machines that mount it can read, rather than a bucket every node reaches."""
    match = _SCHEME.match(url)
    return match is None or match.group(1).lower() == "file"


def open_directory(path: Path) -> Store:
    """A store in the local directory ``path``, created with its layout if needed: for a
    scratch area of one's own (the daemon's ingest copies), never a configured store."""
    return LocalStore(path)


# The stores shared_store opened, by (URL, absolute home, server, key); a forked child
# starts empty.
_shared: dict[tuple[str, str, str | None, str | None], Store] = {}
_shared_lock = threading.Lock()


def shared_store(
    url: str, home: Path, *, server: str | None = None, ca_file: str | None = None
) -> Store:
    """The store at ``url`` as :func:`open_store` opens it, opened once per process and
    kept for every later call with the same ``url`` and ``home``. Callers never close it.

    ``server`` is the process's registry server (``ca_file``: its CA): a bucket it
    serves with presigned transfers is opened through its grants (:func:`open_granted`),
    with the caller's key, and kept per key; no bucket credentials are needed or used.

    Sharing is safe because a store holds no connection across event loops: a bucket
    store keeps one network client per loop (aiohttp and aiobotocore sessions belong to
    the loop they were made on), made at that loop's first request, reused by every
    request on it, and closed on that loop when the loop ends (``asyncio.run`` cancels
    the task holding it) or by :meth:`~artisync.store.Store.close`. So an SDK call that
    reads many blobs in one loop uses one client, and nothing is left open at exit.
    What the cache saves on every later call is the rest of opening: the parsing, and
    for a bucket the access check, a request on a client and a thread of its own. A
    URL that cannot be opened is not kept: the next call tries again.
    """
    served = _served_here(url, server, ca_file)
    if served is None:
        key: tuple[str, str, str | None, str | None] = (url, os.path.abspath(home), None, None)
    else:
        key = (url, os.path.abspath(home), served.server, api_key_for(served.server))
    with _shared_lock:
        store = _shared.get(key)
        if store is None:
            if served is None:
                store = _shared[key] = open_store(url, home)
            else:
                store = _shared[key] = open_granted(served, home, ca_file=ca_file)
    return store


def _served_here(url: str, server: str | None, ca_file: str | None) -> ServedStore | None:
    """What ``server`` says of its store, if it serves the bucket ``url`` through grants."""
    match = _SCHEME.match(url)
    if server is None or match is None or match.group(1).lower() not in ("s3", "gs"):
        return None
    from artisync.store.served import served_by

    served = served_by(server, ca_file)
    return served if served.serves(url) else None


def _forget_shared() -> None:
    """In a forked child: the parent's stores and lock are not this process's."""
    global _shared_lock
    _shared.clear()
    _shared_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_shared)


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
