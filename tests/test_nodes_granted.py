"""Nodes without bucket credentials, end to end: real daemons on nodes whose registry is
a server that serves the team's bucket, and that set no store of their own, write and
read that bucket through the server's grants (store/granted.py, daemon/store_choice.py).

The server, its bucket (moto behind a counting proxy, or fake-gcs-server), its users and
the nodes' homes are ``granted_team.py``'s fixtures; only the server has bucket
credentials.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import artisync
from artisync.errors import NotFoundError
from artisync.registry.http.acting import acting_as
from artisync.spool import Spool
from artisync.store import ObjectNotFoundError, shared_store
from daemon_harness import DaemonProcess, clean_env, drop, result_of, staged_submission, wait_for
from granted_team import BIG, PART, Team
from postgres_server import PostgresServer
from server_process import Server
from servers import CREDENTIALS


@pytest.fixture
def daemons() -> Iterator[list[DaemonProcess]]:
    started: list[DaemonProcess] = []
    yield started
    for daemon in started:
        daemon.kill()


def _start(daemons: list[DaemonProcess], home: Path, key: str, **env: str) -> DaemonProcess:
    daemon = DaemonProcess(home)
    daemons.append(daemon)
    daemon.start({"ARTISYNC_API_KEY": key, "ARTISYNC_UPLOAD_CONCURRENCY": "2", **env})
    return daemon


def _environ(daemon: DaemonProcess) -> dict[str, str]:
    assert daemon.proc is not None
    raw = Path(f"/proc/{daemon.proc.pid}/environ").read_bytes()
    return dict(entry.split("=", 1) for entry in raw.decode().split("\0") if "=" in entry)


def _log(home: Path, name: str, files: dict[str, bytes], tmp: Path, **where: Any) -> Any:
    """Log an artifact of ``files`` from ``home`` as project vision/detector; its
    committed version."""
    src = tmp / f"src-{name}-{os.urandom(4).hex()}"
    src.mkdir()
    with artisync.init(
        project=where.get("project", "detector"), entity=where.get("entity", "vision"), home=home
    ) as run:
        artifact = artisync.Artifact(name, "model")
        for path, data in files.items():
            (src / path).write_bytes(data)
            artifact.add_file(str(src / path))
        run.log_artifact(artifact)
        return artifact.wait(timeout=120)


def test_a_node_with_no_bucket_credentials_writes_and_reads_through_the_servers_grants(
    s3_team: Team,
    node: Callable[[Team], Path],
    daemons: list[DaemonProcess],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    proxy = s3_team.proxy
    assert proxy is not None
    writer = node(s3_team)
    daemon = _start(daemons, writer, s3_team.keys["alice"])
    assert not any(
        k.startswith("AWS_") and k.endswith(("KEY_ID", "ACCESS_KEY", "URL"))
        for k in _environ(daemon)
    )
    monkeypatch.setenv("ARTISYNC_API_KEY", s3_team.keys["alice"])
    big = os.urandom(BIG)
    files = {"weights.bin": big, "labels.csv": b"cat,dog\n", "notes.txt": b"epoch 3\n"}

    version = _log(writer, "weights", files, tmp_path)
    assert version.version == "v0"
    assert version._version.store == s3_team.store  # readers anywhere find the bucket
    assert proxy.blob_puts() == 2 and sorted(proxy.parts()) == [1, 2, 3, 4]

    # Another node, with no daemon and no credentials, reads it through the grants.
    reader = node(s3_team)
    read = artisync.Api(home=reader).artifact("vision/detector/weights:latest")
    root = Path(read.download(root=tmp_path / "got"))
    assert {p: (root / p).read_bytes() for p in files} == files

    # The same blobs logged again are not sent again: only the new one is.
    proxy.requests.clear()
    again = _log(writer, "weights-copy", {**files, "extra.txt": b"new"}, tmp_path)
    assert again.version == "v0"
    extra = hashlib.md5(b"new").hexdigest()
    assert proxy.blob_puts() == 1 and proxy.blob_puts(extra) == 1
    assert proxy.parts() == []
    assert "store_through_grants" in daemon.logs()


def test_a_multipart_upload_killed_midway_resumes_with_the_missing_parts_only(
    s3_team: Team,
    node: Callable[[Team], Path],
    daemons: list[DaemonProcess],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    proxy = s3_team.proxy
    assert proxy is not None
    home = node(s3_team)
    daemon = DaemonProcess(home)
    daemons.append(daemon)
    spool = Spool(daemon.config.spool)
    payload = os.urandom(BIG)
    sub = staged_submission(spool, "detector", "ckpt", {"model.bin": payload, "a.txt": b"a"})
    sub = dataclasses.replace(sub, entity="vision")
    drop(spool, sub)
    md5_hex = hashlib.md5(payload).hexdigest()
    env = {"ARTISYNC_API_KEY": s3_team.keys["alice"], "ARTISYNC_UPLOAD_CONCURRENCY": "1"}

    daemon.start({**env, "ARTISYNC_CRASH_AT": "after_part:2"}, wait_ready=False)
    assert daemon.wait_exit() == -9, daemon.logs()
    wait_for(lambda: proxy.in_flight == 0, what="the proxy to finish forwarding")
    assert (home / "uploads" / "granted" / f"{md5_hex}.json").exists(), "the upload id is journaled"
    sent_before = set(proxy.parts())
    assert sent_before == {1, 2}
    created = proxy.count("POST", "uploads")
    assert created == 1

    proxy.requests.clear()
    daemon.start(env)
    assert result_of(spool, sub.id)["status"] == "committed", daemon.logs()
    assert sorted(proxy.parts()) == [3, 4], "each missing part once, none sent before"
    assert proxy.count("POST", "uploads") == 0, "the journaled upload was completed, not a new one"
    assert "event=upload_resumed" in daemon.logs()
    assert not list((home / "uploads" / "granted").glob("*.json")), "the journal entry went"

    monkeypatch.setenv("ARTISYNC_API_KEY", s3_team.keys["bob"])  # of the team, too
    got = artisync.Api(home=node(s3_team)).artifact("vision/detector/ckpt:v0")
    assert (Path(got.download(root=tmp_path / "got")) / "model.bin").read_bytes() == payload


def test_an_outsider_uploads_a_private_digest_and_still_cannot_read_the_private_version(
    s3_team: Team,
    node: Callable[[Team], Path],
    daemons: list[DaemonProcess],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    proxy = s3_team.proxy
    assert proxy is not None
    secret, other = b"private weights " * 1000, b"only alice has these"
    alice_home = node(s3_team)
    _start(daemons, alice_home, s3_team.keys["alice"])
    monkeypatch.setenv("ARTISYNC_API_KEY", s3_team.keys["alice"])
    _log(alice_home, "weights", {"w.bin": secret, "o.bin": other}, tmp_path)

    # Mallory names the same bytes: her node must send them, as for any new blob. (This
    # process's SDK keeps one client per server: her calls carry her key by acting_as.)
    proxy.requests.clear()
    mallory = s3_team.keys["mallory"]
    mallory_home = node(s3_team)
    _start(daemons, mallory_home, mallory)
    with acting_as(mallory):
        mine = _log(
            mallory_home, "copy", {"w.bin": secret}, tmp_path, entity="mallory", project="mine"
        )
    assert mine.version == "v0"
    md5_secret, md5_other = hashlib.md5(secret).hexdigest(), hashlib.md5(other).hexdigest()
    assert proxy.blob_puts(md5_secret) == 1

    # Holding one of its blobs opens nothing else of Alice's version.
    monkeypatch.setenv("ARTISYNC_API_KEY", mallory)
    with acting_as(mallory):
        with pytest.raises(NotFoundError):
            artisync.Api(home=mallory_home).artifact("vision/detector/weights:v0")
        store = shared_store(s3_team.store, mallory_home, server=s3_team.server.url)
        assert asyncio.run(store.has_blobs([md5_other, md5_secret])) == {md5_secret}
        with pytest.raises(ObjectNotFoundError):
            asyncio.run(store.get_blob(md5_other, tmp_path / "stolen"))
    assert not (tmp_path / "stolen").exists()


def test_parts_upserted_through_grants_on_two_nodes_are_finished_into_one_version(
    s3_team: Team,
    node: Callable[[Team], Path],
    daemons: list[DaemonProcess],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    homes = {user: node(s3_team) for user in ("alice", "bob")}
    for user, home in homes.items():
        _start(daemons, home, s3_team.keys[user])
    monkeypatch.setenv("ARTISYNC_API_KEY", s3_team.keys["alice"])
    for user, home in homes.items():
        with (
            acting_as(s3_team.keys[user]),
            artisync.init(project="detector", entity="vision", group="shards", home=home) as run,
        ):
            part = artisync.Artifact("eval", "table")
            with part.new_file(f"shard-{user}.csv") as f:
                f.write(f"{user}\n")
            run.upsert_artifact(part, distributed_id="shards")
            part.wait(timeout=60)
    # Alice's node merges Bob's part too: its manifest, read through the server.
    with artisync.init(
        project="detector", entity="vision", group="shards", home=homes["alice"]
    ) as run:
        final = artisync.Artifact("eval", "table")
        run.finish_artifact(final, distributed_id="shards")
        assert final.wait(timeout=60).version == "v0"
    read = artisync.Api(home=node(s3_team)).artifact("vision/detector/eval:v0")
    root = Path(read.download(root=tmp_path / "got"))
    assert (root / "shard-bob.csv").read_text() == "bob\n"
    assert (root / "shard-alice.csv").read_text() == "alice\n"


def test_gc_of_the_bucket_is_refused_on_a_node_and_runs_where_its_credentials_are(
    s3_team: Team, node: Callable[[Team], Path], daemons: list[DaemonProcess]
) -> None:
    home = node(s3_team)
    env = {**clean_env(), "ARTISYNC_API_KEY": s3_team.keys["alice"]}
    alone = _gc(home, env)
    assert alone.returncode == 2
    assert "runs where they are, e.g. on the server host: `artisync gc`" in alone.stderr
    _start(daemons, home, s3_team.keys["alice"])
    with_daemon = _gc(home, env)
    assert with_daemon.returncode == 2
    assert "on the server host" in with_daemon.stderr

    # The server host's home names the bucket and has its credentials (and a site
    # admin's key: clean_env keeps the tests' one).
    assert s3_team.proxy is not None
    host = node(s3_team)
    (host / "config.toml").write_text(
        f'registry = "{s3_team.server.url}"\nstore = "{s3_team.store}"\n'
    )
    collected = _gc(host, {**clean_env(), **CREDENTIALS, "AWS_ENDPOINT_URL": s3_team.proxy.url})
    assert collected.returncode == 0, collected.stderr
    assert "would remove" in collected.stdout


def _gc(home: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "artisync.cli", "--home", str(home), "gc", "--dry-run"]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)


def test_a_node_on_a_server_that_serves_no_bucket_is_refused_without_a_store(
    postgres_server: PostgresServer, start_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = start_server(postgres_server.dsn(postgres_server.create_database()))
    home = Path(tempfile.mkdtemp(prefix="as-", dir="/tmp"))
    try:
        (home / "config.toml").write_text(f'registry = "{server.url}"\n')
        daemon = DaemonProcess(home)
        daemon.start(wait_ready=False)
        assert daemon.wait_exit() == 2
        assert "it serves no bucket through grants (start it with --store" in daemon.logs()
        assert "store_shared = true" in daemon.logs()
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_a_gcs_bucket_is_written_and_read_through_sessions_with_no_credentials(
    gcs_team: Team,
    node: Callable[[Team], Path],
    daemons: list[DaemonProcess],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    writer = node(gcs_team)
    daemon = _start(daemons, writer, gcs_team.keys["alice"], ARTISYNC_PART_SIZE=str(PART))
    assert "STORAGE_EMULATOR_HOST" not in _environ(daemon)
    monkeypatch.setenv("ARTISYNC_API_KEY", gcs_team.keys["alice"])
    files = {"big.bin": os.urandom(2 * PART + 999), "small.txt": b"hello", "empty": b""}
    version = _log(writer, "weights", files, tmp_path)
    assert version._version.store == gcs_team.store

    monkeypatch.setenv("ARTISYNC_API_KEY", gcs_team.keys["bob"])
    read = artisync.Api(home=node(gcs_team)).artifact("vision/detector/weights:v0")
    root = Path(read.download(root=tmp_path / "got"))
    assert {p: (root / p).read_bytes() for p in files} == files


def test_a_gcs_session_killed_midway_is_resumed_or_replaced_and_the_version_is_whole(
    gcs_team: Team, node: Callable[[Team], Path], daemons: list[DaemonProcess], tmp_path: Path
) -> None:
    home = node(gcs_team)
    daemon = DaemonProcess(home)
    daemons.append(daemon)
    spool = Spool(daemon.config.spool)
    payload = os.urandom(2 * PART + 4321)  # three chunks
    sub = staged_submission(spool, "detector", "ckpt", {"model.bin": payload})
    drop(spool, dataclasses.replace(sub, entity="vision"))
    md5_hex = hashlib.md5(payload).hexdigest()
    env = {"ARTISYNC_API_KEY": gcs_team.keys["alice"], "ARTISYNC_PART_SIZE": str(PART)}

    daemon.start({**env, "ARTISYNC_CRASH_AT": "after_part:1"}, wait_ready=False)
    assert daemon.wait_exit() == -9, daemon.logs()
    journal = home / "uploads" / "granted" / f"{md5_hex}.json"
    assert json.loads(journal.read_bytes())["offset"] == PART, "the session's answer is kept"

    daemon.start(env)
    assert result_of(spool, sub.id)["status"] == "committed", daemon.logs()
    assert not journal.exists()
    # GCS answers where the session stands (308) and it goes on from there;
    # fake-gcs-server finishes the object short on that question (its #1149), which is
    # seen, and a new session replaces it.
    assert "event=upload_resumed" in daemon.logs() or "event=upload_restarted" in daemon.logs()
    got = artisync.Api(home=node(gcs_team)).artifact("vision/detector/ckpt:v0")
    assert (Path(got.download(root=tmp_path / "got")) / "model.bin").read_bytes() == payload


def test_a_daemon_with_no_key_of_its_own_serves_users_whose_keys_come_with_their_versions(
    s3_team: Team,
    node: Callable[[Team], Path],
    daemons: list[DaemonProcess],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    home = node(s3_team)
    # No ARTISYNC_API_KEY for the daemon: it learns the server's bucket without one.
    _start(daemons, home, "")
    monkeypatch.setenv("ARTISYNC_API_KEY", s3_team.keys["alice"])
    version = _log(home, "keyless", {"k.bin": b"sealed with the version"}, tmp_path)
    assert version.version == "v0"
