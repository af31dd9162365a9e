"""Schema migrations: a registry written by an older artisync is brought forward, in one
transaction, the first time a read-write registry opens it."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from artisync.errors import RegistryError
from artisync.registry import DELETED, SCHEMA_VERSION, NewVersion, SqliteRegistry
from artisync.registry.sqlite.schema import MIGRATIONS

CREATED = 1_700_000_000.0


def make_v1_registry(path: Path) -> None:
    """A schema-1 registry (issue 3) with a run, a version with a TTL, one without."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("BEGIN")
        MIGRATIONS[0](conn)
        conn.execute("PRAGMA user_version = 1")
        conn.execute("INSERT INTO projects VALUES (1, 'local', 'proj', ?)", (CREATED,))
        conn.execute(
            "INSERT INTO runs VALUES (1, 1, 'r1', 'exp', 'train', NULL, '{\"lr\": 1}', ?)",
            (CREATED,),
        )
        conn.execute("INSERT INTO collections VALUES (1, 1, 'model', 'model', ?)", (CREATED,))
        for idx, ttl in ((0, 60.0), (1, None)):
            conn.execute(
                "INSERT INTO versions VALUES (?, 1, ?, ?, ?, 1, 1, NULL, '{}', ?, 1, ?,"
                " 'COMMITTED')",
                (f"id{idx}", idx, f"d{idx}", f"m/{idx}", CREATED + idx, ttl),
            )
            conn.execute(
                "INSERT INTO lineage (run_id, version_id, direction, created_at)"
                " VALUES (1, ?, 'produced', ?)",
                (f"id{idx}", CREATED),
            )
            conn.execute("INSERT INTO submissions VALUES (?, ?, 1, ?)", (f"s{idx}", f"id{idx}", 0))
        conn.execute("INSERT INTO aliases VALUES (1, 'best', 'id0')")
        conn.execute("COMMIT")


