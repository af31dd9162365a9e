"""A training script's registry writes go through the daemon; its reads stay direct.

On a shared node the daemon owns ``registry.db`` (0640) and a job of its group can only
read it. A real user made here with ``useradd`` (the tests run as root, as CI does), in
the daemon's group, runs the SDK in a forked child: its run, alias and metadata edits,
lineage, deletes, history and sweeps reach the registry through
``POST /v1/registry/<method>`` although it cannot write the file, and with the daemon
down it is told to start it. A user whose registry file it is still writes it directly
with no daemon, as before.
"""

from __future__ import annotations

import grp
import json
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.daemon_harness import DaemonProcess, short_home

import artisync
import artisync.sdk.api  # imported before a child drops its rights
from artisync.errors import ArtisyncError, InvalidInputError, NotFoundError, RegistryError
from artisync.registry import SqliteRegistry
from artisync.sdk.client import UnixHTTPConnection
from artisync.sdk.daemon_registry import DaemonRegistry
from local_users import GROUP, User, as_user, ensure_user, needs_users
from registry_backends import new_version

USER = "artisync-t-carol"


@pytest.fixture(scope="module")
def member() -> User:
    """A user in the daemon's group, with no rights of the daemon's own."""
    return ensure_user(USER)


@pytest.fixture
def node(member: User) -> Iterator[tuple[DaemonProcess, Path]]:
    """A daemon (root, umask 007 as the unit sets) whose home its group may write, and a
    directory of the member's own files."""
    for home in short_home():
        os.chown(home, 0, grp.getgrnam(GROUP).gr_gid)
        os.chmod(home, 0o2770)
        files = home / "users" / member.name
        files.mkdir(parents=True, mode=0o700)
        os.chown(files, member.uid, member.gid)
        os.chmod(home / "users", 0o755)
        daemon = DaemonProcess(home)
        old = os.umask(0o007)
        try:
            daemon.start()
        finally:
            os.umask(old)
        try:
            yield daemon, files
        finally:
            daemon.stop()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _member_session(home: Path, files: Path) -> dict[str, Any]:
    """What a member's training script does: every kind of registry write."""
    registry = home / "registry.db"
    try:
        with sqlite3.connect(f"{registry.as_uri()}?mode=rw", uri=True) as conn:
            conn.execute("UPDATE runs SET name = 'forged'")
        direct = "written"
    except sqlite3.Error as exc:
        direct = str(exc)
    data = files / "rows.csv"
    data.write_text("a,b\n1,2\n")
    with artisync.init(project="shared", id="carol-run", config={"lr": 0.1}, home=home) as run:
        run.log({"loss": 0.25})
        dataset = artisync.Artifact("rows", "dataset")
        dataset.add_file(str(data))
        run.log_artifact(dataset, aliases=["first"])
        dataset.wait()
        dataset.aliases = ["best"]
        dataset.metadata = {"rows": 1}
        dataset.description = "one row"
        dataset.save()
        run.use_artifact("rows:best")
        scratch = artisync.Artifact("scratch", "dataset")
        scratch.add_file(str(data), name="copy.csv")
        run.log_artifact(scratch)
        scratch.wait()
        scratch.delete()
        # What the SDK's run tracking writes: a sweep, the run's tags, notes and sweep,
        # its history; read back from the file directly.
        registry = DaemonRegistry(home / "registry.db", home / "daemon.sock")
        try:
            registry.create_sweep("shared", "carol-sweep", {"method": "grid"})
            registry.ensure_run(
                "shared", None, "carol-trial", tags=["mine", "v1.0"], notes="n", sweep="carol-sweep"
            )
            registry.append_history("shared", "carol-trial", [{"_step": 0, "loss": 0.5}])
            history = registry.run_history("shared", "carol-trial")
            sweep = registry.get_sweep("shared", "carol-sweep").config
        finally:
            registry.close()
        return {
            "direct": direct,
            "rows": dataset.id,
            "scratch": scratch.id,
            "history": history,
            "sweep": sweep,
        }


