"""Content logged again: no new version, the existing one is returned, and it takes the
log's aliases and ``latest`` (W&B's rule); what the version records once (description,
metadata, TTL) is kept, and a log that gave others is warned. The registry contract
runs on every backend; the SDK end to end through a real daemon on SQLite."""

from __future__ import annotations

import pytest

import artisync
from artisync.errors import InvalidInputError, SameContentWarning
from artisync.registry import DELETED, Registry
from daemon_harness import DaemonProcess
from registry_backends import commit


def latest(reg: Registry, name: str = "model") -> str:
    return reg.get_version("proj", name, "latest").version


# -- the registry contract (every backend) ---------------------------------------------------


def test_older_content_logged_again_is_that_version_and_becomes_latest(
    registry: Registry,
) -> None:
    v0 = commit(registry, "same", description="first", metadata={"step": 0}).version
    commit(registry, "other")
    again = commit(registry, "same", aliases=["best"], description="second", metadata={"x": 1})
    assert (again.created, again.version.id) == (False, v0.id)
    assert again.version.aliases == ["best", "latest"]
    # What the version records once stays as its first log wrote it.
    assert (again.version.description, again.version.metadata) == ("first", {"step": 0})
    assert latest(registry) == "v0"
    assert registry.get_version("proj", "model", "v1").aliases == []
    assert [v.version for v in registry.list_versions("proj", "model")] == ["v0", "v1"]


def test_a_new_version_after_it_takes_latest_back(registry: Registry) -> None:
    commit(registry, "same")
    commit(registry, "other")
    commit(registry, "same")
    assert commit(registry, "third").version.version == "v2"
    assert latest(registry) == "v2"
    assert [
        v.version for v in registry.list_versions("proj", "model") if "latest" in v.aliases
    ] == ["v2"]


def test_the_highest_content_logged_again_leaves_latest_on_it(registry: Registry) -> None:
    commit(registry, "d0")
    top = commit(registry, "d1").version
    again = commit(registry, "d1", aliases=["again"])
    assert again.version.id == top.id and again.version.aliases == ["again", "latest"]
    assert latest(registry) == "v1"


def test_deleting_the_version_latest_moved_to_hands_it_to_the_highest(
    registry: Registry,
) -> None:
    v0 = commit(registry, "same").version
    commit(registry, "other")
    commit(registry, "same")
    # `latest` alone does not hold a version back.
    assert registry.delete_version(v0.id).state == DELETED
    assert latest(registry) == "v1"
    # Its content logged again after the delete is a new version, which is latest.
    relogged = commit(registry, "same")
    assert relogged.created and relogged.version.version == "v2" and latest(registry) == "v2"


def test_set_aliases_keeps_latest_where_it_moved_and_refuses_it_elsewhere(
    registry: Registry,
) -> None:
    v0 = commit(registry, "same").version
    v1 = commit(registry, "other").version
    commit(registry, "same")
    edited = registry.set_aliases(v0.id, ["prod"])
    assert edited.aliases == ["latest", "prod"]
    assert registry.set_aliases(v0.id, ["latest", "prod"]).aliases == ["latest", "prod"]
    with pytest.raises(InvalidInputError, match="'latest' moves by itself"):
        registry.set_aliases(v1.id, ["latest"])
    assert latest(registry) == "v0"


def test_a_retried_submission_does_not_move_latest_again(registry: Registry) -> None:
    commit(registry, "same")
    commit(registry, "other")
    first = commit(registry, "same", submission_id="sub-again")
    commit(registry, "third")
    retried = commit(registry, "same", submission_id="sub-again")
    assert retried.created is first.created is False
    assert retried.version.id == first.version.id
    assert latest(registry) == "v2"


# -- the SDK through a daemon (SQLite) --------------------------------------------------------


def _dataset(content: bytes, **fields: object) -> artisync.Artifact:
    artifact = artisync.Artifact("data", "dataset", **fields)  # type: ignore[arg-type]
    with artifact.new_file("rows.csv", mode="wb") as f:
        f.write(content)
    return artifact


def test_logging_older_content_again_returns_that_version_with_the_new_aliases(
    daemon: DaemonProcess,
) -> None:
    with artisync.init(project="proj", home=daemon.home) as run:
        first = run.log_artifact(_dataset(b"a,b\n1,2\n")).wait()
        run.log_artifact(_dataset(b"a,b\n3,4\n")).wait()
        again = run.log_artifact(_dataset(b"a,b\n1,2\n"), aliases=["best", "latest"]).wait()
    assert (again.version, again.id) == ("v0", first.id)
    assert again.aliases == ["best", "latest"]
    api = artisync.Api(home=daemon.home)
    assert api.artifact("proj/data:latest").version == "v0"
    assert api.artifact("proj/data:best").version == "v0"
    assert [a.version for a in api.artifacts("dataset", "proj/data")] == ["v0", "v1"]


def test_new_metadata_of_identical_content_is_not_applied_and_the_log_is_warned(
    daemon: DaemonProcess,
) -> None:
    with artisync.init(project="proj", home=daemon.home) as run:
        run.log_artifact(_dataset(b"x", description="first", metadata={"rows": 1})).wait()
        same = run.log_artifact(_dataset(b"x", description="second", metadata={"rows": 2}))
        with pytest.warns(SameContentWarning, match=r"data:v0.*description, metadata") as caught:
            same.wait()
    assert "artifact.save()" in str(caught[0].message)
    # The returned artifact shows what the version records; editing it is the way.
    assert (same.version, same.description, same.metadata) == ("v0", "first", {"rows": 1})
    same.metadata = {"rows": 2}
    same.save()
    assert artisync.Api(home=daemon.home).artifact("proj/data:v0").metadata == {"rows": 2}


def test_identical_content_with_nothing_new_is_not_warned(daemon: DaemonProcess) -> None:
    with artisync.init(project="proj", home=daemon.home) as run:
        run.log_artifact(_dataset(b"x", metadata={"rows": 1})).wait()
        # No warning: pytest's filterwarnings=error would fail the test on one.
        assert run.log_artifact(_dataset(b"x", metadata={"rows": 1})).wait().version == "v0"
        assert run.log_artifact(_dataset(b"x")).wait().version == "v0"
