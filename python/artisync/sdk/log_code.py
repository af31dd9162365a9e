"""``run.log_code``: the source files of a run as a ``code`` artifact, as W&B does.

By default the ``.py`` files under the working directory (with ``requirements.txt``
and ``Dockerfile``), skipping hidden directories (``.git``, ``.venv``), caches and
virtual environments. ``include_fn``/``exclude_fn`` take the file's path and,
when they accept two arguments, the root, as W&B's do.
"""

from __future__ import annotations

import inspect
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from artisync.config import Config
from artisync.errors import InvalidInputError
from artisync.sdk.artifact import Artifact

__all__ = ["log_code"]

PathFilter = Callable[..., bool]


class LoggingRun(Protocol):
    """What logging code asks of the run (a :class:`~artisync.sdk.run.Run`)."""

    @property
    def project(self) -> str:
        """The run's project: part of the artifact's default name."""

    @property
    def settings(self) -> Config:
        """The run's configuration: its home is never logged as code."""

    def log_artifact(self, artifact_or_path: Artifact) -> Artifact:
        """Log the code artifact."""


_SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "site-packages", "venv", "artifacts"})
_EXTRA_FILES = frozenset({"requirements.txt", "Dockerfile"})


def default_include(path: str, root: str = "") -> bool:
    """W&B's default: Python sources, ``requirements.txt`` and ``Dockerfile``."""
    return path.endswith(".py") or os.path.basename(path) in _EXTRA_FILES


def default_exclude(path: str, root: str = "") -> bool:
    return False


def _call(fn: PathFilter, path: str, root: str) -> bool:
    try:
        takes_two = len(inspect.signature(fn).parameters) >= 2
    except (TypeError, ValueError):  # builtins without a signature
        takes_two = False
    return bool(fn(path, root) if takes_two else fn(path))


def _program_name() -> str:
    program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return program or "code"


def log_code(
    run: LoggingRun,
    root: str | os.PathLike[str] = ".",
    name: str | None = None,
    include_fn: PathFilter = default_include,
    exclude_fn: PathFilter = default_exclude,
) -> Artifact | None:
    """Log the files under ``root`` that ``include_fn`` accepts and ``exclude_fn`` does
    not as the ``code`` artifact ``source-<name>`` (default ``<project>-<program>``);
    returns it, or ``None`` when no file matched (W&B's behaviour)."""
    top = Path(root).resolve()
    if not top.is_dir():
        raise InvalidInputError(f"log_code: root {str(root)!r} is not a directory")
    base = name or f"{run.project}-{_program_name()}"
    name = "source-" + re.sub(r"[^A-Za-z0-9_.\-]", "_", base)
    artifact = Artifact(name, "code", _internal=True)  # source-* is reserved for this
    home = run.settings.home.resolve()
    found = 0
    for directory, dirs, files in os.walk(top):
        here = Path(directory)
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".") and d not in _SKIPPED_DIRS and (here / d) != home
        )
        for file in sorted(files):
            path = str(here / file)
            if _call(include_fn, path, str(top)) and not _call(exclude_fn, path, str(top)):
                artifact.add_file(path, name=os.path.relpath(path, top))
                found += 1
    if not found:
        return None
    return run.log_artifact(artifact)
