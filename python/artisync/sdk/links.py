"""``artifact.link(target_path)`` and ``run.link_artifact(...)``: W&B's registry links.

A target path is W&B's: ``[entity/]project/collection``, or only ``collection``. The
legacy model registry is a project like any other (``model-registry/Classifier``); the
newer registries are projects named ``wandb-registry-<registry>``
(``wandb-registry-model/Classifier``). What a link is in the registry is in
``artisync.registry.linking``; this module fills in the path's defaults as W&B does
and asks the registry, which commits the link through the daemon (the embedded
registry) or the server.

Defaults, as W&B: a path without an entity takes the source version's entity (W&B
resolves a registry path's organisation from it; here there are no organisations, so
a registry project lives under the same entity). A path without a project takes the
run's project with ``run.link_artifact``; with ``artifact.link``, the current run's,
else ``ARTISYNC_PROJECT`` or ``WANDB_PROJECT``, else ``uncategorized``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from typing import Final, NamedTuple

from artisync.config import Config
from artisync.errors import InvalidInputError
from artisync.names import parse_artifact_path, validate_alias
from artisync.registry.model import Version
from artisync.sdk.current import active_run
from artisync.sdk.registry_access import registry_for

__all__ = [
    "LinkTarget",
    "commit_link",
    "default_project",
    "is_registry_project",
    "link_aliases",
    "parse_target",
]

_PROJECT_ENVS: Final = ("ARTISYNC_PROJECT", "WANDB_PROJECT")
_NO_PROJECT: Final = "uncategorized"  # W&B's project when none is known
_REGISTRY_PREFIX: Final = "wandb-registry-"


class LinkTarget(NamedTuple):
    """Where a link goes: ``entity/project/name`` (entity None: the source's)."""

    entity: str | None
    project: str | None
    name: str


def parse_target(target_path: object) -> LinkTarget:
    """``target_path`` split as W&B splits it; :class:`InvalidInputError` naming what is
    wrong (not a string, more than three parts, an empty part, a bad name, or an alias
    after ``:``, which belongs in ``aliases``)."""
    if not isinstance(target_path, str):
        raise InvalidInputError(
            f"Invalid link target {target_path!r}: expected a str such as "
            "'model-registry/Classifier' or 'wandb-registry-model/Classifier'"
        )
    try:
        entity, project, name, alias = parse_artifact_path(target_path)
    except InvalidInputError as exc:
        raise InvalidInputError(
            f"Invalid link target {target_path!r}: expected [entity/]project/collection, "
            f"e.g. 'model-registry/Classifier' ({exc})"
        ) from None
    if alias is not None:
        raise InvalidInputError(
            f"Invalid link target {target_path!r}: a target names a collection, not a "
            f"version; pass the alias as aliases=[{alias!r}]"
        )
    return LinkTarget(entity, project, name)


def link_aliases(aliases: Iterable[str] | str | None) -> list[str]:
    """W&B's ``aliases`` argument as a list (one string is one alias), each checked."""
    if aliases is None:
        return []
    listed = [aliases] if isinstance(aliases, str) else list(aliases)
    for alias in listed:
        if not isinstance(alias, str):
            raise InvalidInputError(f"Invalid alias {alias!r}: aliases are strings")
    return [validate_alias(alias) for alias in listed]


def is_registry_project(project: str) -> bool:
    """Whether ``project`` is one of W&B's registries (``wandb-registry-<name>``)."""
    return project.startswith(_REGISTRY_PREFIX) and project != _REGISTRY_PREFIX


def default_project() -> str:
    """The project of a target path that names none, for ``artifact.link``."""
    run = active_run()
    if run is not None:
        return run.project
    return next((p for env in _PROJECT_ENVS if (p := os.environ.get(env))), _NO_PROJECT)


def commit_link(
    source: Version,
    settings: Config,
    target: LinkTarget,
    aliases: list[str],
    *,
    project: str,
) -> Version:
    """Link ``source`` into ``target`` (its missing project is ``project``, its missing
    entity the source's) with ``aliases``; return the linked version."""
    registry = registry_for(settings)
    result = registry.link_version(
        source.id,
        project=target.project or project,
        name=target.name,
        entity=target.entity or source.entity,
        aliases=aliases,
        # One id per link call: a repeat of this call returns its first answer, and
        # another call with the same source commits again (its aliases move).
        submission_id=uuid.uuid4().hex,
    )
    return result.version
