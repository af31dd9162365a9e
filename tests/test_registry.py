"""The registry contract, run against every backend: commit guarantees, aliases, reads,
lineage and concurrent callers. What only the SQLite file has is in
``test_registry_sqlite.py``."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from artisync.errors import InvalidInputError, NotFoundError, RegistryError, TypeConflictError
from artisync.registry import DEFAULT_ENTITY, CommitResult, Registry
from registry_backends import commit


def aliases_of(reg: Registry, label: str, name: str = "model") -> list[str]:
    return reg.get_version("proj", name, label).aliases


# -- commit guarantees --------------------------------------------------------------------


def test_same_submission_committed_twice_yields_one_version(registry: Registry) -> None:
    first = commit(registry, "d0", submission_id="sub-1")
    again = commit(registry, "d0", submission_id="sub-1")
    assert again.created is first.created is True
    assert again.version.id == first.version.id
    assert [v.version for v in registry.list_versions("proj", "model")] == ["v0"]
    assert registry.submission_result("sub-1") == first


def test_resubmitting_a_deduplicated_submission_keeps_created_false(
    registry: Registry,
) -> None:
    original = commit(registry, "d0")
    duplicate = commit(registry, "d0", submission_id="sub-dup")
    again = commit(registry, "d0", submission_id="sub-dup")
    assert (duplicate.created, again.created) == (False, False)
    assert again.version.id == duplicate.version.id == original.version.id


def test_resubmission_returns_first_result_even_if_its_content_differs(
    registry: Registry,
) -> None:
    first = commit(registry, "d0", submission_id="sub-1")
    again = commit(registry, "other-digest", submission_id="sub-1", name="renamed")
    assert again.version.id == first.version.id
    assert [c.name for c in registry.list_collections("proj")] == ["model"]


def test_submission_result_is_none_before_commit(registry: Registry) -> None:
    assert registry.submission_result("never-seen") is None


def test_versions_are_numbered_from_zero_in_commit_order(registry: Registry) -> None:
    labels = [commit(registry, f"d{i}", metadata={"index": i}).version.version for i in range(5)]
    assert labels == ["v0", "v1", "v2", "v3", "v4"]
    assert [v.metadata["index"] for v in registry.list_versions("proj", "model")] == [0, 1, 2, 3, 4]


def test_rejected_submission_takes_no_version_number(registry: Registry) -> None:
    commit(registry, "d0")
    with pytest.raises(TypeConflictError):
        commit(registry, "d1", type="dataset")
    with pytest.raises(InvalidInputError):
        commit(registry, "d2", aliases=["v7"])
    with pytest.raises(InvalidInputError):
        commit(registry, "d3", metadata={"loss": float("nan")})
    assert commit(registry, "d4").version.version == "v1"


def test_identical_content_returns_existing_version_with_new_aliases_and_latest(
    registry: Registry,
) -> None:
    v0 = commit(registry, "same", tags=["a"]).version
    commit(registry, "different")
    again = commit(registry, "same", aliases=["latest", "best"], tags=["b"])
    assert again.created is False
    assert again.version.id == v0.id
    # As W&B's server: the aliases of the log, `latest` included, go to that version.
    assert again.version.aliases == ["best", "latest"]
    assert again.version.tags == ["a", "b"]
    assert aliases_of(registry, "v1") == []
    assert commit(registry, "third").version.version == "v2"
    assert aliases_of(registry, "v2") == ["latest"]


def test_name_with_another_type_raises_type_conflict_naming_both_types(
    registry: Registry,
) -> None:
    commit(registry, "d0", name="mnist", type="dataset")
    with pytest.raises(TypeConflictError) as caught:
        commit(registry, "d1", name="mnist", type="model")
    message = str(caught.value)
    assert "'mnist'" in message and "'dataset'" in message and "'model'" in message


def test_same_name_may_have_another_type_in_another_project(registry: Registry) -> None:
    commit(registry, "d0", name="mnist", type="dataset")
    assert commit(registry, "d0", name="mnist", type="model", project="other").created


def test_commit_with_run_records_produced_edge(registry: Registry) -> None:
    registry.ensure_run("proj", None, "run-1", job_type="train")
    version = commit(registry, "d0", run_id="run-1").version
    assert version.run_id == "run-1"
    producer = registry.produced_by(version.id)
    assert producer is not None and (producer.id, producer.job_type) == ("run-1", "train")
    assert [v.id for v in registry.logged_by_run("run-1")] == [version.id]


def test_commit_names_an_unknown_run_creates_it(registry: Registry) -> None:
    commit(registry, "d0", run_id="late-run")
    assert [run.id for run in registry.list_runs("proj")] == ["late-run"]


def test_identical_content_from_another_run_is_listed_for_it_but_keeps_its_creator(
    registry: Registry,
) -> None:
    version = commit(registry, "d0", run_id="run-1").version
    commit(registry, "d0", run_id="run-2")
    assert [v.id for v in registry.logged_by_run("run-2")] == [version.id]
    producer = registry.produced_by(version.id)
    assert producer is not None and producer.id == "run-1"


def test_version_without_run_has_no_producer(registry: Registry) -> None:
    assert registry.produced_by(commit(registry, "d0").version.id) is None


# -- aliases and latest -------------------------------------------------------------------


def test_latest_names_highest_version_after_each_commit(registry: Registry) -> None:
    for i in range(3):
        commit(registry, f"d{i}", aliases=[])
        assert registry.get_version("proj", "model", "latest").index == i
        assert [
            v.version for v in registry.list_versions("proj", "model") if "latest" in v.aliases
        ] == [f"v{i}"]


def test_user_alias_moves_to_the_version_that_takes_it(registry: Registry) -> None:
    commit(registry, "d0", aliases=["best"])
    commit(registry, "d1", aliases=["best"])
    assert registry.get_version("proj", "model", "best").version == "v1"
    assert aliases_of(registry, "v0") == []


def test_aliases_of_different_collections_are_independent(registry: Registry) -> None:
    commit(registry, "d0", name="a", aliases=["best"])
    commit(registry, "d1", name="b", aliases=["best"])
    assert registry.get_version("proj", "a", "best").digest == "d0"
    assert registry.get_version("proj", "b", "best").digest == "d1"


def test_set_aliases_replaces_this_versions_aliases_and_moves_others(
    registry: Registry,
) -> None:
    v0 = commit(registry, "d0", aliases=["old", "keep"]).version
    commit(registry, "d1", aliases=["prod"])
    updated = registry.set_aliases(v0.id, ["keep", "prod"])
    assert updated.aliases == ["keep", "prod"]
    assert aliases_of(registry, "v1") == ["latest"]
    with pytest.raises(NotFoundError):
        registry.get_version("proj", "model", "old")


def test_set_aliases_refuses_latest_on_an_older_version(registry: Registry) -> None:
    v0 = commit(registry, "d0").version
    v1 = commit(registry, "d1").version
    with pytest.raises(InvalidInputError, match="latest"):
        registry.set_aliases(v0.id, ["latest", "best"])
    assert aliases_of(registry, "v0") == []
    assert registry.set_aliases(v1.id, ["latest"]).aliases == ["latest"]


def test_set_aliases_cannot_remove_latest(registry: Registry) -> None:
    v0 = commit(registry, "d0", aliases=["best"]).version
    assert registry.set_aliases(v0.id, []).aliases == ["latest"]


def test_alias_shaped_like_a_version_label_is_refused(registry: Registry) -> None:
    with pytest.raises(InvalidInputError, match="looks like a version"):
        commit(registry, "d0", aliases=["v3"])


# -- reads --------------------------------------------------------------------------------


def test_get_version_by_label_alias_and_id(registry: Registry) -> None:
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


def test_missing_alias_message_lists_versions_and_aliases(registry: Registry) -> None:
    commit(registry, "d0", aliases=["best"])
    commit(registry, "d1", aliases=["prod"])
    with pytest.raises(NotFoundError) as caught:
        registry.get_version("proj", "model", "v9")
    message = str(caught.value)
    for expected in ("'v9'", "v0 to v1", "best", "prod", "latest"):
        assert expected in message


def test_missing_name_message_lists_project_collections(registry: Registry) -> None:
    commit(registry, "d0", name="mnist", type="dataset")
    commit(registry, "d1", name="resnet", type="model")
    with pytest.raises(NotFoundError) as caught:
        registry.get_version("proj", "resnt", "latest")
    assert "mnist (dataset)" in str(caught.value) and "resnet (model)" in str(caught.value)


def test_missing_name_in_empty_project_says_so(registry: Registry) -> None:
    with pytest.raises(NotFoundError, match="has no artifacts yet"):
        registry.get_version("empty", "model", "latest")


def test_unknown_version_id_raises_not_found(registry: Registry) -> None:
    for call in (registry.get_version_by_id, registry.produced_by, registry.used_by):
        with pytest.raises(NotFoundError):
            call("no-such-id")


def test_list_collections_filters_by_type_and_counts_versions(registry: Registry) -> None:
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
    registry: Registry,
) -> None:
    commit(registry, "d0")
    commit(registry, "d1", entity="team")
    assert registry.get_version("proj", "model", "v0", entity=DEFAULT_ENTITY).digest == "d0"
    assert registry.get_version("proj", "model", "v0", entity="team").digest == "d1"


def test_metadata_and_config_round_trip_as_json(registry: Registry) -> None:
    metadata = {"epochs": 3, "lr": 0.1, "layers": [1, 2], "nested": {"ok": True, "none": None}}
    run = registry.ensure_run("proj", None, "r", config={"batch": 32})
    assert run.config == {"batch": 32}
    assert commit(registry, "d0", metadata=metadata).version.metadata == metadata


def test_non_json_metadata_is_refused_naming_the_artifact(registry: Registry) -> None:
    with pytest.raises(InvalidInputError, match="metadata of artifact 'model'"):
        commit(registry, "d0", metadata={"path": Path("/x")})


def test_ensure_run_creates_then_updates_only_given_fields(registry: Registry) -> None:
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


def test_record_use_is_idempotent_and_listed_both_ways(registry: Registry) -> None:
    v0 = commit(registry, "d0").version
    v1 = commit(registry, "d1").version
    registry.ensure_run("proj", None, "consumer")
    for version in (v1, v0, v1):
        registry.record_use("consumer", version.id)
    assert [v.version for v in registry.used_by_run("consumer")] == ["v1", "v0"]
    assert [run.id for run in registry.used_by(v1.id)] == ["consumer"]
    assert registry.logged_by_run("consumer") == []


def test_record_use_of_unknown_run_or_version_raises_not_found(registry: Registry) -> None:
    version = commit(registry, "d0").version
    registry.ensure_run("proj", None, "r")
    with pytest.raises(NotFoundError):
        registry.record_use("ghost", version.id)
    with pytest.raises(NotFoundError):
        registry.record_use("r", "no-such-version")


def test_run_id_shared_by_two_projects_needs_the_project(registry: Registry) -> None:
    version = commit(registry, "d0", project="a", run_id="same").version
    commit(registry, "d1", project="b", run_id="same")
    with pytest.raises(RegistryError, match="pass project="):
        registry.logged_by_run("same")
    assert [v.id for v in registry.logged_by_run("same", project="a")] == [version.id]


def test_commits_from_many_threads_get_distinct_consecutive_numbers(
    registry: Registry,
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


def test_registry_works_from_asyncio_to_thread(registry: Registry) -> None:
    async def main() -> list[str]:
        await asyncio.gather(
            *(asyncio.to_thread(commit, registry, f"d{i}", name=f"a{i % 3}") for i in range(12))
        )
        found = await asyncio.gather(
            *(asyncio.to_thread(registry.list_versions, "proj", f"a{n}") for n in range(3))
        )
        return [v.version for versions in found for v in versions]

    assert sorted(asyncio.run(main())) == sorted(["v0", "v1", "v2", "v3"] * 3)


def test_every_backend_implements_the_registry_contract(registry: Registry) -> None:
    assert isinstance(registry, Registry)
