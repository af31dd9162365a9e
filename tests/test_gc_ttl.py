"""TTL expiry and garbage collection: what is removed, what must never be."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

import artisync
from artisync.config import Config
from artisync.errors import NotFoundError
from artisync.manifest import md5_b64_to_hex
from artisync.sdk.garbage import collect_garbage
from daemon_harness import DaemonProcess, wait_for


def _blob(home: Path, digest_b64: str) -> Path:
    hex_ = md5_b64_to_hex(digest_b64)
    return home / "store" / "blobs" / "md5" / hex_[:2] / hex_


def _log(run: artisync.Run, name: str, content: bytes, **kw: object) -> artisync.Artifact:
    artifact = artisync.Artifact(name, "dataset")
    with artifact.new_file("f.bin", mode="wb") as f:
        f.write(content)
    if "ttl" in kw:
        artifact.ttl = kw.pop("ttl")  # type: ignore[assignment]
    run.log_artifact(artifact, **kw)  # type: ignore[arg-type]
    return artifact.wait(timeout=60)


@pytest.fixture
def fast_home(home: Path) -> Path:
    (home / "config.toml").write_text("expire_interval = 1\n")
    return home


@pytest.fixture
def daemon(fast_home: Path) -> Iterator[DaemonProcess]:
    d = DaemonProcess(fast_home)
    d.start()
    yield d
    d.kill()


def test_daemon_deletes_expired_versions(daemon: DaemonProcess) -> None:
    with artisync.init(project="p", home=daemon.home) as run:
        short = _log(run, "d", b"short-lived", ttl=timedelta(seconds=1), aliases=["tmp"])
        keep = _log(run, "d", b"kept")
    api = artisync.Api(home=daemon.home)

    def gone() -> bool:
        try:
            api.artifact("p/d:v0")
        except NotFoundError:
            return True
        return False

    wait_for(gone, 30, "the expired version to be deleted")
    assert api.artifact("p/d:latest").version == keep.version == "v1"
    with pytest.raises(NotFoundError):
        api.artifact("p/d:tmp")
    assert short.version == "v0"


def test_gc_removes_only_unreferenced_blobs_past_the_grace(daemon: DaemonProcess) -> None:
    with artisync.init(project="p", home=daemon.home) as run:
        doomed = _log(run, "d", b"doomed content")
        shared = _log(run, "e", b"shared content")
        _log(run, "f", b"shared content")  # another collection, same blob
    doomed_blob = _blob(daemon.home, doomed.manifest.entries["f.bin"].digest)
    shared_blob = _blob(daemon.home, shared.manifest.entries["f.bin"].digest)
    doomed.delete()
    shared.delete()
    config = Config.load(daemon.home)
    # Inside the grace period nothing goes.
    young = collect_garbage(config, grace_seconds=3600)
    assert young.blobs_removed == 0 and young.blobs_kept_young == 1
    dry = collect_garbage(config, dry_run=True, grace_seconds=0)
    assert dry.blobs_removed == 1 and dry.bytes_freed == len(b"doomed content")
    assert doomed_blob.exists()
    report = collect_garbage(config, grace_seconds=0)
    assert report.blobs_removed == 1 and not report.dry_run
    assert not doomed_blob.exists() and shared_blob.exists()
    assert artisync.Api(home=daemon.home).artifact("p/f:v0").download(root=daemon.home / "out")


def test_gc_spares_blobs_of_submissions_still_in_the_spool(home: Path, tmp_path: Path) -> None:
    """With no daemon, a logged snapshot waits in the spool; its blob may be in the
    store already from a deleted version. Collecting must not take it."""
    d = DaemonProcess(home)
    d.start()
    try:
        with artisync.init(project="p", home=home) as run:
            old = _log(run, "d", b"content again")
        old.delete()
        d.stop()
        with artisync.init(project="p", home=home) as run:
            waiting = artisync.Artifact("d", "dataset")
            with waiting.new_file("f.bin", mode="wb") as f:
                f.write(b"content again")
            run.log_artifact(waiting)  # into the spool: no daemon
        report = collect_garbage(Config.load(home), grace_seconds=0)
        assert report.blobs_removed == 0
        d.start()
        waiting.wait(timeout=60)
        out = Path(waiting.download(root=tmp_path / "out"))
        assert (out / "f.bin").read_bytes() == b"content again"
    finally:
        d.kill()


def test_cli_gc_talks_to_the_daemon(daemon: DaemonProcess) -> None:
    with artisync.init(project="p", home=daemon.home) as run:
        _log(run, "d", b"x").delete()
    cli = [sys.executable, "-m", "artisync.cli", "--home", str(daemon.home), "gc"]
    out = subprocess.run(
        [*cli, "--dry-run", "--grace", "0", "--json"], capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout)["blobs_removed"] == 1
    out = subprocess.run([*cli, "--grace", "0"], capture_output=True, text=True, check=True)
    assert "removed 1 blob(s)" in out.stdout
