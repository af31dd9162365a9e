"""The server's view of the access tables: who a key is, what a project's visibility is,
cached in the process and dropped the moment anything changes.

Every request names its caller by key, so the lookup must cost microseconds, not a
database round trip: answers are cached (by the key's HMAC, never the key) for at most
:data:`TTL` seconds. A thread LISTENs on :data:`~artisync.server.access.directory.CHANGES`
and empties the caches whenever an admin command changes a user, member, key or
visibility, so a revoked key stops working at once on every server process; the TTL
only bounds how stale an answer may get if that connection is lost. The same thread
writes keys' ``last_used_at``, at most once a minute each.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Final

import psycopg

from artisync.errors import RegistryUnavailableError
from artisync.logs import get_logger
from artisync.server.access import keys
from artisync.server.access.directory import CHANGES, Directory, Identity
from artisync.server.side_pool import SidePool

__all__ = ["TTL", "Gate"]

log = get_logger("artisync.server")

TTL: Final = 30.0
"""Seconds a cached answer is trusted without a notification."""

_USE_FLUSH: Final = 60.0  # seconds between last_used_at writes
_LISTEN_POLL: Final = 1.0  # seconds the listener waits for a notification at a time
_WAKE: Final = "wake"  # the payload that only wakes a listener (see Gate._wake_listener)


@dataclass(frozen=True, slots=True)
class _Cached:
    value: Identity | str | None
    at: float


class Gate:
    """Cached lookups of callers and project visibility for one server process."""

    def __init__(
        self, directory: Directory, secret: bytes, *, pool_size: int = 4, timeout: float = 5.0
    ) -> None:
        self._directory = directory
        self._secret = secret
        self._timeout = timeout
        self._pool = SidePool(
            directory.dsn, name="artisync access", size=pool_size, timeout=timeout
        )
        self._keys: dict[bytes, _Cached] = {}
        self._projects: dict[tuple[str, str], _Cached] = {}
        self._used: set[int] = set()
        self._stop = threading.Event()
        self._listener = threading.Thread(target=self._listen, name="access-listener", daemon=True)
        self._listener.start()

    @property
    def directory(self) -> Directory:
        """The access tables, for the routes that change them."""
        return self._directory

    def close(self) -> None:
        """Stop listening and close the connections."""
        self._stop.set()
        self._wake_listener()
        self._listener.join(_LISTEN_POLL * 3)
        self._flush_use()
        self._pool.close()

    # -- callers --------------------------------------------------------------------------

    def cached_identity(self, key: str) -> tuple[bool, Identity | None]:
        """``(True, identity)`` when the cache answers for ``key`` (identity None: no valid
        key), ``(False, None)`` when :meth:`identity` must ask the database. Cheap enough
        for the event loop: one HMAC and one dict lookup."""
        found = self._keys.get(keys.digest(self._secret, key))
        if found is None or time.monotonic() - found.at > TTL:
            return False, None
        identity = found.value if isinstance(found.value, Identity) else None
        if identity is not None:
            self._used.add(identity.key_id)
        return True, identity

    def identity(self, key: str) -> Identity | None:
        """The owner of ``key``, or None; asks the database (on a worker thread)."""
        with self._pool.connection("checking the caller's API key") as conn:
            identity = self._directory.identify(conn, key)
        self._keys[keys.digest(self._secret, key)] = _Cached(identity, time.monotonic())
        if identity is not None:
            self._used.add(identity.key_id)
        return identity

    # -- projects -------------------------------------------------------------------------

    def cached_visibility(self, entity: str, project: str) -> str | None:
        """The project's visibility if the cache knows it (cheap: for the event loop)."""
        found = self._projects.get((entity, project))
        if found is not None and time.monotonic() - found.at <= TTL and found.value is not None:
            return str(found.value)
        return None

    def visibility(self, entity: str, project: str) -> str | None:
        """The project's visibility, None when it does not exist (on a worker thread)."""
        cached = self.cached_visibility(entity, project)
        if cached is not None:
            return cached
        with self._pool.connection("reading a project's visibility") as conn:
            visibility = Directory.visibility(conn, entity, project)
        if visibility is not None:  # a project about to be created is not cached
            self._projects[(entity, project)] = _Cached(visibility, time.monotonic())
        return visibility

    def version_place(self, version_id: str) -> tuple[str, str] | None:
        """``(entity, project)`` of a version, live or deleted, or None (a worker
        thread's call: versions never move, but there are too many to cache)."""
        with self._pool.connection("finding a version's project") as conn:
            return Directory.version_place(conn, version_id)

    # -- the listener ---------------------------------------------------------------------

    def _forget(self) -> None:
        self._keys.clear()
        self._projects.clear()

    def _listen(self) -> None:
        last_flush = time.monotonic()
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._directory.dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANGES}")
                    # Whatever changed while not listening is unknown: start afresh.
                    self._forget()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=_LISTEN_POLL, stop_after=1):
                            if note.payload != _WAKE:
                                self._forget()
                        if time.monotonic() - last_flush > _USE_FLUSH:
                            last_flush = time.monotonic()
                            self._flush_use()
            except psycopg.Error as exc:
                log.warning("access_listener_lost", reason=str(exc).strip())
                self._forget()
                self._stop.wait(_LISTEN_POLL)

    def _wake_listener(self) -> None:
        """End the listener's wait for a notification now rather than after up to
        :data:`_LISTEN_POLL` seconds (a stopping server, a test's teardown). Listeners
        of other processes receive it too and ignore it: nothing changed."""
        try:
            with self._pool.connection("waking the access listener") as conn:
                conn.execute("SELECT pg_notify(%s, %s)", (CHANGES, _WAKE))
        except (psycopg.Error, RegistryUnavailableError):
            pass  # the listener then stops at its next poll

    def _flush_use(self) -> None:
        used, self._used = self._used, set()
        if not used:
            return
        try:
            with self._pool.connection("recording when keys were used") as conn:
                Directory.touch(conn, sorted(used))
        except (psycopg.Error, RegistryUnavailableError) as exc:
            log.warning("key_use_not_recorded", reason=str(exc).strip())
