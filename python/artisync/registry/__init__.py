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
    NewPart,
    NewVersion,
    Part,
    Project,
    Run,
    Sweep,
    Version,
)
from artisync.registry.open import close_registry, open_registry
from artisync.registry.sqlite import SqliteRegistry
from artisync.registry.sqlite.schema import SCHEMA_VERSION

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
    "NewPart",
    "NewVersion",
    "Part",
    "Project",
    "Registry",
    "Run",
    "SqliteRegistry",
    "Sweep",
    "Unset",
    "Version",
    "close_registry",
    "open_registry",
]
