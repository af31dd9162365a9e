"""Four nodes, two server processes, one bucket: 200 versions of one artifact logged at
once from every node come out numbered without a gap, each node's in the order it
logged them, none twice, and every node reads every version."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import artisync
from artisync.registry.http import HttpRegistry
from daemon_harness import DaemonProcess, clean_env
from postgres_server import PostgresServer
from server_process import Server
from servers import S3

NODES = 4
PER_NODE = 50

_CLIENT = textwrap.dedent(
    """
    import json, sys
    import artisync

    home, node, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    logged = []
    with artisync.init(project="team", job_type="train", home=home) as run:
        for seq in range(count):
            artifact = artisync.Artifact("model", "model", metadata={"node": node, "seq": seq})
            with artifact.new_file("weights.bin") as f:
                f.write(f"node {node} seq {seq}")
            run.log_artifact(artifact)  # returns at once: the daemon commits
            logged.append(artifact)
        print(json.dumps([a.wait(timeout=300).version for a in logged]))
    """
)


@pytest.fixture
def nodes(
    s3: S3,
    postgres_server: PostgresServer,
    start_server: Callable[..., Server],
    tmp_path: Path,
) -> Iterator[tuple[list[Path], str, str]]:
    dsn = postgres_server.dsn(postgres_server.create_database())
    servers = [start_server(dsn), start_server(dsn)]
    bucket = s3.bucket()
    homes, daemons = [], []
    for n in range(NODES):
        home = tmp_path / f"node-{n}"
        home.mkdir()
        registry = servers[n % len(servers)].url  # half the nodes on each process
        # default_entity: the runs log where the checks read (entity None: `local`).
        (home / "config.toml").write_text(
            f'registry = "{registry}"\nstore = "s3://{bucket}/artisync"\ndefault_entity = "local"\n'
        )
        daemon = DaemonProcess(home)
        daemon.start()
        homes.append(home)
        daemons.append(daemon)
    try:
        yield homes, servers[0].url, bucket
    finally:
        for daemon in daemons:
            daemon.kill()


def test_versions_logged_at_once_on_four_nodes_are_gap_free_ordered_and_readable(
    nodes: tuple[list[Path], str, str], tmp_path: Path
) -> None:
    homes, server, bucket = nodes
    clients = [
        subprocess.Popen(
            [sys.executable, "-c", _CLIENT, str(home), str(n), str(PER_NODE)],
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n, home in enumerate(homes)
    ]
    answers = []
    for client in clients:
        out, err = client.communicate(timeout=600)
        assert client.returncode == 0, err
        answers.append(json.loads(out))

    with HttpRegistry(server) as registry:
        versions = registry.list_versions("team", "model")
    assert sorted(v.index for v in versions) == list(range(NODES * PER_NODE))
    by_index = sorted(versions, key=lambda v: v.index)
    made = [(v.metadata["node"], v.metadata["seq"]) for v in by_index]
    assert len(set(made)) == NODES * PER_NODE, "a submission made two versions"
    for node in range(NODES):
        # Each node's versions in the order its script logged them.
        seqs = [seq for n, seq in made if n == node]
        assert seqs == list(range(PER_NODE))
        assert answers[node] == [f"v{v.index}" for v in by_index if v.metadata["node"] == node]

    # Every node reads every version: the manifests of all, the bytes of a sample, from
    # the bucket each version names.
    assert {v.store for v in by_index} == {f"s3://{bucket}/artisync"}
    for n, home in enumerate(homes):
        api = artisync.Api(home=home)
        for v in by_index:
            read = api.artifact(f"team/model:{v.version}")
            assert read.digest == v.digest
        for v in by_index[n::25]:
            root = Path(
                api.artifact(f"team/model:{v.version}").download(root=tmp_path / f"{n}-{v.version}")
            )
            node, seq = v.metadata["node"], v.metadata["seq"]
            assert (root / "weights.bin").read_text() == f"node {node} seq {seq}"
