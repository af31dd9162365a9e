"""Group commit on PostgreSQL: ``PostgresRegistry.commit_versions`` commits a batch in
one transaction (what a server process does with the commits it receives at once), and
each commit of a batch is answered exactly as if it had been committed alone, in the
batch's order."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator

import psycopg
import pytest

from artisync.errors import InvalidInputError, TypeConflictError
from artisync.registry import CommitResult
from artisync.registry.postgres import PostgresRegistry
from registry_backends import add_part, commit, new_part, new_version


@pytest.fixture
def registry(postgres_dsn: str) -> Iterator[PostgresRegistry]:
    with PostgresRegistry(postgres_dsn, max_size=4) as reg:
        yield reg


def _results(outcomes: list[CommitResult | Exception]) -> list[CommitResult]:
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            raise outcome
    return [o for o in outcomes if isinstance(o, CommitResult)]


def _database_stat(dsn: str, column: str) -> int:
    """A counter of ``pg_stat_database`` for the test's database."""
    with psycopg.connect(dsn) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            f"SELECT {column} FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_batch_answers_each_commit_as_if_committed_alone_in_order(
    registry: PostgresRegistry,
) -> None:
    batch = [
        new_version("d0", aliases=["best"], tags=["a", "a", "b"], run_id="run-1"),
        new_version("d1", aliases=["latest"]),
        new_version("d0"),  # same content as the first: that version again
        new_version("e0", name="other", type="dataset", aliases=["best"]),
        new_version("d2", aliases=["best"], metadata={"z": 1, "a": [1.5, None]}),
    ]
    first, second, again, other, third = _results(registry.commit_versions(batch))
    assert [first.created, second.created, again.created, other.created, third.created] == [
        True,
        True,
        False,
        True,
        True,
    ]
    assert [r.version.version for r in (first, second, again, third)] == ["v0", "v1", "v0", "v2"]
    assert other.version.version == "v0" and other.version.name == "other"
    # Each answer is the version as it was right after its own commit, as alone.
    assert first.version.aliases == ["best", "latest"] and first.version.tags == ["a", "b"]
    assert second.version.aliases == ["latest"]
    # Same content again: that version, and `latest` moves to it until the next version.
    assert again.version.aliases == ["best", "latest"]
    assert third.version.aliases == ["best", "latest"] and third.version.metadata == {
        "z": 1,
        "a": [1.5, None],
    }
    assert first.version.created_at <= second.version.created_at <= third.version.created_at
    assert registry.get_version("proj", "model", "best").id == third.version.id
    assert registry.get_version("proj", "model", "latest").id == third.version.id
    assert registry.get_version("proj", "other", "best").id == other.version.id
    assert [v.id for v in registry.used_by(first.version.id)] == []
    assert [r.id for r in registry.writers(first.version.id)] == ["run-1"]
    for result, version in zip((first, second, third), (batch[0], batch[1], batch[4]), strict=True):
        recorded = registry.submission_result(version.submission_id)
        assert recorded is not None and recorded.version.id == result.version.id


def test_a_batch_is_one_transaction(registry: PostgresRegistry, postgres_dsn: str) -> None:
    registry.commit_versions([new_version("warm")])
    before = _database_stat(postgres_dsn, "xact_commit")
    _results(registry.commit_versions([new_version(f"d{n}") for n in range(20)]))
    # The batch's transaction, and the count query's own (pg_stat lags: at most).
    assert _database_stat(postgres_dsn, "xact_commit") - before <= 3


def test_a_refused_commit_fails_alone_and_writes_nothing(registry: PostgresRegistry) -> None:
    commit(registry, "m0", name="taken", type="model")
    batch = [
        new_version("d0"),
        new_version("x0", name="taken", type="dataset", aliases=["best"], run_id="lost-run"),
        new_version("bad", aliases=["v3"]),  # refused before it reaches the database
        new_version("d1"),
    ]
    outcomes = registry.commit_versions(batch)
    assert isinstance(outcomes[1], TypeConflictError)
    assert "'taken' already exists in project 'local/proj' with type 'model'" in str(outcomes[1])
    assert isinstance(outcomes[2], InvalidInputError)
    assert "looks like a version label" in str(outcomes[2])
    results = _results([outcomes[0], outcomes[3]])
    assert [r.version.version for r in results] == ["v0", "v1"]
    assert registry.submission_result(batch[1].submission_id) is None
    assert [r.id for r in registry.list_runs("proj")] == []
    assert registry.get_version("proj", "taken", "latest").digest == "m0"


