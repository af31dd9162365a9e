"""What only the PostgreSQL registry has: many writers, each with its own pool (as many
``artisync server`` processes would be), committing to one database at once; its schema
migrations, shared by processes that open the database together; its connection errors;
and lookups that are index scans however large the tables grow. The rules every backend
keeps are in the contract suite (``test_registry.py`` and its siblings)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import psycopg
import pytest

from artisync.errors import InvalidInputError, RegistryError
from artisync.registry import CommitResult, NewVersion
from artisync.registry.postgres import PostgresRegistry
from artisync.registry.postgres import commit as postgres_commit
from artisync.registry.postgres.schema import MIGRATIONS, SCHEMA_VERSION
from registry_backends import add_part, commit, new_version

T = TypeVar("T")


def _together(count: int, work: Callable[[int], T], timeout: float = 60) -> list[T]:
    """``work(0)`` ... ``work(count - 1)`` on as many threads, released at one instant;
    their results in order, or the first error raised."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            barrier.wait(timeout)
            results[n] = work(n)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a writer did not finish"
    if errors:
        raise errors[0]
    return results


@pytest.fixture
def registries(postgres_dsn: str) -> Iterator[list[PostgresRegistry]]:
    """Eight registries on one fresh database, each with its own pool."""
    opened = [PostgresRegistry(postgres_dsn, max_size=2) for _ in range(8)]
    try:
        yield opened
    finally:
        for reg in opened:
            reg.close()


# -- many writers -------------------------------------------------------------------------


def test_concurrent_writers_get_gap_free_numbers_each_in_its_own_order(
    registries: list[PostgresRegistry],
) -> None:
    def writer(n: int) -> list[int]:
        reg = registries[n]
        return [
            commit(
                reg, f"w{n}-{i}", run_id=f"writer-{n}", metadata={"writer": n, "i": i}
            ).version.index
            for i in range(25)
        ]

    indexes = _together(8, writer)
    assert sorted(i for mine in indexes for i in mine) == list(range(200))
    for mine in indexes:
        assert mine == sorted(mine), "a writer's versions came out of its commit order"
    versions = registries[0].list_versions("proj", "model")
    assert [v.index for v in versions] == list(range(200))
    for n in range(8):
        logged = [v.metadata["i"] for v in versions if v.metadata["writer"] == n]
        assert logged == list(range(25))
    assert registries[0].get_version("proj", "model", "latest").index == 199
    assert [v.aliases for v in versions].count(["latest"]) == 1


def test_one_submission_committed_from_two_registries_at_once_is_one_version(
    registries: list[PostgresRegistry],
) -> None:
    for attempt in range(10):
        version = new_version(f"d{attempt}", aliases=["best"])
        # The same submission under another name: the idempotency key is the
        # submission id, whatever collection the retry names.
        renamed = NewVersion(**{**_fields(version), "name": "other"})
        pair = (version, renamed)
        first, second = _together(2, lambda n, pair=pair: registries[n].commit_version(pair[n]))
        assert first == second
        assert first.created
    names = {c.name: c.version_count for c in registries[0].list_collections("proj")}
    assert sum(names.values()) == 10


def _fields(version: NewVersion) -> dict[str, Any]:
    return {name: getattr(version, name) for name in NewVersion.__dataclass_fields__}


def test_commits_racing_on_one_alias_leave_it_on_exactly_one_version(
    registries: list[PostgresRegistry],
) -> None:
    results: list[CommitResult] = _together(
        8, lambda n: commit(registries[n], f"d{n}", aliases=["best", f"mine-{n}"])
    )
    reg = registries[0]
    best = reg.get_version("proj", "model", "best")
    # The last commit to take the alias holds it: the one with the highest number.
    assert best.index == max(r.version.index for r in results) == 7
    holders = [v for v in reg.list_versions("proj", "model") if "best" in v.aliases]
    assert [v.id for v in holders] == [best.id]


def test_parts_added_while_a_finish_commits_belong_to_one_version_or_the_next(
    registries: list[PostgresRegistry],
) -> None:
    add_part(registries[0], "m/first")

    def work(n: int) -> object:
        if n == 0:
            return commit(registries[0], "merged", name="ds", type="dataset", distributed_id="d1")
        return add_part(registries[n], f"m/{n}")

    _together(8, work)
    reg = registries[0]
    pending = {p.manifest_key for p in reg.list_parts("proj", "ds", "d1")}
    merged = {f"m/{n}" for n in range(1, 8)} - pending
    writers_of_merged = {r.id for r in reg.writers(reg.get_version("proj", "ds", "v0").id)}
    assert "m/first" not in pending
    assert len(pending) + len(merged) == 7
    assert writers_of_merged == set()  # parts without runs add no writers
    assert reg.live_manifest_keys() >= pending


