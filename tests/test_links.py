"""Links (W&B's ``artifact.link`` / ``run.link_artifact``): a version made a version of a
registry collection such as ``model-registry/Classifier``, readable with
``Api().artifact("model-registry/Classifier:staging")``. The registry contract runs on
every backend; the SDK end to end through a real daemon on SQLite."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import artisync
from artisync.errors import ArtisyncError, InvalidInputError, NotFoundError, TypeConflictError
from artisync.registry import Registry
from artisync.registry.http import HttpRegistry
from artisync.registry.linking import linked_version
from daemon_harness import DaemonProcess
from granted_team import Team
from registry_backends import commit


def link(reg: Registry, version_id: str, *aliases: str, **target: str) -> object:
    fields = {"project": "model-registry", "name": "Classifier", **target}
    return reg.link_version(
        version_id, aliases=list(aliases), submission_id=uuid.uuid4().hex, **fields
    )


# -- the registry contract (every backend) ---------------------------------------------------


def test_a_link_is_a_version_of_the_target_with_the_sources_content(registry: Registry) -> None:
    source = commit(registry, "d0", description="resnet", metadata={"acc": 0.9}).version
    result = registry.link_version(
        source.id,
        project="model-registry",
        name="Classifier",
        aliases=["staging"],
        submission_id="link-1",
    )
    linked = result.version
    assert result.created and (linked.project, linked.name, linked.version) == (
        "model-registry",
        "Classifier",
        "v0",
    )
    assert linked.aliases == ["latest", "staging"]
    assert (linked.type, linked.digest, linked.manifest_key, linked.size) == (
        source.type,
        source.digest,
        source.manifest_key,
        source.size,
    )
    assert (linked.description, linked.metadata) == ("resnet", {"acc": 0.9})
    assert registry.get_version("model-registry", "Classifier", "staging").id == linked.id
    # The same link asked again (a lost answer) is the first answer.
    again = registry.link_version(
        source.id, project="model-registry", name="Classifier", submission_id="link-1"
    )
    assert again == result


def test_linking_the_same_source_again_moves_the_aliases_not_a_new_version(
    registry: Registry,
) -> None:
    v0 = commit(registry, "d0").version
    v1 = commit(registry, "d1").version
    first = link(registry, v0.id, "staging").version  # type: ignore[attr-defined]
    link(registry, v1.id, "candidate")
    again = link(registry, v0.id, "production")
    assert again.created is False  # type: ignore[attr-defined]
    assert again.version.id == first.id  # type: ignore[attr-defined]
    assert again.version.aliases == ["latest", "production", "staging"]  # type: ignore[attr-defined]
    linked = registry.list_versions("model-registry", "Classifier")
    assert [(v.version, v.digest) for v in linked] == [("v0", v0.digest), ("v1", v1.digest)]


def test_a_target_collection_has_one_type(registry: Registry) -> None:
    model = commit(registry, "d0").version
    data = commit(registry, "e0", name="data", type="dataset").version
    link(registry, model.id)
    with pytest.raises(TypeConflictError, match="'Classifier' already exists"):
        link(registry, data.id)


def test_bad_links_are_refused_naming_what_is_wrong(registry: Registry) -> None:
    v0 = commit(registry, "d0").version
    commit(registry, "d1")
    with pytest.raises(InvalidInputError, match="artifact name"):
        link(registry, v0.id, name="a/b")
    with pytest.raises(InvalidInputError, match="project"):
        link(registry, v0.id, project="a:b")
    with pytest.raises(InvalidInputError, match="alias"):
        link(registry, v0.id, "x/y")
    with pytest.raises(NotFoundError):
        link(registry, "no-such-version")
    registry.delete_version(v0.id)
    with pytest.raises(NotFoundError, match="deleted"):
        link(registry, v0.id)


# -- the SDK through a daemon (SQLite) --------------------------------------------------------


def _model(content: bytes) -> artisync.Artifact:
    artifact = artisync.Artifact("resnet", "model", metadata={"acc": 0.9})
    with artifact.new_file("model.pt", mode="wb") as f:
        f.write(content)
    return artifact


def test_run_link_artifact_logs_a_draft_and_the_registry_reads_it(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    with artisync.init(project="proj", home=daemon.home) as run:
        draft = _model(b"weights")
        linked = run.link_artifact(draft, "model-registry/Classifier", aliases=["staging"])
        assert not draft.is_draft() and draft.version == "v0"
    assert (linked.project, linked.name, linked.version) == ("model-registry", "Classifier", "v0")
    assert linked.aliases == ["latest", "staging"]
    found = artisync.Api(home=daemon.home).artifact("model-registry/Classifier:staging")
    assert (found.id, found.digest, found.metadata) == (linked.id, draft.digest, {"acc": 0.9})
    assert (Path(found.download(tmp_path / "got")) / "model.pt").read_bytes() == b"weights"


def test_artifact_link_waits_for_a_version_in_flight_and_takes_a_registry_path(
    daemon: DaemonProcess,
) -> None:
    with artisync.init(project="proj", home=daemon.home) as run:
        logged = run.log_artifact(_model(b"v0 weights"))
        linked = logged.link("wandb-registry-model/Classifier", aliases="candidate")
        run.log_artifact(_model(b"v1 weights")).link("wandb-registry-model/Classifier")
        relinked = logged.link("wandb-registry-model/Classifier", aliases=["production"])
    assert logged.version == "v0" and linked.version == "v0"
    assert relinked.id == linked.id and relinked.aliases == ["candidate", "latest", "production"]
    api = artisync.Api(home=daemon.home)
    # W&B's latest: the version linked last.
    assert api.artifact("wandb-registry-model/Classifier:latest").id == linked.id
    assert api.artifact("wandb-registry-model/Classifier:v1").digest != linked.digest
    # A target with no project is in the run's project.
    with artisync.init(project="proj", home=daemon.home) as run:
        in_project = run.link_artifact(logged, "best-models")
    assert (in_project.project, in_project.name) == ("proj", "best-models")


@pytest.mark.parametrize(
    ("target", "match"),
    [
        ("a/b/c/d", "expected"),
        ("", "expected"),
        ("model-registry/Classifier:staging", r"aliases=\['staging'\]"),
        ("model-registry/", "expected"),
        (3, "expected a str"),
    ],
)
def test_bad_target_paths_are_refused_before_anything_is_logged(
    daemon: DaemonProcess, target: object, match: str
) -> None:
    with artisync.init(project="proj", home=daemon.home) as run:
        draft = _model(b"w")
        with pytest.raises(InvalidInputError, match=match):
            run.link_artifact(draft, target)  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match=match):
            draft.link(target)  # type: ignore[arg-type]
        assert draft.is_draft()


def test_linking_a_draft_with_no_run_says_to_start_one(home: Path) -> None:
    draft = artisync.Artifact("resnet", "model")
    with pytest.raises(ArtisyncError, match=r"never logged and no run is active"):
        draft.link("model-registry/Classifier")


def test_linking_into_a_collection_of_another_type_is_a_type_conflict(
    daemon: DaemonProcess,
) -> None:
    with artisync.init(project="proj", home=daemon.home) as run:
        run.link_artifact(_model(b"w"), "model-registry/Classifier")
        data = artisync.Artifact("rows", "dataset")
        with data.new_file("rows.csv") as f:
            f.write("a\n")
        with pytest.raises(TypeConflictError, match="with type 'model'"):
            run.link_artifact(data, "model-registry/Classifier")


# -- on a team's server, whose bucket the node reaches through grants -------------------------


@pytest.fixture
def daemons() -> Iterator[list[DaemonProcess]]:
    started: list[DaemonProcess] = []
    yield started
    for daemon in started:
        daemon.kill()


def test_a_link_on_a_server_passes_its_content_proof_and_a_forged_one_does_not(
    s3_team: Team,
    node: Callable[[Team], Path],
    daemons: list[DaemonProcess],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    home = node(s3_team)
    daemon = DaemonProcess(home)
    daemons.append(daemon)
    daemon.start({"ARTISYNC_API_KEY": s3_team.keys["alice"]})
    monkeypatch.setenv("ARTISYNC_API_KEY", s3_team.keys["alice"])
    with artisync.init(project="detector", entity="vision", home=home) as run:
        source = run.log_artifact(_model(b"team weights")).wait(timeout=120)
        # Alice may read the source, which proves she holds its blobs: the server commits.
        linked = run.link_artifact(source, "model-registry/Classifier", aliases=["staging"])
    assert (linked.entity, linked.project, linked.version) == ("vision", "model-registry", "v0")
    reader = artisync.Api(home=node(s3_team)).artifact("vision/model-registry/Classifier:staging")
    assert (Path(reader.download(tmp_path / "got")) / "model.pt").read_bytes() == b"team weights"

    # Mallory cannot read it, so she can link nothing of it, nor commit its manifest as hers.
    mallory = s3_team.keys["mallory"]
    registry = HttpRegistry(s3_team.server.url, api_key=mallory)
    try:
        with pytest.raises(NotFoundError):
            registry.link_version(
                source.id or "",
                project="mine",
                name="Stolen",
                entity="mallory",
                submission_id=uuid.uuid4().hex,
            )
        assert source._version is not None
        forged = linked_version(
            source._version,
            submission_id=uuid.uuid4().hex,
            project="mine",
            name="Stolen",
            entity="mallory",
            aliases=[],
        )
        with pytest.raises(InvalidInputError, match="not uploaded by this caller"):
            registry.commit_version(forged)
    finally:
        registry.close()
