"""The registry: projects, runs, artifact versions, aliases and lineage."""

from artisync.registry.contract import Registry
from artisync.registry.model import (
    COMMITTED,
    DEFAULT_ENTITY,
    LATEST,
    Collection,
    CommitResult,
    Project,
    Run,
    Version,
)
from artisync.registry.sqlite import SqliteRegistry
from artisync.registry.sqlite_schema import SCHEMA_VERSION

__all__ = [
    "COMMITTED",
    "DEFAULT_ENTITY",
    "LATEST",
    "SCHEMA_VERSION",
    "Collection",
    "CommitResult",
    "Project",
    "Registry",
    "Run",
    "SqliteRegistry",
    "Version",
]
