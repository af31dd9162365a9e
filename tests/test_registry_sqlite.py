"""What only the embedded SQLite registry has: its file (WAL, schema version, reopening),
readers in other connections and processes, many processes creating and writing one file,
commits that fail half-way, and lookups that are index seeks. The rules every backend
keeps are in the contract suite (``test_registry.py`` and its siblings)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

import artisync
from artisync.errors import RegistryError
from artisync.registry import SCHEMA_VERSION, SqliteRegistry
from registry_backends import add_part, commit, finish

T = TypeVar("T")


# -- commits that fail half-way -----------------------------------------------------------


@contextmanager
def _last_insert_fails(db_path: Path) -> Iterator[None]:
    """Make the last statement of a commit transaction fail (its ``submissions`` row),
    after the project, collection, run, version, tags, aliases, lineage and consumed
    parts were written; reads and other writes go on as before."""
    with closing(sqlite3.connect(db_path)) as other:
        other.execute(
            "CREATE TRIGGER fail_last BEFORE INSERT ON submissions"
            " BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        )
    try:
        yield
    finally:
        with closing(sqlite3.connect(db_path)) as other:
            other.execute("DROP TRIGGER fail_last")


def test_failed_commit_leaves_nothing_behind(
    sqlite_registry: SqliteRegistry, db_path: Path
) -> None:
    with _last_insert_fails(db_path):
        with pytest.raises(RegistryError, match="injected failure"):
            commit(sqlite_registry, "d0", aliases=["best"], tags=["t"], run_id="run-1")
        assert sqlite_registry.list_collections("proj") == []
        assert sqlite_registry.list_runs("proj") == []
        assert sqlite_registry.submission_result("x") is None
    assert commit(sqlite_registry, "d0").version.version == "v0"


def test_failed_finish_leaves_the_parts_pending(
    sqlite_registry: SqliteRegistry, db_path: Path
) -> None:
    add_part(sqlite_registry, "m/1", run_id="w1")
    with _last_insert_fails(db_path):
        with pytest.raises(RegistryError, match="injected failure"):
            finish(sqlite_registry, "merged", run_id="boss")
        assert [p.manifest_key for p in sqlite_registry.list_parts("proj", "ds", "d1")] == ["m/1"]
        assert sqlite_registry.logged_by_run("w1") == []
    assert finish(sqlite_registry, "merged").version.version == "v0"


# -- the file, its schema and its readers -------------------------------------------------


def test_registry_file_uses_wal_full_sync_and_foreign_keys(
    sqlite_registry: SqliteRegistry, db_path: Path
) -> None:
    conn = sqlite_registry._connection()
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


# -- many processes ------------------------------------------------------------------------


def test_opening_a_new_registry_waits_for_another_process_creating_it(tmp_path: Path) -> None:
    # Another process is creating the file (it holds the write lock of a file not yet in
    # WAL mode). Switching to WAL then fails at once in SQLite, busy timeout or not;
    # the registry must wait for the lock like any other write.
    path = tmp_path / "registry.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as creator:
        creator.execute("CREATE TABLE placeholder (x)")
        creator.execute("BEGIN IMMEDIATE")
        opened: list[SqliteRegistry] = []
        failed: list[BaseException] = []

        def open_registry() -> None:
            try:
                opened.append(SqliteRegistry(path, timeout=30))
            except BaseException as exc:
                failed.append(exc)

        opener = threading.Thread(target=open_registry)
        opener.start()
        opener.join(timeout=0.5)
        assert failed == [] and opener.is_alive(), "the opener gave up instead of waiting"
        creator.execute("ROLLBACK")
    opener.join(timeout=30)
    assert failed == [] and len(opened) == 1
    with opened[0] as reg:
        assert reg.ensure_run("p", None, "r").state == "running"


def test_opening_gives_up_after_the_timeout_with_a_registry_error(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as creator:
        creator.execute("CREATE TABLE placeholder (x)")
        creator.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        with pytest.raises(RegistryError, match="locked"):
            SqliteRegistry(path, timeout=0.3)
        assert time.monotonic() - started >= 0.3
        creator.execute("ROLLBACK")


_WRITER = """
import os, sys, time, uuid
from pathlib import Path
from artisync.registry import NewVersion, SqliteRegistry

work, n, rounds = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for k in range(rounds):
    (work / f"ready-{k}-{n}").touch()
    while not (work / f"go-{k}").exists():
        time.sleep(0.0005)
    # A fresh file each round: the processes race to create it and switch it to WAL.
    with SqliteRegistry(work / f"registry-{k}.db") as reg:
        run = f"run-{n}"
        for i in range(4):
            reg.ensure_run("p", None, run, config={"i": i})
            reg.set_run_summary("p", run, {"step": i})
            reg.commit_version(NewVersion(
                submission_id=uuid.uuid4().hex, project="p", entity=None, name="m",
                type="model", digest=uuid.uuid4().hex, manifest_key="k", size=1,
                file_count=1, description=None, metadata={}, aliases=["best"], tags=[],
                run_id=run, ttl_seconds=None,
            ))
        reg.set_run_state("p", run, "finished")
