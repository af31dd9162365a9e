"""The SDK's hand-over and wait: spool fallback, results, and the socket contract.

The "daemon" here is the test itself: it moves files through the spool with
:class:`Spool`, or serves the two socket endpoints from a small aiohttp app on a Unix
socket in a background thread. The real daemon's end-to-end tests live elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import artisync
from artisync.errors import ArtisyncError, InvalidInputError, RejectedError, SubmissionError
from artisync.manifest import Manifest, ManifestEntry
from artisync.sdk import current_run
from artisync.spool import FileEntry, ReferenceEntry, RunInfo, Spool, StagedEntry, Submission
from artisync.spool.spool import next_seq


def wait_for(condition: Callable[[], Any], deadline: float = 10.0) -> Any:
    """Poll ``condition`` until it is truthy; fail after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while not (value := condition()):
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {condition}")
        time.sleep(0.002)
    return value


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for var in ("ARTISYNC_SPOOL", "ARTISYNC_STORE", "ARTISYNC_SOCKET", "ARTISYNC_REGISTRY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ARTISYNC_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    Path("model.h5").write_bytes(b"weights")
    Path("data").mkdir()
    Path("data/a.csv").write_bytes(b"a,b\n")
    assert len(str(tmp_path / "daemon.sock")) < 100, "the socket path is too long for AF_UNIX"
    yield tmp_path
    artisync.finish()


@pytest.fixture
def run(home: Path) -> Iterator[artisync.Run]:
    with artisync.init(
        project="proj",
        entity="team",
        job_type="train",
        group="sweep-1",
        name="bright-run",
        config={"lr": 0.01, "layers": [64, 64]},
        home=home,
    ) as r:
        yield r


def spool_of(run: artisync.Run) -> Spool:
    return Spool(run.settings.spool)


def claim(spool: Spool, artifact: artisync.Artifact) -> Path:
    """Do what the daemon does first: take the submission from new/ into work/."""
    (path,) = wait_for(lambda: list(spool.folder("new").glob(f"*-{artifact.submission_id}.json")))
    work = spool.claim(path)
    assert work is not None
    return work


# Where the test puts a version's manifest: a key the store accepts.
MANIFEST_KEY = "manifests/ab/" + "ab" * 16 + ".json"


def write_manifest(home: Path, key: str, entries: dict[str, bytes]) -> Manifest:
    import base64
    import hashlib

    manifest = Manifest(
        {
            path: ManifestEntry(
                path, base64.b64encode(hashlib.md5(data).digest()).decode(), len(data)
            )
            for path, data in entries.items()
        }
    )
    target = home / "store" / key
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(manifest.to_json()))
    return manifest


def receipt(artifact: artisync.Artifact, manifest: Manifest, home: Path) -> dict[str, Any]:
    """A daemon's terminal answer for a committed submission, committed in the registry
    as the daemon would (the SDK reads the version from the registry)."""
    from artisync.registry import NewVersion, SqliteRegistry

    version = NewVersion(
        submission_id=artifact.submission_id,
        project="proj",
        entity=None,
        name=artifact.name,
        type=artifact.type,
        digest=manifest.digest(),
        manifest_key=MANIFEST_KEY,
        size=manifest.size(),
        file_count=len(manifest),
        description=None,
        metadata={},
        aliases=["best"],
        tags=[],
        run_id=None,
        ttl_seconds=None,
    )
    with SqliteRegistry(home / "registry.db") as registry:
        done = registry.commit_version(version)
    v = done.version
    return {
        "id": artifact.submission_id,
        "status": "committed",
        "version": v.version,
        "version_index": v.index,
        "version_id": v.id,
        "digest": v.digest,
        "created": done.created,
        "manifest_key": v.manifest_key,
        "aliases": v.aliases,
    }


# -- hand-over with no daemon ------------------------------------------------------------


