"""The registry backends the contract suite runs against, and what the tests commit.

Registered for every test file by ``pytest_plugins`` in conftest.py. Fixtures:

``registry``
    A fresh registry, once per backend in :data:`BACKENDS` (test ids ``[sqlite]``,
    ``[postgres]``, ``[http]``). A test that takes it pins a rule of the ``Registry``
    contract, which every backend must keep. The PostgreSQL server
    (``postgres_server.py``) starts only when a ``[postgres]`` or ``[http]`` test runs,
    once per session; each test gets its own database (``[http]``: the server's app on
    a thread, ``registry_server.py``, in front of it).
``sqlite_registry``, ``db_path``
    The embedded SQLite registry and its file, for tests of what only that backend has
    (its file, schema and migrations, locking, read-only opening, query plans): those
    live in ``test_registry_sqlite.py`` and ``test_registry_migration.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import pytest

from artisync.registry import CommitResult, NewPart, NewVersion, Registry, SqliteRegistry

BACKENDS: Final = ("sqlite", "postgres", "http")
"""Every registry backend, by test id: the embedded SQLite file, the server's
PostgreSQL database, and HTTP: a client (``HttpRegistry``) of the server's app, which
serves a PostgreSQL database."""


@contextmanager
def open_backend(backend: str, request: pytest.FixtureRequest) -> Iterator[Registry]:
    """A fresh, empty registry of ``backend``, closed afterwards.

    Each backend asks ``request`` for the fixtures it needs, so that a run of only the
    SQLite tests starts no PostgreSQL.
    """
    if backend == "sqlite":
        tmp_path: Path = request.getfixturevalue("tmp_path")
        with SqliteRegistry(tmp_path / "registry.db") as reg:
            yield reg
        return
    if backend == "postgres":
        # Imported here: psycopg is the server extra's, not needed by SQLite-only runs.
        from artisync.registry.postgres import PostgresRegistry

        dsn: str = request.getfixturevalue("postgres_dsn")
        with PostgresRegistry(dsn, max_size=4) as reg:
            yield reg
        return
    if backend == "http":
        from registry_server import served_registry

        with served_registry(request.getfixturevalue("postgres_dsn")) as reg:
            yield reg
        return
    raise ValueError(f"no registry backend {backend!r}: add it to BACKENDS and open it here")


@pytest.fixture(params=BACKENDS)
def registry(request: pytest.FixtureRequest) -> Iterator[Registry]:
    """A fresh registry of each backend in turn."""
    with open_backend(request.param, request) as reg:
        yield reg


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where :func:`sqlite_registry` keeps its file."""
    return tmp_path / "registry.db"


@pytest.fixture
def sqlite_registry(db_path: Path) -> Iterator[SqliteRegistry]:
    """A fresh embedded registry at ``db_path``."""
    with SqliteRegistry(db_path) as reg:
        yield reg


def _submission() -> dict[str, Any]:
    """What a new version and a new part both name by default: a fresh submission of
    project ``proj``, with no entity and no run."""
    return {"submission_id": uuid.uuid4().hex, "project": "proj", "entity": None, "run_id": None}


def new_version(digest: str, **fields: Any) -> NewVersion:
    """A version of ``proj/model`` with content ``digest``, as a new submission each call;
    ``fields`` replace the defaults (no description, metadata, tags or TTL)."""
    defaults: dict[str, Any] = {
        **_submission(),
        "name": "model",
        "type": "model",
        "digest": digest,
        "manifest_key": f"manifests/{digest}.json",
        "size": 10,
        "file_count": 1,
        "aliases": ["latest"],
    }
    return NewVersion(**{**defaults, **fields})


def commit(reg: Registry, digest: str, **fields: Any) -> CommitResult:
    """Commit :func:`new_version` of ``digest`` with ``fields``."""
    return reg.commit_version(new_version(digest, **fields))


def new_part(manifest_key: str, **fields: Any) -> NewPart:
    """A part of ``proj/ds`` under distributed id ``d1``, as a new submission each call;
    ``fields`` replace the defaults."""
    defaults: dict[str, Any] = {
        **_submission(),
        "name": "ds",
        "type": "dataset",
        "distributed_id": "d1",
        "manifest_key": manifest_key,
        "size": 5,
        "file_count": 1,
    }
    return NewPart(**{**defaults, **fields})


def add_part(reg: Registry, manifest_key: str, **fields: Any) -> str:
    """Add :func:`new_part` of ``manifest_key`` with ``fields``; return its submission id."""
    part = new_part(manifest_key, **fields)
    reg.add_part(part)
    return part.submission_id


def finish(reg: Registry, digest: str, **fields: Any) -> CommitResult:
    """Commit the merged version of ``proj/ds`` for distributed id ``d1`` (what
    ``finish_artifact`` commits); ``fields`` replace the defaults."""
    defaults: dict[str, Any] = {
        "name": "ds",
        "type": "dataset",
        "manifest_key": f"merged/{digest}",
        "file_count": 2,
        "aliases": [],
        "distributed_id": "d1",
    }
    return commit(reg, digest, **{**defaults, **fields})