@needs_users
def test_sdk_writes_go_through_the_daemon_and_reach_the_registry(
    node: tuple[DaemonProcess, Path], member: User
) -> None:
    daemon, files = node
    registry_path = daemon.config.registry
    for path in (registry_path, Path(f"{registry_path}-wal"), Path(f"{registry_path}-shm")):
        assert _mode(path) == 0o640, f"{path} is {oct(_mode(path))}"

    done = as_user(member, lambda: _member_session(daemon.home, files))

    assert "readonly" in done["direct"], "the member could write registry.db itself"
    with SqliteRegistry(registry_path, read_only=True) as registry:
        run = registry.get_run("shared", "carol-run")
        assert (run.state, run.summary["loss"], run.config) == ("finished", 0.25, {"lr": 0.1})
        assert [r["loss"] for r in registry.run_history("shared", "carol-run")] == [0.25]
        trial = registry.get_run("shared", "carol-trial")
        assert (trial.tags, trial.notes, trial.sweep) == (["mine", "v1.0"], "n", "carol-sweep")
        assert done["history"] == registry.run_history("shared", "carol-trial")
        assert done["history"][-1] == {"_step": 0, "loss": 0.5}
        assert done["sweep"] == registry.get_sweep("shared", "carol-sweep").config
        rows = registry.get_version_by_id(done["rows"])
        assert set(rows.aliases) == {"best", "latest"}
        assert (rows.metadata, rows.description) == ({"rows": 1}, "one row")
        assert [r.id for r in registry.used_by(rows.id)] == ["carol-run"]
        with pytest.raises(NotFoundError, match="deleted"):
            registry.get_version_by_id(done["scratch"])
    writes = [
        line
        for line in daemon.logs().splitlines()
        if "event=registry_write " in line and f"uid={member.uid}" in line
    ]
    methods = {
        part.split("=", 1)[1]
        for line in writes
        for part in line.split()
        if part.startswith("method=")
    }
    assert methods >= {
        "ensure_run",
        "set_run_state",
        "set_run_summary",
        "update_version",
        "set_aliases",
        "record_use",
        "delete_version",
        "append_history",
        "create_sweep",
    }, daemon.logs()


@needs_users
def test_a_group_member_without_write_access_is_told_to_start_the_daemon(
    node: tuple[DaemonProcess, Path], member: User
) -> None:
    daemon, _ = node
    assert daemon.stop() == 0

    def start_a_run() -> str:
        try:
            artisync.init(project="shared", id="no-daemon", home=daemon.home)
        except ArtisyncError as exc:
            return str(exc)
        return "started"

    message = as_user(member, start_a_run)

    assert str(daemon.config.socket) in message
    assert "start the daemon" in message and "systemctl start artisync" in message
    with SqliteRegistry(daemon.config.registry, read_only=True) as registry:
        assert registry.find_run("shared", "no-daemon") is None


@needs_users
def test_the_daemon_removes_registry_sidecars_a_group_member_made(
    node: tuple[DaemonProcess, Path], member: User
) -> None:
    daemon, _ = node
    assert daemon.stop() == 0
    wal = Path(f"{daemon.config.registry}-wal")
    assert not wal.exists()

    # A home an older unit left group-writable (0770) with the daemon down: a member
    # plants a -wal of its own, which it could fill with transactions every reader
    # would trust. (In a home of 0750 it cannot: see tests/test_shared_home.py.)
    os.chmod(daemon.home, 0o2770)

    def plant_sidecars() -> None:
        for suffix in ("-wal", "-shm"):
            Path(f"{daemon.config.registry}{suffix}").write_bytes(b"")

    as_user(member, plant_sidecars)
    assert wal.stat().st_uid == member.uid

    daemon.start()
    assert wal.stat().st_uid != member.uid and _mode(wal) == 0o640
    assert "event=registry_sidecar_removed" in daemon.logs()
    status, answer = daemon.request(
        "POST", "/v1/registry/ensure_run", {"project": "shared", "run_id": "after"}
    )
    assert (status, answer["result"]["id"]) == (200, "after")


def _raw(daemon: DaemonProcess, method: str, payload: bytes) -> tuple[int, dict[str, Any]]:
    conn = UnixHTTPConnection(daemon.config.socket, timeout=30)
    try:
        conn.request("POST", f"/v1/registry/{method}", body=payload)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


@pytest.fixture
def daemon(home: Path) -> Iterator[DaemonProcess]:
    daemon = DaemonProcess(home)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


