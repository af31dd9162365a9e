"""Parallel writers: parts upserted under a distributed_id, merged and consumed by the
commit that finishes them, and the runs recorded as writers of the merged version."""

from __future__ import annotations

import pytest

from artisync.errors import InvalidInputError, TypeConflictError
from artisync.registry import Registry
from registry_backends import add_part, finish


def test_parts_list_in_the_order_added_with_their_runs(registry: Registry) -> None:
    first = add_part(registry, "m/1", run_id="w1", size=3, file_count=2)
    add_part(registry, "m/2", run_id="w2")
    add_part(registry, "m/3")
    parts = registry.list_parts("proj", "ds", "d1")
    assert [(p.manifest_key, p.run_id) for p in parts] == [
        ("m/1", "w1"),
        ("m/2", "w2"),
        ("m/3", None),
    ]
    assert (parts[0].submission_id, parts[0].distributed_id) == (first, "d1")
    assert (parts[0].size, parts[0].file_count) == (3, 2)
    assert parts[0].created_at <= parts[1].created_at
    assert [r.id for r in registry.list_runs("proj")] == ["w1", "w2"]


def test_adding_the_same_part_again_is_a_no_op(registry: Registry) -> None:
    submission = add_part(registry, "m/1")
    add_part(registry, "m/other", submission_id=submission)
    assert [p.manifest_key for p in registry.list_parts("proj", "ds", "d1")] == ["m/1"]
    # Also after the part was merged: re-adding it must not start the next version.
    finish(registry, "merged")
    add_part(registry, "m/1", submission_id=submission)
    assert registry.list_parts("proj", "ds", "d1") == []


def test_parts_of_other_ids_names_and_projects_are_separate(registry: Registry) -> None:
    add_part(registry, "m/1")
    add_part(registry, "m/2", distributed_id="d2")
    add_part(registry, "m/3", name="other")
    add_part(registry, "m/4", project="elsewhere")
    assert [p.manifest_key for p in registry.list_parts("proj", "ds", "d1")] == ["m/1"]
    finish(registry, "merged")
    assert [p.manifest_key for p in registry.list_parts("proj", "ds", "d2")] == ["m/2"]
    assert [p.manifest_key for p in registry.list_parts("proj", "other", "d1")] == ["m/3"]
    assert [p.manifest_key for p in registry.list_parts("elsewhere", "ds", "d1")] == ["m/4"]
    assert registry.list_parts("proj", "never-logged", "d1") == []


def test_part_with_another_type_raises_type_conflict(registry: Registry) -> None:
    finish(registry, "v0", distributed_id=None)
    with pytest.raises(TypeConflictError, match="'dataset'"):
        add_part(registry, "m/1", type="model")
    add_part(registry, "m/2", name="fresh", type="model")
    with pytest.raises(TypeConflictError, match="'model'"):
        finish(registry, "x", name="fresh")
    assert registry.list_parts("proj", "ds", "d1") == []


def test_part_needs_a_distributed_id(registry: Registry) -> None:
    with pytest.raises(InvalidInputError, match="distributed_id"):
        add_part(registry, "m/1", distributed_id="")


def test_finishing_consumes_the_parts_so_a_later_upsert_starts_the_next_version(
    registry: Registry,
) -> None:
    add_part(registry, "m/1")
    add_part(registry, "m/2")
    v0 = finish(registry, "first").version
    assert registry.list_parts("proj", "ds", "d1") == []
    add_part(registry, "m/3")
    assert [p.manifest_key for p in registry.list_parts("proj", "ds", "d1")] == ["m/3"]
    v1 = finish(registry, "second").version
    assert (v0.version, v1.version) == ("v0", "v1")


def test_merged_version_lists_every_part_writer_and_keeps_the_finisher_as_creator(
    registry: Registry,
) -> None:
    add_part(registry, "m/1", run_id="w1")
    add_part(registry, "m/2", run_id="w2")
    add_part(registry, "m/3", run_id="w1")
    version = finish(registry, "merged", run_id="boss").version
    assert version.run_id == "boss"
    producer = registry.produced_by(version.id)
    assert producer is not None and producer.id == "boss"
    assert [r.id for r in registry.writers(version.id)] == ["w1", "w2", "boss"]
    for run in ("w1", "w2", "boss"):
        assert [v.id for v in registry.logged_by_run(run)] == [version.id]


def test_merged_content_equal_to_a_version_still_consumes_the_parts(
    registry: Registry,
) -> None:
    v0 = finish(registry, "same", distributed_id=None, run_id="earlier").version
    add_part(registry, "m/1", run_id="w1")
    again = finish(registry, "same", run_id="boss")
    assert (again.created, again.version.id) == (False, v0.id)
    assert registry.list_parts("proj", "ds", "d1") == []
    assert [r.id for r in registry.writers(v0.id)] == ["earlier", "w1", "boss"]
    assert [v.id for v in registry.logged_by_run("w1")] == [v0.id]


def test_finishing_without_parts_commits_its_own_content(registry: Registry) -> None:
    result = finish(registry, "alone", run_id="boss")
    assert result.created and result.version.version == "v0"
    assert [r.id for r in registry.writers(result.version.id)] == ["boss"]


def test_recommitting_the_finish_submission_touches_no_new_parts(
    registry: Registry,
) -> None:
    add_part(registry, "m/1")
    first = finish(registry, "merged", submission_id="fin")
    add_part(registry, "m/2")
    assert finish(registry, "merged", submission_id="fin") == first
    assert [p.manifest_key for p in registry.list_parts("proj", "ds", "d1")] == ["m/2"]
