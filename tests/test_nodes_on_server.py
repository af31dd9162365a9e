"""Nodes on one registry server: a node's daemon commits to ``artisync server``, another
node reads what it committed, a store only one node reaches is refused, and commits wait
in order while the server is down, then go through."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import artisync
from daemon_harness import DaemonProcess, clean_env, wait_for
from postgres_server import PostgresServer
from server_process import Server


@pytest.fixture
def server(postgres_server: PostgresServer, start_server: Callable[..., Server]) -> Server:
    return start_server(postgres_server.dsn(postgres_server.create_database()))


def node_home(root: Path, name: str, server: Server, store: Path) -> Path:
    """A node's home whose registry is ``server`` and whose store is the directory every
    node mounts (``store_shared``)."""
    home = root / name
    home.mkdir(parents=True)
    (home / "config.toml").write_text(
        f'registry = "{server.url}"\nstore = "file://{store}"\nstore_shared = true\n'
    )
    return home


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "artisync.cli", "--home", str(home), *args]
    return subprocess.run(command, capture_output=True, text=True, env=clean_env(), timeout=120)


@pytest.fixture
def daemons() -> Iterator[list[DaemonProcess]]:
    started: list[DaemonProcess] = []
    yield started
    for daemon in started:
        daemon.kill()


def test_a_version_one_node_commits_is_read_on_another(
    server: Server, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    first = node_home(tmp_path, "a", server, tmp_path / "shared-store")
    # The reading node names only the server: the version says where its bytes are.
    second = tmp_path / "b"
    second.mkdir()
    (second / "config.toml").write_text(f'registry = "{server.url}"\n')
    daemon = DaemonProcess(first)
    daemons.append(daemon)
    daemon.start()
    with artisync.init(project="team", home=first) as run:
        artifact = artisync.Artifact("data", "dataset")
        with artifact.new_file("rows.csv") as f:
            f.write("1,2\n")
        run.log_artifact(artifact)
        assert artifact.wait(timeout=60).version == "v0"
    # The other node has no daemon and no registry file: it asks the server.
    read = artisync.Api(home=second).artifact("team/data:latest")
    assert read.version == "v0"
    assert read._version is not None
    assert read._version.store == (tmp_path / "shared-store").as_uri()
    assert (Path(read.download(root=tmp_path / "got")) / "rows.csv").read_text() == "1,2\n"
    assert not (second / "registry.db").exists()
    listing = _cli(second, "ls", "team/data")
    assert listing.returncode == 0, listing.stderr
    assert "v0" in listing.stdout


def test_a_store_only_this_node_reaches_is_refused_with_a_server(
    server: Server, tmp_path: Path
) -> None:
    home = tmp_path / "node"
    home.mkdir()
    (home / "config.toml").write_text(f'registry = "{server.url}"\n')
    daemon = DaemonProcess(home)
    try:
        daemon.start(wait_ready=False)
        assert daemon.wait_exit() == 2
        assert "other nodes could not read its versions" in daemon.logs()
        assert "store_shared = true" in daemon.logs()
    finally:
        daemon.kill()


def test_commits_wait_in_order_while_the_server_is_down_then_go_through(
    postgres_server: PostgresServer,
    start_server: Callable[..., Server],
    tmp_path: Path,
    daemons: list[DaemonProcess],
) -> None:
    dsn = postgres_server.dsn(postgres_server.create_database())
    server = start_server(dsn)
    home = node_home(tmp_path, "node", server, tmp_path / "store")
    daemon = DaemonProcess(home)
    daemons.append(daemon)
    daemon.start()
    with artisync.init(project="team", home=home) as run:
        server.stop()
        logged = []
        for epoch in range(3):
            artifact = artisync.Artifact("model", "model", metadata={"epoch": epoch})
            with artifact.new_file("weights.bin") as f:
                f.write(f"epoch {epoch}")
            run.log_artifact(artifact)  # returns at once, server or not
            logged.append(artifact)

        def says_it_waits() -> bool:
            shown = _cli(home, "status", "--once").stdout
            return f"registry {server.url} unreachable since" in shown and "waiting" in shown

        wait_for(says_it_waits, deadline=60, what="status to show the wait")
        start_server(dsn, port=server.port)
        versions = [a.wait(timeout=120).version for a in logged]
    assert versions == ["v0", "v1", "v2"]
    epochs = [
        artisync.Api(home=home).artifact(f"team/model:{v}").metadata["epoch"] for v in versions
    ]
    assert epochs == [0, 1, 2]


def test_parts_upserted_on_two_nodes_make_one_version_and_the_cli_reads_it(
    server: Server, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    store = tmp_path / "shared-store"
    homes = [node_home(tmp_path, n, server, store) for n in ("a", "b")]
    for home in homes:
        daemons.append(DaemonProcess(home))
        daemons[-1].start()
    for n, home in enumerate(homes):
        with artisync.init(project="team", group="shards", home=home) as run:
            part = artisync.Artifact("eval", "table")
            with part.new_file(f"shard-{n}.csv") as f:
                f.write(f"{n}\n")
            run.upsert_artifact(part, distributed_id="shards")
            part.wait(timeout=60)
    with artisync.init(project="team", group="shards", home=homes[0]) as run:
        final = artisync.Artifact("eval", "table")
        run.finish_artifact(final, distributed_id="shards")
        assert final.wait(timeout=60).version == "v0"
    read = artisync.Api(home=homes[1]).artifact("team/eval:v0")
    assert sorted(read.manifest.entries) == ["shard-0.csv", "shard-1.csv"]

    got = _cli(homes[1], "get", "team/eval:v0", "-o", str(tmp_path / "got"))
    assert got.returncode == 0, got.stderr
    assert got.stdout.startswith("team/eval:v0 -> ")
    assert (tmp_path / "got" / "shard-1.csv").read_text() == "1\n"
    lineage = _cli(homes[1], "lineage", "team/eval:v0", "--json")
    assert lineage.returncode == 0, lineage.stderr
    assert "team" in lineage.stdout
    collected = _cli(homes[0], "gc", "--dry-run")
    assert collected.returncode == 0, collected.stderr


def test_a_node_moves_to_the_server_with_submissions_in_its_spool(
    postgres_server: PostgresServer,
    start_server: Callable[..., Server],
    tmp_path: Path,
    daemons: list[DaemonProcess],
) -> None:
    dsn = postgres_server.dsn(postgres_server.create_database())
    home = tmp_path / "node"
    home.mkdir()
    daemon = DaemonProcess(home)
    daemons.append(daemon)
    daemon.start()
    with artisync.init(project="team", home=home) as run:
        first = artisync.Artifact("model", "model")
        with first.new_file("w.bin") as f:
            f.write("first")
        run.log_artifact(first)
        assert first.wait(timeout=60).version == "v0"
    daemon.stop()
    # Logged while no daemon runs: it waits in the spool.
    with artisync.init(project="team", home=home) as run:
        queued = artisync.Artifact("model", "model")
        with queued.new_file("w.bin") as f:
            f.write("second")
        run.log_artifact(queued)
    assert list((home / "spool" / "new").glob("*.json"))

    imported = _cli(home, "server", "import", "--from", str(home), "--db", dsn)
    assert imported.returncode == 0, imported.stderr
    server = start_server(dsn)
    # Imported versions keep the embedded registry's entity, `local`: the node names it
    # as its default, since the server's default would be the caller's own.
    (home / "config.toml").write_text(
        f'registry = "{server.url}"\nstore = "file://{home / "store"}"\nstore_shared = true\n'
        'default_entity = "local"\n'
    )
    daemon.start()
    # Read as the node sees it now (the script that queued it logged before the move).
    api = artisync.Api(home=home)

    def committed() -> bool:
        return len(api.artifacts("model", "team/model")) == 2

    wait_for(committed, deadline=60, what="the queued submission to commit on the server")
    assert api.artifact("team/model:v0").digest == first.digest
    second = api.artifact("team/model:v1")
    assert second.get_entry("w.bin").download(root=str(tmp_path / "got"))
    assert (tmp_path / "got" / "w.bin").read_text() == "second"
