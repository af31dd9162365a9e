"""``artisync server import``: a node's embedded registry copied into a server's
database, idempotently (``import_registry``).

``source`` reads the SQLite file as one snapshot, ``target`` writes projects, runs and
lineage in bulk, ``versions`` merges collections and their versions, ``report`` counts
what was copied and names what clashed; ``importer`` runs them in order.
"""

from artisync.registry.importing.importer import Conflict, Counts, ImportReport, import_registry

__all__ = ["Conflict", "Counts", "ImportReport", "import_registry"]
