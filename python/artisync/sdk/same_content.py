"""Content logged again: what the version it matched keeps, and what the log is told.

Identical content is not a new version (DESIGN.md, guarantee 5, as in W&B): the daemon's
commit returns the existing version, gives it the log's aliases and tags, and moves
``latest`` to it, as W&B's server does with the ``latest`` alias its client sends with
every log. A version's description, metadata and TTL are recorded once, by the log that
created it, and a later log of the same content does not rewrite them (W&B's server
returns the existing artifact as it is). Rather than drop what the log gave without a
word, :func:`warn_unapplied` names each field that differed, and how to apply it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from artisync.errors import SameContentWarning
from artisync.registry.model import Version

__all__ = ["warn_unapplied"]


def warn_unapplied(
    name: str,
    version: Version,
    *,
    description: str | None,
    metadata: Mapping[str, Any],
    ttl_seconds: float | None,
    stacklevel: int,
) -> None:
    """Warn (:class:`SameContentWarning`) when the log of artifact ``name`` gave a
    description, metadata or TTL that ``version``, the existing version its identical
    content was committed as, does not have; say nothing when there is no difference."""
    differ = []
    if description is not None and description != version.description:
        differ.append("description")
    if metadata and dict(metadata) != version.metadata:
        differ.append("metadata")
    if ttl_seconds is not None and ttl_seconds != version.ttl_seconds:
        differ.append("ttl")
    if not differ:
        return
    fields = ", ".join(differ)
    warnings.warn(
        f"artifact {name!r}: the content logged is identical to {version.name}:"
        f"{version.version}, so no new version was made and that version was returned "
        f"(it got this log's aliases and tags, and 'latest'). It keeps its own {fields}: "
        f"the {fields} this log gave were not applied. To change them, set them on the "
        "returned artifact and call artifact.save()",
        SameContentWarning,
        stacklevel=stacklevel,
    )
