"""Each version records its store, so that readers on any node find its content: the
store a commit names comes back from every read, tombstones included; a version that
named none reads back None; parts carry theirs, and a distributed version's parts and
finish are in one store; identical content is the same version only in the same store
(docs/decisions.md, "A version records its store"). The JSON records keep the field, and
decode an older server's answers, which lack it."""

from __future__ import annotations

import pytest

from artisync.errors import InvalidInputError, TypeConflictError
from artisync.registry import NewPart, NewVersion, Part, Registry, Version
from registry_backends import add_part, commit, finish, new_part, new_version

BUCKET = "s3://team-bucket/artisync"
OTHER = "gs://other-bucket/artisync"


def _every_read(reg: Registry, version_id: str) -> list[Version]:
    """The version as each read that finds a live version by what names it answers."""
    by_label = reg.get_version("proj", "model", "v0")
    return [
        by_label,
        reg.get_version("proj", "model", "latest"),
        reg.get_version("proj", "model", "best"),
        reg.get_version_by_id(version_id),
        *reg.list_versions("proj", "model"),
        *reg.logged_by_run("r1"),
        *reg.expired_versions(by_label.created_at + 3600),
    ]


def test_the_store_of_a_commit_comes_back_from_every_read(registry: Registry) -> None:
    version = new_version("d0", store=BUCKET, aliases=["best"], run_id="r1", ttl_seconds=60.0)
    result = registry.commit_version(version)
    assert result.created and result.version.store == BUCKET
    version_id = result.version.id
    reads = _every_read(registry, version_id)
    assert len(reads) == 7 and {v.store for v in reads} == {BUCKET}
    submitted = registry.submission_result(version.submission_id)
    assert submitted is not None and submitted.version.store == BUCKET
    assert registry.set_aliases(version_id, ["best", "prod"]).store == BUCKET
    assert registry.update_version(version_id, description="x").store == BUCKET


def test_a_tombstone_keeps_the_store(registry: Registry) -> None:
    version = new_version("d0", store=BUCKET)
    registry.commit_version(version)
    committed = registry.submission_result(version.submission_id)
    assert committed is not None
    tombstone = registry.delete_version(committed.version.id)
    assert (tombstone.state, tombstone.store) == ("DELETED", BUCKET)
    again = registry.submission_result(version.submission_id)
    assert again is not None and again.version == tombstone


def test_a_version_that_names_no_store_reads_back_none(registry: Registry) -> None:
    version = new_version("d0", aliases=["best"], run_id="r1", ttl_seconds=60.0)
    result = registry.commit_version(version)
    assert result.version.store is None
    assert {v.store for v in _every_read(registry, result.version.id)} == {None}
    submitted = registry.submission_result(version.submission_id)
    assert submitted is not None and submitted.version.store is None


def test_parts_carry_their_store_and_the_finished_version_has_the_finish_store(
    registry: Registry,
) -> None:
    add_part(registry, "m/a", store=BUCKET)
    add_part(registry, "m/b", store=BUCKET)
    parts = registry.list_parts("proj", "ds", "d1")
    assert [(p.manifest_key, p.store) for p in parts] == [("m/a", BUCKET), ("m/b", BUCKET)]
    merged = finish(registry, "merged", store=BUCKET).version
    assert merged.store == BUCKET
    assert registry.get_version("proj", "ds", "v0").store == BUCKET
    assert registry.list_parts("proj", "ds", "d1") == []


def test_parts_that_named_no_store_finish_in_the_finish_store(registry: Registry) -> None:
    add_part(registry, "m/a")
    add_part(registry, "m/b", store=BUCKET)
    assert [p.store for p in registry.list_parts("proj", "ds", "d1")] == [None, BUCKET]
    assert finish(registry, "merged", store=BUCKET).version.store == BUCKET


def test_a_part_in_another_store_than_the_pending_parts_is_refused(registry: Registry) -> None:
    first = add_part(registry, "m/a", store=BUCKET)
    with pytest.raises(TypeConflictError) as caught:
        add_part(registry, "m/b", store=OTHER)
    message = str(caught.value)
    assert BUCKET in message and OTHER in message and first in message
    assert [p.manifest_key for p in registry.list_parts("proj", "ds", "d1")] == ["m/a"]
    # Another distributed id is another version: its parts may be anywhere.
    add_part(registry, "m/c", store=OTHER, distributed_id="d2")