"""


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)


def test_processes_starting_together_on_a_new_registry_all_write(tmp_path: Path) -> None:
    writers, rounds = 6, 10
    env = {**os.environ, "PYTHONPATH": str(Path(artisync.__file__).parent.parent)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(tmp_path), str(n), str(rounds)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(writers)
    ]
    try:
        for k in range(rounds):
            ready = [tmp_path / f"ready-{k}-{n}" for n in range(writers)]

            def all_ready(ready: list[Path] = ready) -> bool:
                return all(
                    path.exists() or proc.poll() is not None
                    for path, proc in zip(ready, procs, strict=True)
                )

            _wait_for(all_ready, f"the writers to be ready for round {k}")
            (tmp_path / f"go-{k}").touch()
        errors = [proc.communicate(timeout=120)[1] for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    assert [proc.returncode for proc in procs] == [0] * writers, "\n".join(errors)
    for k in range(rounds):
        with SqliteRegistry(tmp_path / f"registry-{k}.db", read_only=True) as reg:
            runs = reg.list_runs("p")
            assert sorted(r.id for r in runs) == sorted(f"run-{n}" for n in range(writers))
            assert {(r.state, r.summary["step"]) for r in runs} == {("finished", 3)}
            versions = reg.list_versions("p", "m")
            assert [v.index for v in versions] == list(range(4 * writers))
            assert reg.get_version("p", "m", "best").index == 4 * writers - 1


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
            add_part(
                reg,
                f"parts/{i}",
                project=project,
                name="model",
                type="model",
                distributed_id=f"dist-{i}",
                run_id=f"r{i}",
                size=1,
            )
    add_part(
        reg,
        "parts/first",
        project=project,
        name="model",
        type="model",
        distributed_id="dist",
        run_id="r0",
        size=1,
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


def test_lookups_use_indexes_not_table_scans(
    sqlite_registry: SqliteRegistry, db_path: Path
) -> None:
    version_id, run = _populate(sqlite_registry, "proj", 5)
    statements: list[str] = []
    sqlite_registry._connection().set_trace_callback(statements.append)
    for lookup in _lookups(sqlite_registry, "proj", version_id, run):
        lookup()
    sqlite_registry._connection().set_trace_callback(None)
    queries = {s for s in statements if s.lstrip().upper().startswith("SELECT")}
    assert len(queries) > 10
    with closing(sqlite3.connect(db_path)) as other:
        for sql in queries:
            plan = [row[3] for row in other.execute(f"EXPLAIN QUERY PLAN {sql}")]
            scans = [step for step in plan if step.startswith("SCAN")]
            assert scans == [], f"{sql}\n{plan}"


def _steps(conn: sqlite3.Connection, call: Callable[[], T]) -> tuple[T, int]:
    """What ``call`` returns, and how many SQLite virtual-machine steps it took on ``conn``."""
    counter = [0]

    def tick() -> int:
        counter[0] += 1
        return 0

    conn.set_progress_handler(tick, 1)
    try:
        result = call()
    finally:
        conn.set_progress_handler(None, 1)
    return result, counter[0]


def test_lookup_cost_does_not_grow_with_collection_size(sqlite_registry: SqliteRegistry) -> None:
    # Counts SQLite virtual-machine steps: a range walk over the collection (which a
    # query plan still reports as SEARCH) would grow with it; an index seek does not.
    small_id, small_run = _populate(sqlite_registry, "small", 10)
    large_id, large_run = _populate(sqlite_registry, "large", 1000)
    conn = sqlite_registry._connection()
    small = _lookups(sqlite_registry, "small", small_id, small_run)
    large = _lookups(sqlite_registry, "large", large_id, large_run)
    small_costs = [_steps(conn, f)[1] for f in small]
    large_costs = [_steps(conn, f)[1] for f in large]
    for n, (cheap, costly) in enumerate(zip(small_costs, large_costs, strict=True)):
        assert costly <= cheap * 1.2 + 20, f"lookup #{n}: {cheap} steps at 10, {costly} at 1000"


def test_latest_stays_one_step_when_the_newest_versions_are_deleted(
    sqlite_registry: SqliteRegistry,
) -> None:
    conn = sqlite_registry._connection()

    def latest_steps(project: str, count: int) -> int:
        ids = [commit(sqlite_registry, f"d{i}", project=project).version.id for i in range(count)]
        for version_id in ids[count // 2 :]:
            sqlite_registry.delete_version(version_id)
        found, steps = _steps(conn, lambda: sqlite_registry.get_version(project, "model", "latest"))
        assert found.index == count // 2 - 1
        return steps

    cheap, costly = latest_steps("small", 10), latest_steps("large", 1000)
    assert costly <= cheap * 1.2 + 20, f"{cheap} steps with 5 deleted, {costly} with 500"
