"""Editing and deleting committed versions: aliases, description, metadata, TTL, delete
with tombstones, expiry, and what garbage collection must keep."""

from __future__ import annotations

from typing import Any

import pytest

from artisync.errors import InvalidInputError, NotFoundError
from artisync.registry import DELETED, Registry
from registry_backends import add_part, commit


def labels(reg: Registry, name: str = "model") -> list[str]:
    return [v.version for v in reg.list_versions("proj", name)]


# -- update_version -----------------------------------------------------------------------


def test_update_version_changes_only_the_fields_given(registry: Registry) -> None:
    v0 = commit(registry, "d0", description="first", metadata={"a": 1}, ttl_seconds=60).version
    only_description = registry.update_version(v0.id, description="better")
    assert (only_description.description, only_description.metadata) == ("better", {"a": 1})
    assert only_description.ttl_seconds == 60
    only_metadata = registry.update_version(v0.id, metadata={"b": [1, 2]})
    assert (only_metadata.description, only_metadata.metadata) == ("better", {"b": [1, 2]})
    assert registry.update_version(v0.id) == only_metadata


def test_update_version_with_none_clears_description_and_ttl(registry: Registry) -> None:
    v0 = commit(registry, "d0", description="first", ttl_seconds=60).version
    cleared = registry.update_version(v0.id, description=None, ttl_seconds=None)
    assert (cleared.description, cleared.ttl_seconds, cleared.expires_at) == (None, None, None)
    assert registry.expired_versions(v0.created_at + 10**9) == []


def test_update_version_ttl_counts_from_creation(registry: Registry) -> None:
    v0 = commit(registry, "d0").version
    updated = registry.update_version(v0.id, ttl_seconds=3600)
    assert updated.expires_at == v0.created_at + 3600
    assert registry.expired_versions(v0.created_at + 3599) == []
    assert [v.id for v in registry.expired_versions(v0.created_at + 3600)] == [v0.id]


def test_update_version_refuses_bad_values_and_changes_nothing(registry: Registry) -> None:
    v0 = commit(registry, "d0", description="kept", metadata={"a": 1}).version
    for bad in ({"ttl_seconds": 0}, {"ttl_seconds": -5}, {"ttl_seconds": float("nan")}):
        with pytest.raises(InvalidInputError, match="positive number of seconds"):
            registry.update_version(v0.id, description="lost", **bad)
    with pytest.raises(InvalidInputError, match="metadata of model:v0"):
        registry.update_version(v0.id, description="lost", metadata={"x": object()})
    assert registry.get_version_by_id(v0.id) == v0


def test_update_of_unknown_or_deleted_version_is_not_found(registry: Registry) -> None:
    v0 = commit(registry, "d0").version
    registry.delete_version(v0.id)
    with pytest.raises(NotFoundError, match=r"model:v0 .* was deleted"):
        registry.update_version(v0.id, description="x")
    with pytest.raises(NotFoundError, match="no artifact version"):
        registry.update_version("no-such-id", description="x")


# -- set_aliases ---------------------------------------------------------------------------


def test_set_aliases_moves_aliases_from_other_versions_and_leaves_latest(
    registry: Registry,
) -> None:
    v0 = commit(registry, "d0", aliases=["prod", "best"]).version
    v1 = commit(registry, "d1", aliases=["staging"]).version
    moved = registry.set_aliases(v1.id, ["staging", "prod"])
    assert moved.aliases == ["latest", "prod", "staging"]
    assert registry.get_version_by_id(v0.id).aliases == ["best"]
    assert registry.get_version("proj", "model", "latest").id == v1.id


def test_set_aliases_with_a_bad_alias_changes_nothing(registry: Registry) -> None:
    v0 = commit(registry, "d0", aliases=["prod"]).version
    v1 = commit(registry, "d1").version
    for bad in (["prod", "a/b"], ["prod", "v2"], ["prod", ""]):
        with pytest.raises(InvalidInputError):
            registry.set_aliases(v1.id, bad)
    assert registry.get_version("proj", "model", "prod").id == v0.id


# -- delete_version ------------------------------------------------------------------------


def test_delete_refuses_a_version_with_aliases_naming_them(registry: Registry) -> None:
    v0 = commit(registry, "d0", aliases=["prod", "best"]).version
    commit(registry, "d1")
    with pytest.raises(InvalidInputError) as caught:
        registry.delete_version(v0.id)
    message = str(caught.value)
    assert "'best', 'prod'" in message and "delete_aliases=True" in message
    assert labels(registry) == ["v0", "v1"]
    gone = registry.delete_version(v0.id, delete_aliases=True)
    assert (gone.state, gone.aliases, gone.version) == (DELETED, [], "v0")
    with pytest.raises(NotFoundError):
        registry.get_version("proj", "model", "prod")


def test_latest_alone_does_not_hold_a_version_back(registry: Registry) -> None:
    commit(registry, "d0")
    v1 = commit(registry, "d1").version
    assert registry.delete_version(v1.id).state == DELETED
    assert registry.get_version("proj", "model", "latest").version == "v0"


def test_deleted_version_disappears_from_every_read(registry: Registry) -> None:
    v0 = commit(registry, "d0", name="a").version
    v1 = commit(registry, "d1", name="a").version
    registry.delete_version(v0.id)
    assert labels(registry, "a") == ["v1"]
    assert [(c.name, c.version_count) for c in registry.list_collections("proj")] == [("a", 1)]
    with pytest.raises(NotFoundError) as caught:
        registry.get_version("proj", "a", "v0")
    assert "a:v0 was deleted" in str(caught.value) and "v1" in str(caught.value)
    with pytest.raises(NotFoundError, match="was deleted"):
        registry.get_version_by_id(v0.id)
    assert registry.get_version("proj", "a", "latest").id == v1.id