def test_a_finish_in_another_store_than_its_parts_is_refused_and_changes_nothing(
    registry: Registry,
) -> None:
    add_part(registry, "m/a", store=BUCKET)
    refused = new_version(
        "merged",
        name="ds",
        type="dataset",
        manifest_key="merged/m",
        distributed_id="d1",
        store=OTHER,
    )
    with pytest.raises(TypeConflictError) as caught:
        registry.commit_version(refused)
    assert BUCKET in str(caught.value) and OTHER in str(caught.value)
    assert registry.submission_result(refused.submission_id) is None
    assert [c.version_count for c in registry.list_collections("proj")] == [0]
    assert [p.store for p in registry.list_parts("proj", "ds", "d1")] == [BUCKET]
    merged = finish(registry, "merged", store=BUCKET).version
    assert (merged.index, merged.store) == (0, BUCKET)


def test_identical_content_in_the_same_store_is_the_same_version(registry: Registry) -> None:
    first = commit(registry, "d0", store=BUCKET).version
    again = commit(registry, "d0", store=BUCKET, aliases=["best"])
    assert not again.created and again.version.id == first.id
    assert again.version.aliases == ["best", "latest"]
    none_first = commit(registry, "d1").version
    none_again = commit(registry, "d1")
    assert not none_again.created and none_again.version.id == none_first.id


def test_identical_content_in_another_store_is_a_new_version(registry: Registry) -> None:
    first = commit(registry, "d0", store=BUCKET).version
    elsewhere = commit(registry, "d0", store=OTHER)
    assert elsewhere.created
    assert (elsewhere.version.index, elsewhere.version.store) == (1, OTHER)
    # A store recorded and none recorded are not the same place either.
    unrecorded = commit(registry, "d0")
    assert unrecorded.created and unrecorded.version.store is None
    # Each is then the version its store's writers get back.
    assert commit(registry, "d0", store=BUCKET).version.id == first.id
    assert commit(registry, "d0", store=OTHER).version.id == elsewhere.version.id
    assert commit(registry, "d0").version.id == unrecorded.version.id
    assert [v.index for v in registry.list_versions("proj", "model")] == [0, 1, 2]


@pytest.mark.parametrize("store", ["store", "./store", "bucket/prefix", ""])
def test_a_store_that_is_not_the_same_place_on_every_node_is_refused(
    registry: Registry, store: str
) -> None:
    with pytest.raises(InvalidInputError, match="store"):
        commit(registry, "d0", store=store)
    with pytest.raises(InvalidInputError, match="store"):
        add_part(registry, "m/a", store=store)
    assert registry.list_projects() == []


@pytest.mark.parametrize("store", ["/srv/artisync/store", "file:///srv/store", OTHER])
def test_absolute_paths_and_urls_are_stores(registry: Registry, store: str) -> None:
    assert commit(registry, "d0", store=store).version.store == store


# -- the JSON records ---------------------------------------------------------------------


def test_records_keep_the_store_through_json() -> None:
    version = commit_free_version(store=BUCKET)
    assert Version.from_json(version.to_json()) == version
    part = Part("s", "d1", "m/a", None, 5, 1, 1.0, BUCKET)
    assert Part.from_json(part.to_json()) == part
    new = new_version("d0", store=BUCKET).to_json()
    assert new["store"] == BUCKET and NewVersion.from_json(new).to_json() == new
    new_p = new_part("m/a", store=BUCKET).to_json()
    assert new_p["store"] == BUCKET and NewPart.from_json(new_p).to_json() == new_p


def test_answers_of_an_older_server_without_a_store_decode_with_none() -> None:
    answer = commit_free_version(store=None).to_json()
    del answer["store"]
    assert Version.from_json(answer).store is None
    part = Part("s", "d1", "m/a", None, 5, 1, 1.0).to_json()
    del part["store"]
    assert Part.from_json(part).store is None


def test_new_records_leave_out_a_store_they_do_not_have() -> None:
    # An older server refuses fields it does not know; a writer with no store to record
    # keeps talking to it.
    assert "store" not in new_version("d0").to_json()
    assert "store" not in new_part("m/a").to_json()
    assert NewVersion.from_json(new_version("d0").to_json()).store is None


def commit_free_version(*, store: str | None) -> Version:
    """A version record made here, not by a registry."""
    return Version(
        id="v-id",
        project="proj",
        entity="local",
        name="model",
        type="model",
        index=0,
        digest="d0",
        manifest_key="m/0",
        size=1,
        file_count=1,
        description=None,
        metadata={},
        aliases=["latest"],
        tags=[],
        created_at=1.0,
        run_id=None,
        ttl_seconds=None,
        store=store,
    )