BAD_ARGUMENTS = [
    ("ensure_run", {"project": 7, "run_id": "r"}, "project"),
    ("ensure_run", {"project": "p\x00q", "run_id": "r"}, "project"),
    ("ensure_run", {"project": "a/b", "run_id": "r"}, "project"),
    ("ensure_run", {"project": "p", "run_id": "r\x00"}, "run_id"),
    ("ensure_run", {"project": "p", "run_id": "r:1"}, "run_id"),
    ("ensure_run", {"project": "p"}, "run_id"),
    ("ensure_run", {"project": "p", "run_id": "r", "entity": ["me"]}, "entity"),
    ("ensure_run", {"project": "p", "run_id": "r", "config": [1]}, "config"),
    ("ensure_run", {"project": "p", "run_id": "r", "name": "n\x00"}, "name"),
    ("ensure_run", {"project": "p", "run_id": "r", "bogus": 1}, "bogus"),
    ("set_run_state", {"project": "p", "run_id": "r", "state": "sleeping"}, "state"),
    ("set_run_summary", {"project": "p", "run_id": "r", "summary": "x"}, "summary"),
    ("set_aliases", {"version_id": "v", "aliases": "best"}, "aliases"),
    ("set_aliases", {"version_id": "v", "aliases": ["ok", "a/b"]}, "aliases[1]"),
    ("set_aliases", {"version_id": "v", "aliases": ["a\x00"]}, "aliases[0]"),
    ("update_version", {"version_id": 3}, "version_id"),
    ("update_version", {"version_id": "v", "ttl_seconds": "10"}, "ttl_seconds"),
    ("update_version", {"version_id": "v", "ttl_seconds": True}, "ttl_seconds"),
    ("update_version", {"version_id": "v", "metadata": None}, "metadata"),
    ("update_version", {"version_id": "v", "metadata": {"a": [[[]]]}}, None),
    ("delete_version", {"version_id": "v", "delete_aliases": "yes"}, "delete_aliases"),
    ("record_use", {"run_id": "r", "version_id": None}, "version_id"),
    ("ensure_run", {"project": "p", "run_id": "r", "tags": "baseline"}, "tags"),
    ("ensure_run", {"project": "p", "run_id": "r", "tags": ["ok", ""]}, "tags[1]"),
    ("ensure_run", {"project": "p", "run_id": "r", "tags": ["x" * 65]}, "tags[0]"),
    ("ensure_run", {"project": "p", "run_id": "r", "notes": 3}, "notes"),
    ("ensure_run", {"project": "p", "run_id": "r", "notes": "n" * 70_000}, "notes"),
    ("ensure_run", {"project": "p", "run_id": "r", "sweep": "a/b"}, "sweep"),
    ("append_history", {"project": "p", "run_id": "r"}, "rows"),
    ("append_history", {"project": "p", "run_id": "r", "rows": {"_step": 0}}, "rows"),
    ("append_history", {"project": "p", "run_id": "r", "rows": [{"_step": 0}, 1]}, "rows[1]"),
    ("append_history", {"project": "p", "run_id": "r", "rows": [{}] * 1001}, "rows"),
    ("append_history", {"project": "p", "run_id": "r:x", "rows": []}, "run_id"),
    ("create_sweep", {"project": "p", "sweep_id": "a/b", "config": {}}, "sweep_id"),
    ("create_sweep", {"project": "p", "sweep_id": "s", "config": ["grid"]}, "config"),
    ("create_sweep", {"project": "p", "config": {}}, "sweep_id"),
    ("append_history", {"project": "p", "run_id": "ghost", "rows": [{"_step": 0}]}, None),
]


@pytest.mark.parametrize(("method", "body", "field"), BAD_ARGUMENTS)
def test_registry_routes_refuse_bad_input_with_400_naming_the_field(
    daemon: DaemonProcess, method: str, body: dict[str, Any], field: str | None
) -> None:
    status, answer = daemon.request("POST", f"/v1/registry/{method}", body)
    if field is None:  # well-formed, but names a version or run that does not exist
        assert status == 404, answer
        return
    assert (status, answer.get("field")) == (400, field), answer
    assert answer["error"].startswith(f"{field}: ")


def test_registry_routes_refuse_bodies_that_are_not_arguments(daemon: DaemonProcess) -> None:
    deep = b'{"project": "p", "run_id": "r", "config": {"a": ' + b"[" * 5000 + b"]" * 5000 + b"}}"
    for payload in (b"not json", b"[1, 2]", b'{"project": NaN}', b"[" * 200_000, deep):
        status, answer = _raw(daemon, "ensure_run", payload)
        assert status == 400 and answer["field"] in ("body", "config"), (payload[:40], answer)
    assert daemon.request("GET", "/v1/status")[0] == 200


