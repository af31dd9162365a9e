"""The registry: projects, runs, artifact versions, aliases and lineage."""

from artisync.registry.contract import UNSET, Registry, Unset
from artisync.registry.model import (
    COMMITTED,
    DEFAULT_ENTITY,
    DELETED,
    LATEST,
    RUN_STATES,
    Collection,
    CommitResult,
    Part,
    Project,
    Run,
    Version,
)
from artisync.registry.sqlite import SqliteRegistry
from artisync.registry.sqlite_schema import SCHEMA_VERSION

__all__ = [
    "COMMITTED",
    "DEFAULT_ENTITY",
    "DELETED",
    "LATEST",
    "RUN_STATES",
    "SCHEMA_VERSION",
    "UNSET",
    "Collection",
    "CommitResult",
    "Part",
    "Project",
    "Registry",
    "Run",
    "SqliteRegistry",
    "Unset",
    "Version",
]