def test_version_numbers_are_never_reused_after_deleting_the_top(
    registry: Registry,
) -> None:
    commit(registry, "d0")
    v1 = commit(registry, "d1").version
    registry.delete_version(v1.id)
    assert commit(registry, "d2").version.version == "v2"
    assert labels(registry) == ["v0", "v2"]


def test_deleting_every_version_leaves_no_latest(registry: Registry) -> None:
    ids = [commit(registry, f"d{i}").version.id for i in range(3)]
    for version_id in reversed(ids):
        registry.delete_version(version_id)
    assert labels(registry) == []
    with pytest.raises(NotFoundError, match="all were deleted"):
        registry.get_version("proj", "model", "latest")
    assert [c.version_count for c in registry.list_collections("proj")] == [0]
    assert commit(registry, "d0").version.version == "v3"


def test_identical_content_after_a_delete_is_a_new_version(registry: Registry) -> None:
    v0 = commit(registry, "same").version
    registry.delete_version(v0.id)
    again = commit(registry, "same")
    assert again.created and again.version.version == "v1" and again.version.id != v0.id


def test_recommitting_a_deleted_versions_submission_does_not_resurrect_it(
    registry: Registry,
) -> None:
    first = commit(registry, "d0", submission_id="sub-1", aliases=["best"])
    registry.delete_version(first.version.id, delete_aliases=True)
    again = commit(registry, "d0", submission_id="sub-1", aliases=["best"])
    assert again.created is True
    assert (again.version.id, again.version.state, again.version.aliases) == (
        first.version.id,
        DELETED,
        [],
    )
    assert registry.submission_result("sub-1") == again
    assert labels(registry) == []
    with pytest.raises(NotFoundError):
        registry.get_version("proj", "model", "best")


def test_deduplicated_submission_of_a_deleted_version_reports_the_tombstone(
    registry: Registry,
) -> None:
    v0 = commit(registry, "d0").version
    commit(registry, "d0", submission_id="dup")
    registry.delete_version(v0.id)
    result = registry.submission_result("dup")
    assert result is not None and not result.created and result.version.state == DELETED


def test_deleting_twice_returns_the_tombstone_again(registry: Registry) -> None:
    v0 = commit(registry, "d0").version
    first = registry.delete_version(v0.id)
    assert registry.delete_version(v0.id, delete_aliases=True) == first
    with pytest.raises(NotFoundError):
        registry.delete_version("no-such-id")


def test_deleted_version_leaves_every_lineage_query(registry: Registry) -> None:
    registry.ensure_run("proj", None, "consumer")
    kept = commit(registry, "d0", run_id="maker").version
    doomed = commit(registry, "d1", run_id="maker").version
    commit(registry, "d1", run_id="relogger")  # identical content: a second writer
    for version in (kept, doomed):
        registry.record_use("consumer", version.id)
    registry.delete_version(doomed.id)
    assert [v.id for v in registry.logged_by_run("maker")] == [kept.id]
    assert registry.logged_by_run("relogger") == []
    assert [v.id for v in registry.used_by_run("consumer")] == [kept.id]
    for lookup in (registry.produced_by, registry.used_by, registry.writers):
        with pytest.raises(NotFoundError, match="was deleted"):
            lookup(doomed.id)
    with pytest.raises(NotFoundError, match="was deleted"):
        registry.record_use("consumer", doomed.id)
    with pytest.raises(NotFoundError, match="was deleted"):
        registry.set_aliases(doomed.id, ["best"])


# -- TTL and garbage collection ------------------------------------------------------------


def test_expired_versions_are_those_past_their_ttl_longest_expired_first(
    registry: Registry,
) -> None:
    short = commit(registry, "d0", ttl_seconds=10).version
    never = commit(registry, "d1").version
    shorter = commit(registry, "d2", ttl_seconds=5).version
    long = commit(registry, "d3", ttl_seconds=10**6).version
    now = long.created_at + 20
    assert [v.id for v in registry.expired_versions(now)] == [shorter.id, short.id]
    assert [v.id for v in registry.expired_versions(now, limit=1)] == [shorter.id]
    assert registry.expired_versions(short.created_at) == []
    registry.delete_version(shorter.id)
    assert [v.id for v in registry.expired_versions(now)] == [short.id]
    assert never.expires_at is None


def test_commit_refuses_a_non_positive_ttl(registry: Registry) -> None:
    with pytest.raises(InvalidInputError, match="ttl of artifact 'model'"):
        commit(registry, "d0", ttl_seconds=0)
    assert commit(registry, "d0").version.version == "v0"


def test_live_manifest_keys_are_those_of_live_versions_and_pending_parts(
    registry: Registry,
) -> None:
    commit(registry, "d0", manifest_key="m/live")
    doomed = commit(registry, "d1", manifest_key="m/deleted").version
    commit(registry, "d2", manifest_key="m/live")  # two versions may share a manifest
    registry.delete_version(doomed.id)
    part: dict[str, Any] = {"name": "model", "type": "model", "size": 1}
    add_part(registry, "m/merged", submission_id="p1", distributed_id="a", **part)
    add_part(registry, "m/pending", submission_id="p2", distributed_id="b", **part)
    commit(registry, "d3", manifest_key="m/finished", distributed_id="a")
    assert registry.live_manifest_keys() == {"m/live", "m/pending", "m/finished"}