def test_registry_routes_offer_only_what_a_client_may_write(daemon: DaemonProcess) -> None:
    for method in ("commit_version", "add_part", "expired_versions", "live_manifest_keys"):
        status, answer = daemon.request("POST", f"/v1/registry/{method}", {})
        assert status == 403 and "daemon's own" in answer["error"], (method, answer)
    status, answer = daemon.request("POST", "/v1/registry/drop_everything", {})
    assert status == 404 and "ensure_run" in answer["error"]


def test_daemon_refusals_reach_the_sdk_as_the_registry_exceptions(
    daemon: DaemonProcess,
) -> None:
    registry = DaemonRegistry(daemon.config.registry, daemon.config.socket)
    try:
        with pytest.raises(NotFoundError, match="run 'ghost' not found"):
            registry.set_run_state("p", "ghost", "finished")
        run = registry.ensure_run("p", None, "r", config={"a": 1})
        assert registry.get_run("p", "r") == run
        with pytest.raises(InvalidInputError, match="'sleeping'"):
            registry.set_run_state("p", "r", "sleeping")
        with pytest.raises(InvalidInputError, match="NaN"):
            registry.set_run_summary("p", "r", {"loss": float("nan")})
        with pytest.raises(NotFoundError):
            registry.update_version("0" * 32, ttl_seconds=10)
        with pytest.raises(RegistryError, match="daemon's own"):
            registry.commit_version(new_version("d"))
        # What the daemon's registry refuses beyond the arguments' shapes.
        with pytest.raises(NotFoundError, match="run 'ghost' not found"):
            registry.append_history("p", "ghost", [{"_step": 0}])
        registry.create_sweep("p", "s", {"method": "grid"})
        with pytest.raises(InvalidInputError, match="sweep 's' of project 'local/p' exists"):
            registry.create_sweep("p", "s", {"method": "random"})
        status, answer = daemon.request(
            "POST",
            "/v1/registry/append_history",
            {"project": "p", "run_id": "r", "rows": [{"_step": -1}]},
        )
        assert status == 400 and "history row 0 of run 'r'" in answer["error"], answer
    finally:
        registry.close()
    refused = [line for line in daemon.logs().splitlines() if "registry_write_refused" in line]
    assert len(refused) >= 2, daemon.logs()


def test_a_large_history_batch_reaches_the_daemon_in_several_requests(
    daemon: DaemonProcess,
) -> None:
    registry = DaemonRegistry(daemon.config.registry, daemon.config.socket)
    try:
        registry.ensure_run("p", None, "r", tags=["long"], sweep="sw")
        # 1,000 rows of about 2 KiB: twice the 1 MiB the daemon's socket takes at once.
        rows = [{"_step": i, "text": "x" * 2000} for i in range(1000)]
        registry.append_history("p", "r", rows)
        registry.append_history("p", "r", rows[:10])  # again: nothing is duplicated
        history = registry.run_history("p", "r")
        assert history == rows
        assert registry.get_run("p", "r").tags == ["long"]
    finally:
        registry.close()
    writes = [
        line
        for line in daemon.logs().splitlines()
        if "event=registry_write " in line and "method=append_history" in line
    ]
    assert len(writes) >= 4, daemon.logs()


def test_a_user_whose_registry_it_is_writes_it_directly_without_a_daemon(home: Path) -> None:
    registry_path = home / "registry.db"
    registry = DaemonRegistry(registry_path, home / "daemon.sock")
    try:
        assert registry.ours
        run = registry.ensure_run("p", None, "solo", tags=["alone"])
        assert registry.set_run_state("p", "solo", "finished").state == "finished"
        assert run.id == "solo" and run.tags == ["alone"]
        registry.append_history("p", "solo", [{"_step": 0, "x": 1}])
        assert registry.create_sweep("p", "sw", {"method": "grid"}).id == "sw"
    finally:
        registry.close()
    assert _mode(registry_path) == 0o640
    with SqliteRegistry(registry_path, read_only=True) as reader:
        assert reader.get_run("p", "solo").state == "finished"
        assert reader.run_history("p", "solo") == [{"_step": 0, "x": 1}]
        assert reader.get_sweep("p", "sw").config == {"method": "grid"}
