"""The server's registry: PostgreSQL, shared by every ``artisync server`` process
(``PostgresRegistry``).

``registry`` is the backend; ``connection`` its pool and transactions, ``schema`` and
``migrations/`` its schema, ``queries`` the reads, ``commit`` the commits and parts
(the commit itself runs in the database: ``migrations/0003``), ``edits`` the edits and
deletes. psycopg is the ``server`` extra's: ``artisync.registry`` never imports this
package, so nodes never need it.
"""

from artisync.registry.postgres.registry import PostgresRegistry

__all__ = ["PostgresRegistry"]