def test_one_submission_twice_in_a_batch_is_one_version(registry: PostgresRegistry) -> None:
    version = new_version("d0")
    first, second = _results(registry.commit_versions([version, version]))
    assert first == second and first.created
    assert [v.version for v in registry.list_versions("proj", "model")] == ["v0"]


def test_a_batch_the_database_fails_is_committed_again_one_by_one(
    registry: PostgresRegistry,
) -> None:
    # A size beyond bigint fails the whole statement in the database; the others of
    # its batch are committed alone, and only it fails.
    batch = [new_version("d0"), new_version("huge", size=2**70), new_version("d1")]
    outcomes = registry.commit_versions(batch)
    assert "out of range" in str(outcomes[1])
    assert [r.version.version for r in _results([outcomes[0], outcomes[2]])] == ["v0", "v1"]
    assert registry.submission_result(batch[1].submission_id) is None


def test_a_batch_finishes_distributed_versions_and_refuses_mixed_stores(
    registry: PostgresRegistry,
) -> None:
    add_part(registry, "m/a", store="s3://one/x", run_id="w1")
    add_part(registry, "m/b", store="s3://one/x", run_id="w2")
    add_part(registry, "m/c", distributed_id="d2", store="s3://two/y", run_id="w3")
    finish = new_version(
        "merged", name="ds", type="dataset", distributed_id="d1", store="s3://one/x"
    )
    mixed = new_version("mixed", name="ds", type="dataset", distributed_id="d2", store="s3://one/x")
    outcomes = registry.commit_versions([finish, mixed])
    assert isinstance(outcomes[1], TypeConflictError)
    assert "has its part" in str(outcomes[1]) and "'s3://two/y'" in str(outcomes[1])
    (done,) = _results([outcomes[0]])
    assert [r.id for r in registry.writers(done.version.id)] == ["w1", "w2"]
    assert registry.list_parts("proj", "ds", "d1") == []
    assert len(registry.list_parts("proj", "ds", "d2")) == 1


def test_batches_crossing_collections_from_many_processes_neither_deadlock_nor_skip(
    postgres_dsn: str,
) -> None:
    # Eight "server processes" commit batches over the same six collections in every
    # order, all new at first, with runs they share, new at first too, while parts
    # are added: locks are taken in one order, so PostgreSQL detects no deadlock, and
    # every collection's numbers have no gap.
    names = [f"c{n}" for n in range(6)]
    registries = [PostgresRegistry(postgres_dsn, max_size=1) for _ in range(8)]
    deadlocks = _database_stat(postgres_dsn, "deadlocks")
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(registries))

    def writer(n: int) -> None:
        rng = random.Random(n)
        try:
            barrier.wait(30)
            for i in range(15):
                batch = [
                    new_version(f"{n}-{i}-{name}", name=name, run_id=f"run-{rng.randrange(3)}")
                    for name in rng.sample(names, k=rng.randint(1, len(names)))
                ]
                _results(registries[n].commit_versions(batch))
                registries[n].add_part(
                    new_part(
                        f"m/{n}-{i}",
                        run_id=f"run-{rng.randrange(3)}",
                        name=rng.choice(names),
                        type="model",
                    )
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(len(registries))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for reg in registries:
        reg.close()
    assert not errors, errors[0]
    assert _database_stat(postgres_dsn, "deadlocks") == deadlocks
    with PostgresRegistry(postgres_dsn) as reg:
        for name in names:
            indexes = [v.index for v in reg.list_versions("proj", name)]
            assert indexes == list(range(len(indexes)))
        assert sorted(r.id for r in reg.list_runs("proj")) == ["run-0", "run-1", "run-2"]