# -- migrations ---------------------------------------------------------------------------


def _versions_recorded(dsn: str) -> list[tuple[int, str]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT version, name FROM schema_version ORDER BY version")
        return [(int(v), str(n)) for v, n in rows]


def test_opening_together_applies_each_migration_once(postgres_dsn: str) -> None:
    opened = _together(6, lambda n: PostgresRegistry(postgres_dsn))
    for reg in opened:
        reg.close()
    assert _versions_recorded(postgres_dsn) == [(m.version, m.name) for m in MIGRATIONS]
    assert SCHEMA_VERSION == len(MIGRATIONS) >= 1


def test_migration_0002_records_no_store_for_existing_rows_and_applies_once(
    postgres_dsn: str,
) -> None:
    with PostgresRegistry(postgres_dsn) as reg:
        before = commit(reg, "d0", aliases=["best"]).version
        add_part(reg, "m/a")
    # Back to the database as version 1 left it: no store columns, 0002 not recorded.
    with psycopg.connect(postgres_dsn) as conn:
        conn.execute("ALTER TABLE versions DROP COLUMN store")
        conn.execute("ALTER TABLE parts DROP COLUMN store")
        conn.execute("DROP FUNCTION artisync_commit_versions")
        conn.execute("DROP FUNCTION artisync_project")
        conn.execute("DROP TABLE api_keys, members, teams, users")
        conn.execute("ALTER TABLE projects DROP COLUMN visibility")
        conn.execute("DROP TABLE manifest_blobs, blob_uploads")
        conn.execute("DROP INDEX versions_by_manifest, parts_by_manifest")
        _undo_0006(conn)
        conn.execute("DELETE FROM schema_version WHERE version >= 2")
    opened = _together(4, lambda n: PostgresRegistry(postgres_dsn))
    try:
        reg = opened[0]
        assert reg.get_version("proj", "model", "best") == before
        assert before.store is None
        assert [p.store for p in reg.list_parts("proj", "ds", "d1")] == [None]
        stored = commit(reg, "d1", store="s3://bucket/prefix").version
        assert opened[1].get_version_by_id(stored.id).store == "s3://bucket/prefix"
    finally:
        for each in opened:
            each.close()
    recorded = _versions_recorded(postgres_dsn)
    assert recorded == [
        (1, "0001_initial.sql"),
        (2, "0002_version_store.sql"),
        (3, "0003_commit_function.sql"),
        (4, "0004_access.sql"),
        (5, "0005_blob_index.sql"),
        (6, "0006_runs_history_sweeps.sql"),
        (7, "0007_latest_follows_relog.sql"),
    ]


def _undo_0006(conn: psycopg.Connection[Any]) -> None:
    """Back to the schema before runs kept tags, notes, sweeps and history."""
    conn.execute("DROP TABLE history, sweeps")
    conn.execute("ALTER TABLE runs DROP COLUMN tags, DROP COLUMN notes, DROP COLUMN sweep_id")


def test_migration_0006_keeps_the_runs_with_no_tags_history_or_sweep(postgres_dsn: str) -> None:
    with PostgresRegistry(postgres_dsn) as reg:
        reg.ensure_run("proj", None, "r1", config={"lr": 0.1})
        reg.set_run_summary("proj", "r1", {"loss": 0.5})
        version = commit(reg, "d0", run_id="r1").version
    with psycopg.connect(postgres_dsn) as conn:
        _undo_0006(conn)
        conn.execute("DELETE FROM schema_version WHERE version >= 6")
    with PostgresRegistry(postgres_dsn) as reg:
        run = reg.get_run("proj", "r1")
        assert (run.config, run.summary, run.tags, run.notes, run.sweep) == (
            {"lr": 0.1},
            {"loss": 0.5},
            [],
            None,
            None,
        )
        assert reg.run_history("proj", "r1") == []
        assert reg.logged_by_run("r1") == [version]
        reg.append_history("proj", "r1", [{"_step": 0, "loss": 1.0}])
        assert reg.create_sweep("proj", "s", {"method": "grid"}).id == "s"
    assert len(_versions_recorded(postgres_dsn)) == SCHEMA_VERSION == 7


def test_database_newer_than_the_code_is_refused(postgres_dsn: str) -> None:
    PostgresRegistry(postgres_dsn).close()
    with psycopg.connect(postgres_dsn) as conn:
        conn.execute(
            "INSERT INTO schema_version (version, name) VALUES (%s, 'from_the_future.sql')",
            (SCHEMA_VERSION + 1,),
        )
    with pytest.raises(RegistryError, match=r"newer than the \d+ this artisync knows") as caught:
        PostgresRegistry(postgres_dsn)
    assert "upgrade artisync" in str(caught.value)


def test_reopening_keeps_the_data_and_migrates_nothing(postgres_dsn: str) -> None:
    with PostgresRegistry(postgres_dsn) as reg:
        version = commit(reg, "d0", aliases=["best"]).version
    with PostgresRegistry(postgres_dsn) as reg:
        assert reg.get_version("proj", "model", "best") == version
    assert len(_versions_recorded(postgres_dsn)) == SCHEMA_VERSION


# -- connection errors --------------------------------------------------------------------


def test_unreachable_database_is_a_registry_error_without_the_password() -> None:
    dsn = "postgresql://artisync:s3cret@127.0.0.1:1/registry"
    with pytest.raises(RegistryError) as caught:
        PostgresRegistry(dsn, timeout=2)
    message = str(caught.value)
    assert "postgresql://artisync@127.0.0.1:1/registry" in message
    assert "is PostgreSQL running" in message and "s3cret" not in message


def test_nul_in_a_string_is_invalid_input_and_commits_nothing(postgres_dsn: str) -> None:
    # SQLite stores it; PostgreSQL's text cannot. The daemon's routes refuse NUL before
    # either sees it; a direct caller gets the same kind of error as for other bad input.
    with PostgresRegistry(postgres_dsn) as reg:
        with pytest.raises(InvalidInputError, match="NUL character"):
            commit(reg, "d0", description="a\x00b")
        assert commit(reg, "d1").version.version == "v0"


def test_closed_registry_says_so(postgres_dsn: str) -> None:
    reg = PostgresRegistry(postgres_dsn)
    reg.close()
    with pytest.raises(RegistryError, match="is closed"):
        reg.list_projects()


# -- lookups are index scans --------------------------------------------------------------

# Tables that grow with use; a sequential scan of one would make a lookup slower as the
# registry grows. (projects and collections stay small, so the planner may scan them.)
_GROWING = {"versions", "runs", "aliases", "tags", "lineage", "submissions", "parts"}


def _fill(dsn: str, count: int) -> None:
    """``count`` more versions of proj/model, each with a run, an alias, a tag, a lineage
    edge and a submission, a TTL on some, every tenth deleted, and a pending part per ten: written
    in bulk, then analysed, so that the planner knows the tables are large."""
    with psycopg.connect(dsn) as conn:
        conn.execute(
            """
            WITH c AS (SELECT project_id FROM collections WHERE name = 'model')
            INSERT INTO runs (project_id, run_id, config, created_at, updated_at)
            SELECT c.project_id, 'bulk-' || g, '{}', 0, 0 FROM c, generate_series(1, %(n)s) g
            """,
            {"n": count},
        )
        conn.execute(
            """
            WITH c AS (SELECT id FROM collections WHERE name = 'model'),
            top AS (SELECT max(idx) AS idx FROM versions)
            INSERT INTO versions (id, collection_id, idx, digest, manifest_key, size,
                file_count, metadata, created_at, run_id, ttl_seconds, expires_at, state)
            SELECT 'bulk-' || g, c.id, top.idx + g, 'digest-' || g, 'm/' || g, 1, 1, '{}',
                g, r.id, CASE WHEN g %% 3 = 0 THEN 1e9 END, CASE WHEN g %% 3 = 0 THEN 1e9 + g END,
                CASE WHEN g %% 10 = 5 THEN 'DELETED' ELSE 'COMMITTED' END
            FROM c, top, generate_series(1, %(n)s) g
            JOIN runs AS r ON r.run_id = 'bulk-' || g
            """,
            {"n": count},
        )
        conn.execute("INSERT INTO tags SELECT id, 'tag' FROM versions WHERE id LIKE 'bulk-%'")
        conn.execute(
            "INSERT INTO aliases SELECT collection_id, 'alias-' || idx, id FROM versions"
            " WHERE id LIKE 'bulk-%' AND state = 'COMMITTED'"
        )
        conn.execute(
            "INSERT INTO lineage (run_id, version_id, direction, created_at)"
            " SELECT run_id, id, 'produced', 0 FROM versions WHERE id LIKE 'bulk-%'"
        )
        conn.execute(
            "INSERT INTO submissions SELECT 's-' || id, id, true, 0 FROM versions"
            " WHERE id LIKE 'bulk-%'"
        )
        conn.execute(
            "INSERT INTO parts (submission_id, collection_id, distributed_id, manifest_key,"
            " size, file_count, created_at)"
            " SELECT 'p-' || id, collection_id, 'dist-' || idx, 'p/' || idx, 1, 1, 0"
            " FROM versions WHERE id LIKE 'bulk-%' AND idx % 10 = 7"
        )
        for table in sorted(_GROWING):
            conn.execute(f"ANALYZE {table}")


def _seq_scans(plan: dict[str, Any]) -> list[str]:
    found = []
    if plan.get("Node Type") == "Seq Scan" and plan.get("Relation Name") in _GROWING:
        found.append(str(plan["Relation Name"]))
    for child in plan.get("Plans", []):
        found.extend(_seq_scans(child))
    return found


def test_lookups_use_indexes_not_table_scans(
    postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = PostgresRegistry(postgres_dsn, max_size=1)
    try:
        first = commit(reg, "d0", run_id="r0", aliases=["best"]).version
        add_part(reg, "parts/first", name="model", type="model", distributed_id="dist")
        reg.ensure_run("proj", None, "r1")
        reg.record_use("r1", first.id, project="proj")
        _fill(postgres_dsn, 20_000)
        statements: list[tuple[str, Any]] = []
        execute = psycopg.Cursor.execute

        def recording(
            cursor: psycopg.Cursor[Any], query: Any, params: Any = None, **kw: Any
        ) -> Any:
            statements.append((query if isinstance(query, str) else str(query), params))
            return execute(cursor, query, params, **kw)

        monkeypatch.setattr(psycopg.Cursor, "execute", recording)
        lookups: list[Callable[[], object]] = [
            lambda: reg.get_version("proj", "model", "v0"),
            lambda: reg.get_version("proj", "model", "best"),
            lambda: reg.get_version("proj", "model", "latest"),
            lambda: reg.get_version_by_id(first.id),
            lambda: reg.produced_by(first.id),
            lambda: reg.used_by(first.id),
            lambda: reg.writers(first.id),
            lambda: reg.logged_by_run("r0", project="proj"),
            lambda: reg.used_by_run("r1", project="proj"),
            lambda: reg.find_run("proj", "r0"),
            lambda: reg.list_parts("proj", "model", "dist"),
            lambda: reg.expired_versions(0.0),
            lambda: reg.submission_result("unknown"),
            lambda: reg.record_use("r1", first.id),
            lambda: reg.set_aliases(first.id, ["best", "prod"]),
            lambda: commit(reg, uuid.uuid4().hex, aliases=["best"], run_id="r0"),
            lambda: commit(reg, "d0"),
        ]
        for lookup in lookups:
            lookup()
        monkeypatch.undo()
    finally:
        reg.close()
    queries = {
        (sql, json.dumps(params, default=str)): params
        for sql, params in statements
        if not sql.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK"))
    }
    assert len(queries) > 20
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        for (sql, _), params in queries.items():
            row = conn.execute(f"EXPLAIN (FORMAT JSON) {sql}", params).fetchone()
            assert row is not None
            plan = row[0][0]["Plan"]
            assert _seq_scans(plan) == [], f"{sql}\n{json.dumps(plan, indent=1)}"


def test_a_commit_in_the_database_uses_indexes_not_table_scans(postgres_dsn: str) -> None:
    # The statements of artisync_commit_versions run inside the database, so their
    # plans are read from auto_explain (PostgreSQL's contrib module), sent to this
    # session as notices.
    with PostgresRegistry(postgres_dsn, max_size=1) as reg:
        commit(reg, "d0", run_id="r0", aliases=["best"])
        add_part(reg, "parts/first", name="model", type="model", distributed_id="dist")
    _fill(postgres_dsn, 20_000)
    notices: list[str] = []
    with psycopg.connect(postgres_dsn) as conn:
        conn.add_notice_handler(lambda notice: notices.append(notice.message_primary or ""))
        conn.execute("LOAD 'auto_explain'")
        for setting, value in (
            ("auto_explain.log_min_duration", "0"),
            ("auto_explain.log_nested_statements", "on"),
            ("auto_explain.log_format", "json"),
            ("client_min_messages", "log"),
        ):
            conn.execute(f"SET {setting} = '{value}'")
        batch = [
            new_version(uuid.uuid4().hex, aliases=["best"], tags=["t"], run_id="r0"),
            new_version("d0", run_id="new-run"),
            new_version(uuid.uuid4().hex, distributed_id="dist", run_id="r0"),
            new_version("x", name="model", type="dataset"),  # refused: another type
        ]
        outcomes = postgres_commit.commit_versions(conn, batch)
        conn.rollback()
    assert [type(o).__name__ for o in outcomes] == [
        "CommitResult",
        "CommitResult",
        "CommitResult",
        "TypeConflictError",
    ]
    plans = [json.loads(n[n.index("{") :]) for n in notices if "plan:" in n]
    inner = [p for p in plans if "artisync_commit_versions" not in p["Query Text"]]
    assert len(inner) > 20
    for plan in inner:
        assert _seq_scans(plan["Plan"]) == [], json.dumps(plan, indent=1)
