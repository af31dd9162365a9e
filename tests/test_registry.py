"""The embedded SQLite registry: commit guarantees, aliases, lineage, concurrency, indexes."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

import artisync
from artisync.errors import InvalidInputError, NotFoundError, RegistryError, TypeConflictError
from artisync.registry import (
    DEFAULT_ENTITY,
    SCHEMA_VERSION,
    CommitResult,
    Registry,
    SqliteRegistry,
)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "registry.db"


@pytest.fixture
def registry(db_path: Path) -> Iterator[SqliteRegistry]:
    with SqliteRegistry(db_path) as reg:
        yield reg


def commit(reg: SqliteRegistry, digest: str, **overrides: Any) -> CommitResult:
    """Commit a version with plausible defaults; each call is a new submission."""
    fields: dict[str, Any] = {
        "submission_id": uuid.uuid4().hex,
        "project": "proj",
        "entity": None,
        "name": "model",
        "type": "model",
        "digest": digest,
        "manifest_key": f"manifests/{digest}.json",
        "size": 10,
        "file_count": 1,
        "description": None,
        "metadata": {},
        "aliases": ["latest"],
        "tags": [],
        "run_id": None,
        "ttl_seconds": None,
    }
    fields.update(overrides)
    return reg.commit_version(**fields)


def aliases_of(reg: SqliteRegistry, label: str, name: str = "model") -> list[str]:
    return reg.get_version("proj", name, label).aliases


# -- commit guarantees --------------------------------------------------------------------


def test_same_submission_committed_twice_yields_one_version(registry: SqliteRegistry) -> None:
    first = commit(registry, "d0", submission_id="sub-1")
    again = commit(registry, "d0", submission_id="sub-1")
    assert again.created is first.created is True
    assert again.version.id == first.version.id
    assert [v.version for v in registry.list_versions("proj", "model")] == ["v0"]
    assert registry.submission_result("sub-1") == first


def test_resubmitting_a_deduplicated_submission_keeps_created_false(
    registry: SqliteRegistry,
) -> None:
    original = commit(registry, "d0")
    duplicate = commit(registry, "d0", submission_id="sub-dup")
    again = commit(registry, "d0", submission_id="sub-dup")
    assert (duplicate.created, again.created) == (False, False)
    assert again.version.id == duplicate.version.id == original.version.id


def test_resubmission_returns_first_result_even_if_its_content_differs(
    registry: SqliteRegistry,
) -> None:
    first = commit(registry, "d0", submission_id="sub-1")
    again = commit(registry, "other-digest", submission_id="sub-1", name="renamed")
    assert again.version.id == first.version.id
    assert [c.name for c in registry.list_collections("proj")] == ["model"]


def test_submission_result_is_none_before_commit(registry: SqliteRegistry) -> None:
    assert registry.submission_result("never-seen") is None


def test_versions_are_numbered_from_zero_in_commit_order(registry: SqliteRegistry) -> None:
    labels = [commit(registry, f"d{i}", metadata={"index": i}).version.version for i in range(5)]
    assert labels == ["v0", "v1", "v2", "v3", "v4"]
    assert [v.metadata["index"] for v in registry.list_versions("proj", "model")] == [0, 1, 2, 3, 4]


def test_rejected_submission_takes_no_version_number(registry: SqliteRegistry) -> None:
    commit(registry, "d0")
    with pytest.raises(TypeConflictError):
        commit(registry, "d1", type="dataset")
    with pytest.raises(InvalidInputError):
        commit(registry, "d2", aliases=["v7"])
    with pytest.raises(InvalidInputError):
        commit(registry, "d3", metadata={"loss": float("nan")})
    assert commit(registry, "d4").version.version == "v1"


def test_identical_content_returns_existing_version_with_new_aliases(
    registry: SqliteRegistry,
) -> None:
    v0 = commit(registry, "same", tags=["a"]).version
    commit(registry, "different")
    again = commit(registry, "same", aliases=["latest", "best"], tags=["b"])
    assert again.created is False
    assert again.version.id == v0.id
    assert again.version.aliases == ["best"]
    assert again.version.tags == ["a", "b"]
    assert aliases_of(registry, "v1") == ["latest"]
    assert commit(registry, "third").version.version == "v2"


def test_name_with_another_type_raises_type_conflict_naming_both_types(
    registry: SqliteRegistry,
) -> None:
    commit(registry, "d0", name="mnist", type="dataset")
    with pytest.raises(TypeConflictError) as caught:
        commit(registry, "d1", name="mnist", type="model")
    message = str(caught.value)
    assert "'mnist'" in message and "'dataset'" in message and "'model'" in message


def test_same_name_may_have_another_type_in_another_project(registry: SqliteRegistry) -> None:
    commit(registry, "d0", name="mnist", type="dataset")
    assert commit(registry, "d0", name="mnist", type="model", project="other").created


def test_failed_commit_leaves_nothing_behind(registry: SqliteRegistry, db_path: Path) -> None:
    # Make the last statement of the commit transaction fail, after the project,
    # collection, run, version, tags, aliases and lineage rows were written.
    with closing(sqlite3.connect(db_path)) as other:
        other.execute(
            "CREATE TRIGGER fail_last BEFORE INSERT ON submissions"
            " BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        )
    with pytest.raises(RegistryError, match="injected failure"):
        commit(registry, "d0", aliases=["best"], tags=["t"], run_id="run-1")
    assert registry.list_collections("proj") == []
    assert registry.list_runs("proj") == []
    assert registry.submission_result("x") is None
    with closing(sqlite3.connect(db_path)) as other:
        other.execute("DROP TRIGGER fail_last")
    assert commit(registry, "d0").version.version == "v0"


def test_commit_with_run_records_produced_edge(registry: SqliteRegistry) -> None:
    registry.ensure_run("proj", None, "run-1", job_type="train")
    version = commit(registry, "d0", run_id="run-1").version
    assert version.run_id == "run-1"
    producer = registry.produced_by(version.id)
    assert producer is not None and (producer.id, producer.job_type) == ("run-1", "train")
    assert [v.id for v in registry.logged_by_run("run-1")] == [version.id]


def test_commit_names_an_unknown_run_creates_it(registry: SqliteRegistry) -> None:
    commit(registry, "d0", run_id="late-run")
    assert [run.id for run in registry.list_runs("proj")] == ["late-run"]


def test_identical_content_from_another_run_is_listed_for_it_but_keeps_its_creator(
    registry: SqliteRegistry,
) -> None:
    version = commit(registry, "d0", run_id="run-1").version
    commit(registry, "d0", run_id="run-2")
    assert [v.id for v in registry.logged_by_run("run-2")] == [version.id]
    producer = registry.produced_by(version.id)
    assert producer is not None and producer.id == "run-1"


def test_version_without_run_has_no_producer(registry: SqliteRegistry) -> None:
    assert registry.produced_by(commit(registry, "d0").version.id) is None


# -- aliases and latest -------------------------------------------------------------------


def test_latest_names_highest_version_after_each_commit(registry: SqliteRegistry) -> None:
    for i in range(3):
        commit(registry, f"d{i}", aliases=[])
        assert registry.get_version("proj", "model", "latest").index == i
        assert [
            v.version for v in registry.list_versions("proj", "model") if "latest" in v.aliases
        ] == [f"v{i}"]


def test_user_alias_moves_to_the_version_that_takes_it(registry: SqliteRegistry) -> None:
    commit(registry, "d0", aliases=["best"])
    commit(registry, "d1", aliases=["best"])
    assert registry.get_version("proj", "model", "best").version == "v1"
    assert aliases_of(registry, "v0") == []


def test_aliases_of_different_collections_are_independent(registry: SqliteRegistry) -> None:
    commit(registry, "d0", name="a", aliases=["best"])
    commit(registry, "d1", name="b", aliases=["best"])
    assert registry.get_version("proj", "a", "best").digest == "d0"
    assert registry.get_version("proj", "b", "best").digest == "d1"


def test_set_aliases_replaces_this_versions_aliases_and_moves_others(
    registry: SqliteRegistry,
) -> None:
    v0 = commit(registry, "d0", aliases=["old", "keep"]).version
    commit(registry, "d1", aliases=["prod"])
    updated = registry.set_aliases(v0.id, ["keep", "prod"])
    assert updated.aliases == ["keep", "prod"]
    assert aliases_of(registry, "v1") == ["latest"]
    with pytest.raises(NotFoundError):
        registry.get_version("proj", "model", "old")


def test_set_aliases_refuses_latest_on_an_older_version(registry: SqliteRegistry) -> None:
    v0 = commit(registry, "d0").version
    v1 = commit(registry, "d1").version
    with pytest.raises(InvalidInputError, match="latest"):
        registry.set_aliases(v0.id, ["latest", "best"])
    assert aliases_of(registry, "v0") == []
    assert registry.set_aliases(v1.id, ["latest"]).aliases == ["latest"]


def test_set_aliases_cannot_remove_latest(registry: SqliteRegistry) -> None:
    v0 = commit(registry, "d0", aliases=["best"]).version
    assert registry.set_aliases(v0.id, []).aliases == ["latest"]


def test_alias_shaped_like_a_version_label_is_refused(registry: SqliteRegistry) -> None:
    with pytest.raises(InvalidInputError, match="looks like a version"):
        commit(registry, "d0", aliases=["v3"])


# -- reads --------------------------------------------------------------------------------


def test_get_version_by_label_alias_and_id(registry: SqliteRegistry) -> None:
    v0 = commit(registry, "d0", aliases=["best"], description="first", tags=["x"]).version
    commit(registry, "d1")
    for ref in ("v0", "best"):
        assert registry.get_version("proj", "model", ref) == registry.get_version_by_id(v0.id)
    found = registry.get_version_by_id(v0.id)
    assert (found.description, found.tags, found.state, found.qualified_name) == (
        "first",
        ["x"],
        "COMMITTED",
        "local/proj/model:v0",
    )


def test_missing_alias_message_lists_versions_and_aliases(registry: SqliteRegistry) -> None:
    commit(registry, "d0", aliases=["best"])
    commit(registry, "d1", aliases=["prod"])
    with pytest.raises(NotFoundError) as caught:
        registry.get_version("proj", "model", "v9")
    message = str(caught.value)
    for expected in ("'v9'", "v0 to v1", "best", "prod", "latest"):
        assert expected in message


def test_missing_name_message_lists_project_collections(registry: SqliteRegistry) -> None:
    commit(registry, "d0", name="mnist", type="dataset")
    commit(registry, "d1", name="resnet", type="model")
    with pytest.raises(NotFoundError) as caught:
        registry.get_version("proj", "resnt", "latest")
    assert "mnist (dataset)" in str(caught.value) and "resnet (model)" in str(caught.value)


def test_missing_name_in_empty_project_says_so(registry: SqliteRegistry) -> None:
    with pytest.raises(NotFoundError, match="has no artifacts yet"):
        registry.get_version("empty", "model", "latest")


def test_unknown_version_id_raises_not_found(registry: SqliteRegistry) -> None:
    for call in (registry.get_version_by_id, registry.produced_by, registry.used_by):
        with pytest.raises(NotFoundError):
            call("no-such-id")


def test_list_collections_filters_by_type_and_counts_versions(registry: SqliteRegistry) -> None:
    commit(registry, "d0", name="mnist", type="dataset")
    commit(registry, "d1", name="mnist", type="dataset")
    commit(registry, "d2", name="resnet", type="model")
    everything = registry.list_collections("proj")
    assert [(c.name, c.type, c.version_count) for c in everything] == [
        ("mnist", "dataset", 2),
        ("resnet", "model", 1),
    ]
    assert [c.name for c in registry.list_collections("proj", type="model")] == ["resnet"]


def test_entity_none_means_the_default_entity_and_entities_are_separate(
    registry: SqliteRegistry,
) -> None:
    commit(registry, "d0")
    commit(registry, "d1", entity="team")
    assert registry.get_version("proj", "model", "v0", entity=DEFAULT_ENTITY).digest == "d0"
    assert registry.get_version("proj", "model", "v0", entity="team").digest == "d1"


def test_metadata_and_config_round_trip_as_json(registry: SqliteRegistry) -> None:
    metadata = {"epochs": 3, "lr": 0.1, "layers": [1, 2], "nested": {"ok": True, "none": None}}
    run = registry.ensure_run("proj", None, "r", config={"batch": 32})
    assert run.config == {"batch": 32}
    assert commit(registry, "d0", metadata=metadata).version.metadata == metadata


def test_non_json_metadata_is_refused_naming_the_artifact(registry: SqliteRegistry) -> None:
    with pytest.raises(InvalidInputError, match="metadata of artifact 'model'"):
        commit(registry, "d0", metadata={"path": Path("/x")})


def test_ensure_run_creates_then_updates_only_given_fields(registry: SqliteRegistry) -> None:
    first = registry.ensure_run("proj", None, "r1", name="exp", job_type="train", group="g")
    resumed = registry.ensure_run("proj", None, "r1", config={"a": 1})
    assert (resumed.name, resumed.job_type, resumed.group, resumed.config) == (
        "exp",
        "train",
        "g",
        {"a": 1},
    )
    assert resumed.created_at == first.created_at
    assert registry.get_run("proj", "r1") == resumed
    with pytest.raises(NotFoundError):
        registry.get_run("proj", "r2")


# -- lineage ------------------------------------------------------------------------------


def test_record_use_is_idempotent_and_listed_both_ways(registry: SqliteRegistry) -> None:
    v0 = commit(registry, "d0").version
    v1 = commit(registry, "d1").version
    registry.ensure_run("proj", None, "consumer")
    for version in (v1, v0, v1):
        registry.record_use("consumer", version.id)
    assert [v.version for v in registry.used_by_run("consumer")] == ["v1", "v0"]
    assert [run.id for run in registry.used_by(v1.id)] == ["consumer"]
    assert registry.logged_by_run("consumer") == []


def test_record_use_of_unknown_run_or_version_raises_not_found(registry: SqliteRegistry) -> None:
    version = commit(registry, "d0").version
    registry.ensure_run("proj", None, "r")
    with pytest.raises(NotFoundError):
        registry.record_use("ghost", version.id)
    with pytest.raises(NotFoundError):
        registry.record_use("r", "no-such-version")


def test_run_id_shared_by_two_projects_needs_the_project(registry: SqliteRegistry) -> None:
    version = commit(registry, "d0", project="a", run_id="same").version
    commit(registry, "d1", project="b", run_id="same")
    with pytest.raises(RegistryError, match="pass project="):
        registry.logged_by_run("same")
    assert [v.id for v in registry.logged_by_run("same", project="a")] == [version.id]


# -- the file, its schema and its readers -------------------------------------------------


def test_registry_file_uses_wal_full_sync_and_foreign_keys(
    registry: SqliteRegistry, db_path: Path
) -> None:
    conn = registry._connection()
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    with closing(sqlite3.connect(db_path)) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert other.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_reopening_keeps_committed_versions(db_path: Path) -> None:
    with SqliteRegistry(db_path) as reg:
        committed = commit(reg, "d0", submission_id="s")
    with SqliteRegistry(db_path) as reg:
        assert reg.submission_result("s") == committed
        assert commit(reg, "d1").version.version == "v1"


def test_registry_from_a_newer_artisync_is_refused(db_path: Path) -> None:
    SqliteRegistry(db_path).close()
    with closing(sqlite3.connect(db_path)) as other:
        other.execute("PRAGMA user_version = 99")
    with pytest.raises(RegistryError, match="schema version 99"):
        SqliteRegistry(db_path)
    with pytest.raises(RegistryError, match="schema version 99"):
        SqliteRegistry(db_path, read_only=True)


def test_closed_registry_raises_registry_error(db_path: Path) -> None:
    reg = SqliteRegistry(db_path)
    reg.close()
    with pytest.raises(RegistryError, match="closed"):
        reg.list_collections("proj")


def test_reader_connection_keeps_its_snapshot_while_daemon_commits(db_path: Path) -> None:
    # timeout=1: if the reader blocked the writer (no WAL), this fails fast, not in 30 s.
    with SqliteRegistry(db_path, timeout=1.0) as reg:
        commit(reg, "d0")
        uri = f"{db_path.as_uri()}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True, isolation_level=None)) as reader:
            reader.execute("BEGIN")
            assert reader.execute("SELECT count(*) FROM versions").fetchone()[0] == 1
            commit(reg, "d1")
            commit(reg, "d2")
            assert reader.execute("SELECT count(*) FROM versions").fetchone()[0] == 1
            reader.execute("COMMIT")
            assert reader.execute("SELECT count(*) FROM versions").fetchone()[0] == 3


def test_read_only_registry_sees_commits_and_refuses_writes(db_path: Path) -> None:
    with SqliteRegistry(db_path) as writer, SqliteRegistry(db_path, read_only=True) as reader:
        commit(writer, "d0")
        assert reader.get_version("proj", "model", "latest").version == "v0"
        commit(writer, "d1")
        assert reader.get_version("proj", "model", "latest").version == "v1"
        with pytest.raises(RegistryError, match="read-only"):
            commit(reader, "d2")


def test_read_only_registry_without_a_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="no registry at"):
        SqliteRegistry(tmp_path / "missing.db", read_only=True)


def test_reader_in_another_process_follows_the_writer(db_path: Path) -> None:
    script = (
        "import sys\n"
        "from artisync.registry import SqliteRegistry\n"
        "with SqliteRegistry(sys.argv[1], read_only=True) as reg:\n"
        "    for line in sys.stdin:\n"
        "        print(reg.get_version('proj', 'model', 'latest').version, flush=True)\n"
    )
    package_root = str(Path(artisync.__file__).parent.parent)
    env = {**os.environ, "PYTHONPATH": package_root}
    with SqliteRegistry(db_path) as writer:
        commit(writer, "d0")
        with subprocess.Popen(
            [sys.executable, "-c", script, str(db_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        ) as reader:
            assert reader.stdin is not None and reader.stdout is not None
            for i in range(3):
                if i:
                    commit(writer, f"d{i}")
                reader.stdin.write("?\n")
                reader.stdin.flush()
                assert reader.stdout.readline().strip() == f"v{i}"
            reader.stdin.close()
            assert reader.wait(timeout=30) == 0


def test_commits_from_many_threads_get_distinct_consecutive_numbers(
    registry: SqliteRegistry,
) -> None:
    results: list[CommitResult] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(thread: int) -> None:
        try:
            for i in range(20):
                result = commit(registry, f"t{thread}-{i}", run_id=f"run-{thread}")
                registry.get_version("proj", "model", result.version.version)
                with lock:
                    results.append(result)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(r.version.index for r in results) == list(range(160))
    assert registry.get_version("proj", "model", "latest").index == 159
    assert all(len(registry.logged_by_run(f"run-{n}")) == 20 for n in range(8))


def test_registry_works_from_asyncio_to_thread(registry: SqliteRegistry) -> None:
    async def main() -> list[str]:
        await asyncio.gather(
            *(asyncio.to_thread(commit, registry, f"d{i}", name=f"a{i % 3}") for i in range(12))
        )
        found = await asyncio.gather(
            *(asyncio.to_thread(registry.list_versions, "proj", f"a{n}") for n in range(3))
        )
        return [v.version for versions in found for v in versions]

    assert sorted(asyncio.run(main())) == sorted(["v0", "v1", "v2", "v3"] * 3)


def test_sqlite_registry_implements_the_registry_contract(registry: SqliteRegistry) -> None:
    assert isinstance(registry, Registry)


# -- lookups are index lookups ------------------------------------------------------------


def _populate(reg: SqliteRegistry, project: str, count: int) -> tuple[str, str]:
    """A collection of ``count`` versions, each from its own run (some with a TTL, every
    tenth deleted, a pending part per ten); returns (v0 id, run)."""
    first = commit(reg, "d0", project=project, run_id="r0", aliases=["best"]).version
    for i in range(1, count):
        version = commit(reg, f"d{i}", project=project, run_id=f"r{i}", ttl_seconds=i + 60).version
        if i % 10 == 5:
            reg.delete_version(version.id)
        if i % 10 == 7:
            reg.add_part(
                submission_id=uuid.uuid4().hex,
                project=project,
                entity=None,
                name="model",
                type="model",
                distributed_id=f"dist-{i}",
                manifest_key=f"parts/{i}",
                run_id=f"r{i}",
                size=1,
                file_count=1,
            )
    reg.add_part(
        submission_id=uuid.uuid4().hex,
        project=project,
        entity=None,
        name="model",
        type="model",
        distributed_id="dist",
        manifest_key="parts/first",
        run_id="r0",
        size=1,
        file_count=1,
    )
    reg.record_use("r1", first.id, project=project)
    return first.id, "r0"


def _lookups(
    reg: SqliteRegistry, project: str, version_id: str, run: str
) -> list[Callable[[], Any]]:
    return [
        lambda: reg.get_version(project, "model", "v0"),
        lambda: reg.get_version(project, "model", "best"),
        lambda: reg.get_version(project, "model", "latest"),
        lambda: reg.get_version_by_id(version_id),
        lambda: reg.produced_by(version_id),
        lambda: reg.used_by(version_id),
        lambda: reg.logged_by_run(run, project=project),
        lambda: reg.used_by_run("r1", project=project),
        lambda: reg.writers(version_id),
        lambda: reg.find_run(project, run),
        lambda: reg.list_parts(project, "model", "dist"),
        lambda: reg.expired_versions(0.0),
        lambda: reg.submission_result("unknown"),
        lambda: commit(reg, uuid.uuid4().hex, project=project, aliases=["best"]),
        lambda: commit(reg, "d0", project=project),
    ]


def test_lookups_use_indexes_not_table_scans(registry: SqliteRegistry, db_path: Path) -> None:
    version_id, run = _populate(registry, "proj", 5)
    statements: list[str] = []
    registry._connection().set_trace_callback(statements.append)
    for lookup in _lookups(registry, "proj", version_id, run):
        lookup()
    registry._connection().set_trace_callback(None)
    queries = {s for s in statements if s.lstrip().upper().startswith("SELECT")}
    assert len(queries) > 10
    with closing(sqlite3.connect(db_path)) as other:
        for sql in queries:
            plan = [row[3] for row in other.execute(f"EXPLAIN QUERY PLAN {sql}")]
            scans = [step for step in plan if step.startswith("SCAN")]
            assert scans == [], f"{sql}\n{plan}"


def test_lookup_cost_does_not_grow_with_collection_size(registry: SqliteRegistry) -> None:
    # Counts SQLite virtual-machine steps: a range walk over the collection (which a
    # query plan still reports as SEARCH) would grow with it; an index seek does not.
    small_id, small_run = _populate(registry, "small", 10)
    large_id, large_run = _populate(registry, "large", 1000)
    conn = registry._connection()

    def steps(lookup: Callable[[], Any]) -> int:
        counter = [0]

        def tick() -> int:
            counter[0] += 1
            return 0

        conn.set_progress_handler(tick, 1)
        try:
            lookup()
        finally:
            conn.set_progress_handler(None, 1)
        return counter[0]

    small_costs = [steps(f) for f in _lookups(registry, "small", small_id, small_run)]
    large_costs = [steps(f) for f in _lookups(registry, "large", large_id, large_run)]
    for n, (cheap, costly) in enumerate(zip(small_costs, large_costs, strict=True)):
        assert costly <= cheap * 1.2 + 20, f"lookup #{n}: {cheap} steps at 10, {costly} at 1000"


def test_latest_stays_one_step_when_the_newest_versions_are_deleted(
    registry: SqliteRegistry,
) -> None:
    conn = registry._connection()

    def latest_steps(project: str, count: int) -> int:
        ids = [commit(registry, f"d{i}", project=project).version.id for i in range(count)]
        for version_id in ids[count // 2 :]:
            registry.delete_version(version_id)
        counter = [0]

        def tick() -> int:
            counter[0] += 1
            return 0

        conn.set_progress_handler(tick, 1)
        try:
            found = registry.get_version(project, "model", "latest")
        finally:
            conn.set_progress_handler(None, 1)
        assert found.index == count // 2 - 1
        return counter[0]

    cheap, costly = latest_steps("small", 10), latest_steps("large", 1000)
    assert costly <= cheap * 1.2 + 20, f"{cheap} steps with 5 deleted, {costly} with 500"
