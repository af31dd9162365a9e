"""The SQLite registry's connections and transactions: one connection per thread, one
``BEGIN IMMEDIATE`` transaction per write, and ``RegistryError`` for every failure of
the database itself.

Writers come from several processes: the daemon (commits, parts, expiry) and every
training script on the node (its run at ``init`` and ``finish``, uses, edits of
committed versions). SQLite's write lock serialises them; the busy timeout set by
``sqlite.schema.connect`` makes a writer wait for the lock rather than fail, and
within one process a lock queues threads before they ask SQLite.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

from artisync.errors import RegistryError
from artisync.registry.sqlite.files import prepare_registry_file
from artisync.registry.sqlite.schema import check_readable, connect, migrate

__all__ = ["Connections"]


class Connections:
    """Per-thread connections to one registry file, and transactions on them.

    Opening read-write creates the file if needed (mode 0640: see ``sqlite.files``)
    and migrates it to the current schema; opening read-only refuses a file whose
    schema is not the current one.
    """

    def __init__(self, path: Path, *, read_only: bool, timeout: float) -> None:
        self.path = path
        self.read_only = read_only
        self.timeout = timeout
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._guard = threading.Lock()  # protects _connections and _closed
        self._write_lock = threading.Lock()
        self._closed = False
        if not read_only:
            prepare_registry_file(path)
        conn = self.connection()
        try:
            if read_only:
                check_readable(conn, path)
            else:
                migrate(conn, path)
        except sqlite3.Error as exc:
            self.close()
            raise self.error(exc, "opening") from exc
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close every thread's connection. Further use raises ``RegistryError``."""
        with self._guard:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if self._closed:
            raise RegistryError(f"registry {self.path} is closed")
        if conn is not None:
            return conn
        # Connect outside the guard: setting WAL may wait for another process's lock,
        # and other threads that already have their connection must not wait with it.
        try:
            conn = connect(self.path, read_only=self.read_only, timeout=self.timeout)
        except sqlite3.Error as exc:
            raise self.error(exc, "opening") from exc
        with self._guard:
            if self._closed:
                conn.close()
                raise RegistryError(f"registry {self.path} is closed")
            self._connections.append(conn)
        self._local.conn = conn
        return conn

    def error(self, exc: sqlite3.Error, doing: str) -> RegistryError:
        """``exc`` as the ``RegistryError`` callers see: no sqlite3 type leaks out."""
        hint = ""
        if "locked" in str(exc) or "busy" in str(exc):
            hint = (
                f"; another process held the registry's write lock for over {self.timeout:g}s "
                "(a second daemon on the same ARTISYNC_HOME, or a stuck process?)"
            )
        elif "readonly" in str(exc):
            hint = "; this registry is open read-only"
        return RegistryError(f"registry {self.path}: {doing} failed: {exc}{hint}")

    @contextmanager
    def transaction(self, doing: str, *, write: bool) -> Iterator[sqlite3.Connection]:
        """One transaction, committed when the block ends and rolled back if it raises.

        ``doing`` names the operation in error messages. A read sees one snapshot;
        a write holds SQLite's write lock from its first statement, so reading
        ``max(index)`` or a submission id and writing after it see no other writer.
        """
        if write and self.read_only:
            raise RegistryError(
                f"registry {self.path} is open read-only: {doing} needs the read-write "
                "registry; open it without read_only=True"
            )
        conn = self.connection()
        # The process-wide lock queues this process's writers in order instead of
        # leaving them to SQLite's busy-wait (which polls, and is not fair); BEGIN
        # IMMEDIATE takes SQLite's write lock at once, waiting up to the busy timeout
        # for other processes. A deferred BEGIN that upgraded to writing later could
        # fail at once with SQLITE_BUSY instead of waiting.
        lock: AbstractContextManager[object] = self._write_lock if write else nullcontext()
        with lock:
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise self.error(exc, doing) from exc
