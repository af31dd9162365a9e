"""The entity of a run or path that names none (issue 17, item 3): ``default_entity`` in
the settings (``WANDB_ENTITY`` as W&B users set it, ``ARTISYNC_ENTITY``), else with a
server the caller's own, so that W&B's ``project/name:alias`` and
``entity/project/name:alias`` paths resolve as they do there."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

import artisync
from artisync.config import Config
from artisync.errors import InvalidInputError
from artisync.registry import NewVersion
from artisync.registry.http import HttpRegistry
from artisync.server.access.directory import Directory
from artisync.server.access.secret import load_secret
from postgres_server import PostgresServer
from server_process import Server


def test_the_default_entity_comes_from_config_then_wandb_entity_then_artisync_entity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WANDB_ENTITY", raising=False)
    monkeypatch.delenv("ARTISYNC_ENTITY", raising=False)
    assert Config.load(tmp_path).default_entity is None
    (tmp_path / "config.toml").write_text('default_entity = "vision"\n')
    assert Config.load(tmp_path).default_entity == "vision"
    monkeypatch.setenv("WANDB_ENTITY", "wandb-team")
    assert Config.load(tmp_path).default_entity == "wandb-team"
    monkeypatch.setenv("ARTISYNC_ENTITY", "ours")
    assert Config.load(tmp_path).default_entity == "ours"
    monkeypatch.setenv("ARTISYNC_ENTITY", "no/slashes")
    with pytest.raises(InvalidInputError, match="ARTISYNC_ENTITY='no/slashes'"):
        Config.load(tmp_path)


def test_on_a_server_a_callers_runs_and_paths_default_to_their_own_entity(
    postgres_server: PostgresServer,
    start_server: Callable[..., Server],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dsn = postgres_server.dsn(postgres_server.create_database())
    server = start_server(dsn)
    directory = Directory(dsn, load_secret(tmp_path / "server-secret"))
    directory.create_user("alice")
    directory.create_team("vision")
    directory.add_member("vision", "alice", "member")
    key = directory.create_key("alice")
    monkeypatch.setenv("ARTISYNC_API_KEY", key)
    monkeypatch.delenv("WANDB_ENTITY", raising=False)
    monkeypatch.delenv("ARTISYNC_ENTITY", raising=False)
    home = tmp_path / "node"
    home.mkdir()
    (home / "config.toml").write_text(f'registry = "{server.url}"\n')

    with artisync.init(project="mnist", home=home) as run:
        assert run.entity == "alice"
    with HttpRegistry(server.url, api_key=key) as registry:
        for entity in ("alice", "vision"):
            registry.commit_version(
                NewVersion(
                    submission_id=uuid.uuid4().hex,
                    project="mnist",
                    entity=entity,
                    name="weights",
                    type="model",
                    digest=uuid.uuid4().hex,
                    manifest_key="manifests/x.json",
                    size=1,
                    file_count=1,
                )
            )
    api = artisync.Api(home=home)
    assert api.artifact("mnist/weights:latest").entity == "alice"
    assert api.artifact("vision/mnist/weights:latest").entity == "vision"
    # A team named as the default, as W&B's WANDB_ENTITY names one.
    monkeypatch.setenv("WANDB_ENTITY", "vision")
    assert artisync.Api(home=home).artifact("mnist/weights:v0").entity == "vision"