def test_log_artifact_without_daemon_publishes_a_valid_submission_at_once(
    run: artisync.Run,
) -> None:
    artifact = artisync.Artifact("model", "model", description="resnet", metadata={"epoch": 3})
    artifact.add_file("model.h5")
    artifact.add_file("model.h5", name="raw/model.h5", policy="immutable")
    artifact.add_reference("s3://bucket/extra.bin")
    artifact.tags = ["baseline"]

    started = time.perf_counter()
    returned = run.log_artifact(artifact, aliases=["best"])
    elapsed = time.perf_counter() - started

    assert returned is artifact
    assert elapsed < 0.5
    spool = spool_of(run)
    (path,) = spool.pending()
    assert path.name.endswith(f"-{artifact.submission_id}.json")
    assert list(spool.folder("tmp").iterdir()) == []
    sub = Submission.loads(path.read_bytes())
    assert (sub.id, sub.project, sub.entity, sub.action) == (
        artifact.submission_id,
        "proj",
        "team",
        "log",
    )
    assert sub.run == RunInfo(
        run.id, "bright-run", "train", "sweep-1", {"lr": 0.01, "layers": [64, 64]}
    )
    info = sub.artifact
    assert (info.name, info.type, info.description, info.metadata) == (
        "model",
        "model",
        "resnet",
        {"epoch": 3},
    )
    assert (info.aliases, info.tags) == (["best"], ["baseline"])
    assert abs(sub.created_ns - time.time_ns()) < 60e9
    staged, immutable, reference = sub.entries
    assert isinstance(staged, StagedEntry) and staged.path == "model.h5"
    assert (spool.root / staged.staged).read_bytes() == b"weights"
    assert isinstance(immutable, FileEntry) and immutable.path == "raw/model.h5"
    assert reference == ReferenceEntry(path="", ref="s3://bucket/extra.bin")


def test_aliases_default_to_latest(run: artisync.Run) -> None:
    artifact = run.log_artifact("model.h5")
    (path,) = spool_of(run).pending()
    assert Submission.loads(path.read_bytes()).artifact.aliases == ["latest"]
    assert artifact.aliases == []  # the version's aliases are known after wait()


@pytest.mark.parametrize(
    ("target", "name", "kind"),
    [
        ("model.h5", "model.h5", "staged"),
        ("data", "data", "staged"),
        ("s3://b/x.bin", "x.bin", "reference"),
    ],
)
def test_log_artifact_of_a_path_builds_an_artifact(
    run: artisync.Run, target: str, name: str, kind: str
) -> None:
    artifact = run.log_artifact(target)
    assert (artifact.name, artifact.type) == (name, "unspecified")
    (path,) = spool_of(run).pending()
    assert [e.kind for e in Submission.loads(path.read_bytes()).entries] == [kind]


def test_log_artifact_of_a_path_takes_name_and_type(run: artisync.Run) -> None:
    artifact = run.log_artifact("data", name="train-set", type="dataset")
    assert (artifact.name, artifact.type) == ("train-set", "dataset")
    with pytest.raises(InvalidInputError, match=r"Cannot log 'nope.bin': no such file"):
        run.log_artifact("nope.bin")
    Path("my data.txt").write_text("x")
    with pytest.raises(InvalidInputError, match=r"'my data.txt'.*pass name="):
        run.log_artifact("my data.txt")


def test_stale_socket_falls_back_to_the_spool(run: artisync.Run) -> None:
    # A socket file nobody listens on, as a killed daemon leaves behind.
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(run.settings.socket))
    stale.close()
    artifact = run.log_artifact("model.h5")
    (path,) = spool_of(run).pending()
    assert path.name.endswith(f"-{artifact.submission_id}.json")


# -- the current run ---------------------------------------------------------------------


def test_module_level_log_artifact_acts_on_the_current_run(home: Path) -> None:
    artisync.finish()
    assert artisync.run is None
    with pytest.raises(ArtisyncError, match=r"call artisync.init\(\) first"):
        artisync.log_artifact("model.h5")
    with artisync.init(project="proj", home=home) as run:
        assert artisync.run is run and current_run() is run
        artifact = artisync.log_artifact("model.h5", aliases="best")
        (path,) = spool_of(run).pending()
        sub = Submission.loads(path.read_bytes())
        assert (sub.id, sub.run and sub.run.id, sub.artifact.aliases) == (
            artifact.submission_id,
            run.id,
            ["best"],
        )
    assert artisync.run is None and run.finished
    with pytest.raises(ArtisyncError, match=r"is finished"):
        run.log_artifact("model.h5")


