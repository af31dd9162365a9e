"""A node's guarantees across registry faults: the server killed with kill -9 mid-run,
PostgreSQL restarted, a commit's answer lost on the way back. After each, every
submission the node accepted is committed exactly once, in the order it was logged."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from artisync.errors import RegistryError
from artisync.registry.http import HttpRegistry
from daemon_harness import DaemonProcess, clean_env, wait_for
from lossy_proxy import lossy_proxy
from postgres_server import PostgresServer, running_postgres
from server_process import Server

COUNT = 30

_CLIENT = textwrap.dedent(
    """
    import json, sys, time
    import artisync

    home, count, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    logged = []
    with artisync.init(project="team", home=home) as run:
        for seq in range(count):
            artifact = artisync.Artifact("model", "model", metadata={"seq": seq})
            with artifact.new_file("weights.bin") as f:
                f.write(f"seq {seq}")
            run.log_artifact(artifact)
            logged.append(artifact)
            time.sleep(pause)
        print(json.dumps([a.wait(timeout=300).version for a in logged]))
    """
)


class Node:
    """A home whose registry is ``registry`` (a server URL), with its daemon running."""

    def __init__(self, root: Path, registry: str) -> None:
        self.home = root / "node"
        self.home.mkdir()
        # default_entity: the runs log where the checks read (entity None: `local`).
        (self.home / "config.toml").write_text(
            f'registry = "{registry}"\nstore = "file://{root / "store"}"\nstore_shared = true\n'
            'default_entity = "local"\n'
        )
        self.daemon = DaemonProcess(self.home)
        self.daemon.start()

    def log(self, count: int = COUNT, pause: float = 0.1) -> subprocess.Popen[str]:
        """A training script logging ``count`` versions, ``pause`` seconds apart."""
        command = [sys.executable, "-c", _CLIENT, str(self.home), str(count), str(pause)]
        return subprocess.Popen(
            command, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def committed(self, client: subprocess.Popen[str]) -> list[str]:
        out, err = client.communicate(timeout=600)
        assert client.returncode == 0, err
        answer: list[str] = json.loads(out)
        return answer


def exactly_once_in_order(server_url: str, answers: list[str]) -> None:
    assert answers == [f"v{i}" for i in range(COUNT)]
    with HttpRegistry(server_url) as registry:
        versions = registry.list_versions("team", "model")
    assert [(v.index, v.metadata["seq"]) for v in sorted(versions, key=lambda v: v.index)] == [
        (i, i) for i in range(COUNT)
    ]


@pytest.fixture
def node_factory(tmp_path: Path) -> Iterator[Callable[[str], Node]]:
    made: list[Node] = []

    def make(registry: str) -> Node:
        made.append(Node(tmp_path, registry))
        return made[-1]

    yield make
    for node in made:
        node.daemon.kill()


def _committed_so_far(server_url: str) -> int:
    try:
        with HttpRegistry(server_url) as registry:
            return len(registry.list_versions("team", "model"))
    except RegistryError:  # the server is away: nothing to count yet
        return 0


def test_server_killed_mid_run_then_back_loses_and_doubles_nothing(
    postgres_server: PostgresServer,
    start_server: Callable[..., Server],
    node_factory: Callable[[str], Node],
) -> None:
    dsn = postgres_server.dsn(postgres_server.create_database())
    server = start_server(dsn)
    node = node_factory(server.url)
    client = node.log()
    wait_for(lambda: _committed_so_far(server.url) >= 5, deadline=60, what="a few commits")
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    time.sleep(2)  # the node keeps logging; its commits wait
    back = start_server(dsn, port=server.port)
    exactly_once_in_order(back.url, node.committed(client))


def test_postgres_restarted_mid_run_loses_and_doubles_nothing(
    start_server: Callable[..., Server], node_factory: Callable[[str], Node]
) -> None:
    with running_postgres() as postgres:
        server = start_server(postgres.dsn())
        node = node_factory(server.url)
        client = node.log()
        wait_for(lambda: _committed_so_far(server.url) >= 5, deadline=60, what="a few commits")
        postgres.stop()
        time.sleep(2)
        postgres.start()
        exactly_once_in_order(server.url, node.committed(client))


def test_a_commit_whose_answer_is_lost_is_retried_into_the_same_version(
    postgres_server: PostgresServer,
    start_server: Callable[..., Server],
    node_factory: Callable[[str], Node],
) -> None:
    server = start_server(postgres_server.dsn(postgres_server.create_database()))
    budget = [3]  # the answers of the first three commits never come back

    def lose(request: bytes) -> bool:
        if request.startswith(b"POST /api/v1/commits ") and budget[0] > 0:
            budget[0] -= 1
            return True
        return False

    with lossy_proxy(server.port, lose) as (proxy_url, lost):
        node = node_factory(proxy_url)
        answers = node.committed(node.log(pause=0.0))
    assert len(lost) == 3
    exactly_once_in_order(server.url, answers)


def test_a_minute_without_the_server_while_the_node_keeps_logging(
    postgres_server: PostgresServer,
    start_server: Callable[..., Server],
    node_factory: Callable[[str], Node],
) -> None:
    dsn = postgres_server.dsn(postgres_server.create_database())
    server = start_server(dsn)
    node = node_factory(server.url)
    # Thirty versions over half a minute, nearly all logged while the server is away;
    # the script then waits for them.
    client = node.log(pause=1.0)
    wait_for(lambda: _committed_so_far(server.url) >= 2, deadline=60, what="a first commit")
    server.stop()
    away_from = time.monotonic()
    time.sleep(60)
    assert client.poll() is None, "the script stopped while the server was away"
    back = start_server(dsn, port=server.port)
    exactly_once_in_order(back.url, node.committed(client))
    assert time.monotonic() - away_from >= 60
