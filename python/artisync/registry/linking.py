"""Links: a committed version made a version of another collection (W&B's ``link``).

W&B links an artifact version into a registry collection (``model-registry/Classifier``,
``wandb-registry-model/Classifier``) without copying it. Here a link is a version of the
target collection committed through the ordinary commit path, naming the source's
manifest, digest, size and store: no byte is copied or uploaded, every backend (SQLite
through the daemon, PostgreSQL, the server over HTTP) takes it as it takes any commit,
and no table changes. The commit's own rules then give W&B's link behaviour:

- the linked version gets the next number of the target collection, the aliases asked
  for, and ``latest``;
- linking the same content again (the same source, another time) is the same linked
  version: the new aliases move to it, and ``latest`` with them, as W&B's link does;
- the target collection has one type, the source's (else ``TypeConflictError``);
- a server checks the commit like any other: the caller must be allowed to write the
  target project and to read a version that holds every blob (the source does).

The linked version carries the source's description and metadata as they are when it
is linked, no TTL and no producing run (the run that logged the source is in another
project). Its manifest is the source's, so the content stays stored while either lives.
"""

from __future__ import annotations

from collections.abc import Sequence

from artisync.errors import InvalidInputError
from artisync.names import validate_alias, validate_artifact_name, validate_entity, validate_project
from artisync.registry.model import COMMITTED, NewVersion, Version

__all__ = ["linked_version"]


def linked_version(
    source: Version,
    *,
    submission_id: str,
    project: str,
    name: str,
    entity: str | None,
    aliases: Sequence[str],
) -> NewVersion:
    """The commit that links the live version ``source`` into ``entity/project/name``
    with ``aliases``; ``submission_id`` makes it idempotent (a retry of one link returns
    its first answer)."""
    if source.state != COMMITTED:
        raise InvalidInputError(
            f"cannot link {source.qualified_name}: the version was deleted; link a live version"
        )
    if isinstance(aliases, str):
        raise InvalidInputError(f"aliases must be a list of strings, not the string {aliases!r}")
    return NewVersion(
        submission_id=submission_id,
        project=validate_project(project),
        entity=None if entity is None else validate_entity(entity),
        name=validate_artifact_name(name),
        type=source.type,
        manifest_key=source.manifest_key,
        size=source.size,
        file_count=source.file_count,
        run_id=None,
        store=source.store,
        digest=source.digest,
        description=source.description,
        metadata=source.metadata,
        aliases=[validate_alias(alias) for alias in aliases],
    )