def test_init_while_a_run_is_active_does_what_reinit_says(home: Path) -> None:
    # W&B's default outside notebooks: the active run comes back.
    first = artisync.init(project="proj", home=home)
    assert artisync.init(project="proj", home=home) is first and not first.finished
    second = artisync.init(project="proj", reinit="finish_previous", home=home)
    assert first.finished and not second.finished
    assert artisync.run is second
    beside = artisync.init(project="proj", reinit="create_new", home=home)
    assert artisync.run is second and not beside.finished
    beside.finish()
    with pytest.raises(InvalidInputError, match=r"Invalid reinit 'sometimes'"):
        artisync.init(project="proj", reinit="sometimes", home=home)


def test_run_ids_names_and_config(home: Path) -> None:
    run = artisync.init(project="proj", home=home)
    assert len(run.id) == 8 and run.id.isalnum() and run.id == run.id.lower()
    assert (run.name, run.project, run.config) == (run.id, "proj", {})
    run.finish()
    assert artisync.init(project="proj", id="abc-1", resume="allow", home=home).resume == "allow"
    artisync.finish()
    with pytest.raises(InvalidInputError, match=r"run id 'a/b'"):
        artisync.init(project="proj", id="a/b", home=home)
    with pytest.raises(InvalidInputError, match=r"project name 'a/b'"):
        artisync.init(project="a/b", home=home)
    with pytest.raises(InvalidInputError, match=r"config\['seed'\]"):
        artisync.init(project="proj", config={"seed": object()}, home=home)
    with pytest.raises(InvalidInputError, match=r"Invalid resume 'sometimes'"):
        artisync.init(project="proj", resume="sometimes", home=home)


# -- waiting on the spool ----------------------------------------------------------------


def test_wait_with_no_daemon_times_out_saying_so(run: artisync.Run) -> None:
    artifact = run.log_artifact("model.h5")
    started = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        artifact.wait(timeout=0.2)
    assert 0.2 <= time.monotonic() - started < 2.0
    message = str(info.value)
    assert "artifact 'model.h5'" in message and "within 0.2 s" in message
    assert "no artisync daemon answers" in message and "autostart is off" in message
    assert str(run.settings.socket) in message and "daemon`" in message


def test_wait_before_logging_raises(run: artisync.Run) -> None:
    with pytest.raises(ArtisyncError, match=r"call run.log_artifact\(artifact\) before"):
        artisync.Artifact("model", "model").wait()


def test_wait_picks_up_a_receipt_written_to_spool_done(run: artisync.Run, home: Path) -> None:
    artifact = artisync.Artifact("model", "model")
    artifact.add_file("model.h5")
    run.log_artifact(artifact)
    manifest = write_manifest(home, MANIFEST_KEY, {"model.h5": b"weights"})
    spool = spool_of(run)

    def fake_daemon() -> None:
        spool.complete(claim(spool, artifact), receipt(artifact, manifest, home))

    worker = threading.Thread(target=fake_daemon)
    worker.start()
    try:
        assert artifact.wait(timeout=10) is artifact
    finally:
        worker.join()
    assert (artifact.state, artifact.version) == ("COMMITTED", "v0")
    assert artifact.id is not None
    assert artifact.digest == manifest.digest()
    assert sorted(artifact.aliases) == ["best", "latest"]
    assert artifact.manifest.entries == manifest.entries
    assert artifact.get_entry("model.h5").size == 7


def test_rejected_result_raises_rejected_error_with_the_reason(run: artisync.Run) -> None:
    artifact = run.log_artifact("model.h5")
    spool = spool_of(run)
    reason = "model.h5 changed after it was logged with policy='immutable'"
    error = {"id": artifact.submission_id, "status": "rejected", "stage": "hash", "reason": reason}
    spool.reject(claim(spool, artifact), error)
    for _ in range(2):  # and again on a second wait()
        with pytest.raises(RejectedError, match=r"changed after it was logged") as info:
            artifact.wait(timeout=10)
        assert (info.value.reason, info.value.submission_id) == (reason, artifact.submission_id)
    assert artifact.state == "PENDING"


# -- the socket contract -----------------------------------------------------------------


