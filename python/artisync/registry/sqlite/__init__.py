"""The embedded registry: one SQLite file per node (``SqliteRegistry``).

``registry`` is the backend; ``connection`` its connections and transactions, ``schema``
its migrations, ``files`` the file's place and rights on a shared node, ``queries`` the
reads, ``commit`` the commits and parts, ``edits`` the edits and deletes.
"""

from artisync.registry.sqlite.registry import SqliteRegistry

__all__ = ["SqliteRegistry"]