def test_v1_registry_is_migrated_keeping_everything(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    make_v1_registry(path)
    with SqliteRegistry(path) as reg:
        run = reg.get_run("proj", "r1")
        assert (run.config, run.summary, run.state, run.updated_at) == (
            {"lr": 1},
            {},
            "finished",
            CREATED,
        )
        best = reg.get_version("proj", "model", "best")
        assert (best.id, best.ttl_seconds, best.expires_at) == ("id0", 60.0, CREATED + 60)
        assert [v.id for v in reg.expired_versions(CREATED + 60)] == ["id0"]
        assert reg.get_version("proj", "model", "latest").id == "id1"
        assert [v.id for v in reg.logged_by_run("r1")] == ["id0", "id1"]
        result = reg.submission_result("s1")
        assert result is not None and result.version.id == "id1"
        # The new behaviour works on migrated data.
        assert reg.delete_version("id1").state == DELETED
        assert reg.get_version("proj", "model", "latest").id == "id0"
        assert reg.live_manifest_keys() == {"m/0"}
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4


def make_v2_registry(path: Path) -> None:
    """A schema-2 registry (issue 4): :func:`make_v1_registry`'s, brought to version 2,
    with a pending part; nothing in it records a store."""
    make_v1_registry(path)
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("BEGIN")
        MIGRATIONS[1](conn)
        conn.execute("PRAGMA user_version = 2")
        conn.execute(
            "INSERT INTO parts (submission_id, collection_id, distributed_id, manifest_key,"
            " run_id, size, file_count, created_at) VALUES ('p0', 1, 'd1', 'm/p0', 1, 1, 1, ?)",
            (CREATED,),
        )
        conn.execute("COMMIT")


def test_v2_registry_is_migrated_with_no_store_recorded(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    make_v2_registry(path)
    with SqliteRegistry(path) as reg:
        versions = reg.list_versions("proj", "model")
        assert [(v.id, v.store) for v in versions] == [("id0", None), ("id1", None)]
        result = reg.submission_result("s0")
        assert result is not None and result.version.store is None
        [part] = reg.list_parts("proj", "model", "d1")
        assert (part.submission_id, part.store) == ("p0", None)
        # Content logged again by a writer that records no store is the same version;
        # by one that records its store, a version of that store.
        again = reg.commit_version(_same_content("d1", None))
        assert (again.created, again.version.id) == (False, "id1")
        elsewhere = reg.commit_version(_same_content("d1", "s3://bucket/prefix"))
        assert elsewhere.created and elsewhere.version.store == "s3://bucket/prefix"
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def make_v3_registry(path: Path) -> None:
    """A schema-3 registry (issue 16): :func:`make_v2_registry`'s, brought to version 3,
    with a second run that recorded a summary and finished."""
    make_v2_registry(path)
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("BEGIN")
        MIGRATIONS[2](conn)
        conn.execute("PRAGMA user_version = 3")
        conn.execute(
            "INSERT INTO runs (id, project_id, run_id, name, job_type, group_name, config,"
            " created_at, summary, state, updated_at)"
            " VALUES (2, 1, 'r2', NULL, NULL, 'g', '{}', ?, '{\"loss\": 0.5}', 'finished', ?)",
            (CREATED, CREATED + 1),
        )
        conn.execute("COMMIT")


def test_v3_registry_is_migrated_keeping_its_runs(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    make_v3_registry(path)
    with SqliteRegistry(path) as reg:
        r1, r2 = reg.list_runs("proj")
        assert (r1.id, r1.name, r1.config, r1.state) == ("r1", "exp", {"lr": 1}, "finished")
        assert (r2.id, r2.group, r2.summary, r2.updated_at) == (
            "r2",
            "g",
            {"loss": 0.5},
            CREATED + 1,
        )
        # Runs written before have no tags, notes, sweep or history.
        assert [(r.tags, r.notes, r.sweep) for r in (r1, r2)] == [([], None, None)] * 2
        assert reg.run_history("proj", "r1") == []
        assert [v.id for v in reg.logged_by_run("r1")] == ["id0", "id1"]
        # And they take them now.
        reg.append_history("proj", "r2", [{"_step": 0, "loss": 1.0}])
        assert reg.ensure_run("proj", None, "r2", tags=["old"], sweep="s").tags == ["old"]
        assert reg.create_sweep("proj", "s", {"method": "grid"}).id == "s"
        assert reg.run_history("proj", "r2") == [{"_step": 0, "loss": 1.0}]
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def _same_content(digest: str, store: str | None) -> NewVersion:
    return NewVersion(
        submission_id=f"again-{store}",
        project="proj",
        entity=None,
        name="model",
        type="model",
        manifest_key=f"m/{digest}",
        size=1,
        file_count=1,
        digest=digest,
        store=store,
    )


def test_read_only_opener_asks_for_the_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    make_v1_registry(path)
    with pytest.raises(RegistryError, match="start the daemon once"):
        SqliteRegistry(path, read_only=True)


def test_failed_migration_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    make_v1_registry(path)
    with closing(sqlite3.connect(path)) as conn:
        # Something in the way of the last steps of schema 2.
        conn.execute("CREATE TABLE parts (x)")
    with pytest.raises(RegistryError, match="parts already exists"):
        SqliteRegistry(path)
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        columns = [row[1] for row in conn.execute("PRAGMA table_info(runs)")]
        assert "summary" not in columns and "state" not in columns
        indexes = [row[0] for row in conn.execute("SELECT name FROM sqlite_master")]
        assert "versions_live" not in indexes and "versions_by_digest" in indexes
        conn.execute("DROP TABLE parts")
    with SqliteRegistry(path) as reg:
        assert reg.get_run("proj", "r1").state == "finished"


def test_new_registry_runs_every_migration(tmp_path: Path) -> None:
    with SqliteRegistry(tmp_path / "registry.db") as reg:
        assert reg.ensure_run("proj", None, "r").state == "running"
    with closing(sqlite3.connect(tmp_path / "registry.db")) as conn:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"parts", "versions_live", "versions_expiring", "parts_pending"} <= names
    assert {"history", "history_by_step", "sweeps", "sweeps_by_project"} <= names
