"""What a registry server says of the store it serves: ``GET /api/v1/store``.

A server started with a bucket (``artisync server --store s3://…``) answers its URL and
``transfers: "presigned"``: nodes reach that bucket through the server's grants
(:mod:`artisync.store.granted`), with no bucket credentials of their own. For S3 it also
says from which size a blob goes up in parts, and the part size, so that every node cuts
a blob alike (a multipart completion counts only with the same parts).

A reader asks once per server and minute (:func:`served_by`): a server's store is a
setting of its start, so it changes only with a restart.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from artisync.credentials import api_key_for
from artisync.errors import InvalidInputError, NotFoundError
from artisync.registry.http.transport import Transport
from artisync.store.remote import parse_bucket_url

__all__ = ["STORE_PATH", "ServedStore", "ask_server", "served_by", "server_transport"]

STORE_PATH = "/api/v1/store"

_TIMEOUT = 30.0  # seconds a JSON call waits for its answer (as HttpRegistry's default)
_KEPT = 60.0  # seconds a server's answer is kept


@dataclass(frozen=True, slots=True)
class ServedStore:
    """The store a registry server serves: ``url`` (None: none), how nodes reach it
    (``transfers``: ``"presigned"``, ``"files"``, or None) and, for S3, the size from
    which blobs go up in parts and the part size."""

    server: str
    url: str | None
    transfers: str | None
    multipart_threshold: int | None = None
    part_size: int | None = None

    @property
    def presigned(self) -> bool:
        """Whether nodes reach the store through the server's grants."""
        return self.transfers == "presigned" and self.url is not None

    def serves(self, url: str) -> bool:
        """Whether ``url`` names this server's store, reached through its grants."""
        return self.presigned and self.url is not None and same_bucket(url, self.url)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, server: str, answer: Any) -> ServedStore:
        """The server's answer, checked: :class:`InvalidInputError` if it is not one."""
        if not isinstance(answer, dict):
            raise InvalidInputError(f"{server}{STORE_PATH} answered {answer!r}, not an object")
        url, transfers = answer.get("url"), answer.get("transfers")
        threshold, part_size = answer.get("multipart_threshold"), answer.get("part_size")
        if not (url is None or isinstance(url, str)) or not (
            transfers is None or isinstance(transfers, str)
        ):
            raise InvalidInputError(f"{server}{STORE_PATH} answered {answer!r}")
        for value in (threshold, part_size):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise InvalidInputError(f"{server}{STORE_PATH} answered {answer!r}")
        return cls(server, url, transfers, threshold, part_size)


def same_bucket(a: str, b: str) -> bool:
    """Whether two bucket URLs name the same place (``s3://b/p/`` is ``s3://b/p``)."""
    try:
        return parse_bucket_url(a).url == parse_bucket_url(b).url
    except InvalidInputError:
        return False


def server_transport(server: str, ca_file: str | None) -> Transport:
    """The JSON transport to ``server`` with the caller's key (``ARTISYNC_API_KEY``,
    ``artisync login``, …); a key set by :func:`~artisync.registry.http.acting.acting_as`
    goes instead wherever it is set."""
    return Transport(server, timeout=_TIMEOUT, ca_file=ca_file, api_key=api_key_for(server))


def ask_server(transport: Transport) -> ServedStore:
    """One ``GET /api/v1/store``. A server too old to have the route serves no store
    through grants; :class:`~artisync.errors.RegistryUnavailableError` if it is down."""
    try:
        answer = transport.call("GET", STORE_PATH)
    except NotFoundError:
        return ServedStore(transport.url, None, None)
    return ServedStore.from_json(transport.url, answer)


# What each server said, by its URL, and when (time.monotonic()).
_served: dict[str, tuple[ServedStore, float]] = {}
_lock = threading.Lock()


def served_by(server: str, ca_file: str | None = None) -> ServedStore:
    """What ``server`` serves, asked at most once a minute (module docstring)."""
    key = server.rstrip("/")
    with _lock:
        known = _served.get(key)
    if known is not None and time.monotonic() - known[1] < _KEPT:
        return known[0]
    transport = server_transport(server, ca_file)
    try:
        served = ask_server(transport)
    finally:
        transport.close()
    with _lock:
        _served[key] = (served, time.monotonic())
    return served


def _forget() -> None:
    """In a forked child: the parent's answers and lock are not this process's."""
    global _lock
    _served.clear()
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget)