class FakeDaemon:
    """The daemon's two submission endpoints, served on a Unix socket from a thread."""

    def __init__(self, socket_path: Path, spool: Spool) -> None:
        self.socket_path = socket_path
        self.spool = spool
        self.requests: list[tuple[str, str, Any]] = []
        self.results: dict[str, dict[str, Any]] = {}
        self.submit_answer: tuple[int, dict[str, Any]] | None = None
        self.long_polls = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever)

    def __enter__(self) -> FakeDaemon:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()

    async def _start(self) -> None:
        self.changed = asyncio.Condition()
        app = web.Application()
        app.router.add_post("/v1/submissions", self.submit)
        app.router.add_get("/v1/submissions/{id}", self.status)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self.runner.setup()
        await web.UnixSite(self.runner, str(self.socket_path)).start()

    async def submit(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(("POST", request.path_qs, body))
        if self.submit_answer is not None:
            status, answer = self.submit_answer
            return web.json_response(answer, status=status)
        sub_id = body["tmp"].removesuffix(".json")
        seq = next_seq()
        # As the daemon: take the file from tmp/ itself, numbered now.
        os.rename(
            self.spool.folder("tmp") / body["tmp"],
            self.spool.folder("work") / f"{seq}-{sub_id}.json",
        )
        return web.json_response({"id": sub_id, "seq": seq, "status": "queued"}, status=202)

    async def status(self, request: web.Request) -> web.Response:
        sub_id = request.match_info["id"]
        wait = float(request.query.get("wait", "0"))
        self.requests.append(("GET", request.path_qs, None))
        async with self.changed:
            self.long_polls += 1
            try:
                await asyncio.wait_for(self.changed.wait_for(lambda: sub_id in self.results), wait)
            except TimeoutError:
                pass
            finally:
                self.long_polls -= 1
        return web.json_response(self.results.get(sub_id, {"id": sub_id, "status": "working"}))

    def finish(self, sub_id: str, result: dict[str, Any]) -> None:
        async def publish() -> None:
            async with self.changed:
                self.results[sub_id] = result
                self.changed.notify_all()

        asyncio.run_coroutine_threadsafe(publish(), self.loop).result(10)


def test_client_speaks_the_socket_contract(run: artisync.Run, home: Path) -> None:
    spool = spool_of(run)
    manifest = write_manifest(home, MANIFEST_KEY, {"model.h5": b"weights"})
    with FakeDaemon(run.settings.socket, spool) as daemon:
        artifact = run.log_artifact("model.h5", type="model")
        tmp_name = f"{artifact.submission_id}.json"
        assert daemon.requests == [("POST", "/v1/submissions", {"tmp": tmp_name})]
        # The daemon took the file; the client did not publish it into new/ as well.
        assert spool.pending() == []
        (work,) = spool.in_work()
        assert Submission.loads(work.read_bytes()).id == artifact.submission_id

        # Commit it while the client is inside a long poll.
        def commit_during_long_poll() -> None:
            wait_for(lambda: daemon.long_polls > 0)
            daemon.finish(artifact.submission_id, receipt(artifact, manifest, home))

        worker = threading.Thread(target=commit_during_long_poll)
        worker.start()
        try:
            artifact.wait(timeout=30)
        finally:
            worker.join()
    method, path_qs, _ = daemon.requests[1]
    assert method == "GET" and path_qs.startswith(f"/v1/submissions/{artifact.submission_id}?wait=")
    assert float(path_qs.partition("wait=")[2]) > 1
    assert (artifact.state, artifact.version, artifact.digest) == (
        "COMMITTED",
        "v0",
        manifest.digest(),
    )
    assert list(artifact.manifest.entries) == ["model.h5"]


def test_a_daemon_that_refuses_the_submission_fails_log_artifact(
    run: artisync.Run,
) -> None:
    spool = spool_of(run)
    with FakeDaemon(run.settings.socket, spool) as daemon:
        daemon.submit_answer = (400, {"error": "unknown submission format_version 9"})
        artifact = artisync.Artifact("model", "model")
        artifact.add_file("model.h5")
        with pytest.raises(SubmissionError, match=r"refused submission .*format_version 9"):
            run.log_artifact(artifact)
        assert artifact.is_draft()
        assert list(spool.folder("tmp").iterdir()) == [] and spool.pending() == []

        daemon.submit_answer = (500, {"error": "internal"})
        run.log_artifact(artifact)  # a broken daemon: queued in the spool instead
        (path,) = spool.pending()
        assert path.name.endswith(f"-{artifact.submission_id}.json")


def test_wait_timeout_with_a_running_daemon_reports_its_status(run: artisync.Run) -> None:
    with FakeDaemon(run.settings.socket, spool_of(run)):
        artifact = run.log_artifact("model.h5")
        with pytest.raises(TimeoutError, match=r"daemon is running and reports it as 'working'"):
            artifact.wait(timeout=0.3)
