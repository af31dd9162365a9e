"""A team's server serving a bucket, and nodes with no bucket credentials: fixtures for
the tests of a node that reaches that bucket through the server's grants
(``test_nodes_granted.py``, ``test_store_granted.py``). Registered for every test file
by ``pytest_plugins`` in conftest.py.

``s3_team``
    An ``artisync server`` on a fresh PostgreSQL database whose store is a moto bucket,
    reached through a counting proxy (the server's S3 endpoint, so its presigned URLs go
    through it too: the bytes each node sends are counted at the bucket). From 6 MiB a
    blob goes up in 5 MiB parts. Users alice and bob (team vision) and mallory (no team
    but her own), with their keys.
``gcs_team``
    The same on fake-gcs-server (no proxy).
``node``
    A factory of node homes whose registry is the team's server and that set no store.

Once the server runs, every ``AWS_*`` variable (and ``STORAGE_EMULATOR_HOST``) leaves
this process's environment: the daemons a test starts and the ``Api`` it uses hold no
bucket credentials. The server process alone has them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from artisync.server.access.directory import Directory
from artisync.server.access.secret import load_secret
from postgres_server import PostgresServer
from server_process import Server
from servers import GCS, S3, CountingProxy

__all__ = ["BIG", "PART", "BucketProxy", "Team", "gcs_team", "node", "s3_team"]

MiB = 1 << 20
PART = 5 * MiB
# The server's: from 6 MiB a blob goes up in parts of 5 MiB (S3's minimum).
SIZES = {
    "ARTISYNC_SERVER_MULTIPART_THRESHOLD": str(6 * MiB),
    "ARTISYNC_SERVER_PART_SIZE": str(PART),
}
BIG = 3 * PART + 12345  # four parts


class BucketProxy(CountingProxy):
    """A counting proxy in front of the bucket that also tells whole-blob PUTs."""

    def blob_puts(self, md5_hex: str | None = None) -> int:
        """Whole-blob PUTs seen (of one blob, if named)."""
        return sum(
            1
            for m, path, q in self.requests
            if m == "PUT" and "/blobs/md5/" in path and "partNumber=" not in q
            and (md5_hex is None or path.endswith(md5_hex))
        )  # fmt: skip


@dataclass
class Team:
    """A server, its bucket, its users' keys, and (S3) the proxy before the bucket."""

    server: Server
    store: str  # the bucket URL the server serves
    keys: dict[str, str]  # user: API key
    proxy: BucketProxy | None = None


def _users(dsn: str, secret_dir: Path) -> dict[str, str]:
    """alice and bob (team vision), mallory (no team but her own); their keys."""
    directory = Directory(dsn, load_secret(secret_dir / "server-secret"))
    directory.create_team("vision")
    for user in ("alice", "bob", "mallory"):
        directory.create_user(user)
    directory.add_member("vision", "alice", "member")
    directory.add_member("vision", "bob", "member")
    return {user: directory.create_key(user) for user in ("alice", "bob", "mallory")}


def _no_bucket_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """From here on, this process and its children hold no bucket credentials."""
    for name in list(os.environ):
        if name.startswith("AWS_") or name in (
            "STORAGE_EMULATOR_HOST",
            "GOOGLE_APPLICATION_CREDENTIALS",
        ):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def s3_team(
    postgres_server: PostgresServer, s3: S3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Team]:
    name = postgres_server.create_database()
    dsn = postgres_server.dsn(name)
    proxy = BucketProxy(s3.endpoint)
    proxy.start()
    store = f"s3://{s3.bucket()}/team"
    env = {**SIZES, "AWS_ENDPOINT_URL": proxy.url}
    server = Server(dsn, tmp_path / "server.log", "--store", store, env=env)
    try:
        server.wait_until("/readyz", 200)
        keys = _users(dsn, tmp_path)
        _no_bucket_credentials(monkeypatch, tmp_path)
        yield Team(server, store, keys, proxy)
    finally:
        server.stop()
        proxy.stop()
        postgres_server.drop_database(name)


@pytest.fixture
def gcs_team(
    postgres_server: PostgresServer, gcs: GCS, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Team]:
    name = postgres_server.create_database()
    dsn = postgres_server.dsn(name)
    store = f"gs://{gcs.bucket()}/team"
    server = Server(dsn, tmp_path / "server.log", "--store", store)
    try:
        server.wait_until("/readyz", 200)
        keys = _users(dsn, tmp_path)
        _no_bucket_credentials(monkeypatch, tmp_path)
        yield Team(server, store, keys)
    finally:
        server.stop()
        postgres_server.drop_database(name)


@pytest.fixture
def node() -> Iterator[Callable[[Team], Path]]:
    """Homes of nodes whose registry is the team's server and that set no store
    (short /tmp paths: their sockets stay under the length limit)."""
    made: list[Path] = []

    def make(team: Team) -> Path:
        home = Path(tempfile.mkdtemp(prefix="as-", dir="/tmp"))
        made.append(home)
        (home / "config.toml").write_text(f'registry = "{team.server.url}"\n')
        return home

    yield make
    for home in made:
        shutil.rmtree(home, ignore_errors=True)
