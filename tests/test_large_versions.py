"""Versions of many chunks: the daemon hashes, stores and journals a big version a
chunk at a time (bounded memory, issue 6) and must give the very manifest it would give
in one piece. ``ARTISYNC_CHUNK_ENTRIES`` makes chunks of a few files here; the
million-entry figure itself is ``benchmarks/bench_memory.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import artisync
from artisync.errors import RejectedError
from artisync.manifest import Manifest, ManifestEntry
from daemon_harness import DaemonProcess, check_store_consistent, wait_for
from file_digests import b64_md5

CHUNK = 16
FILES = 100  # seven chunks, the last one short


def _tree(root: Path, files: int = FILES) -> Path:
    for i in range(files):
        path = root / f"d{i % 7}" / f"f{i:03d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"content {i}\n" * (i % 5 + 1))
    return root


def _expected(root: Path, prefix: str, extra: dict[str, bytes]) -> Manifest:
    entries = {
        f"{prefix}/{p.relative_to(root).as_posix()}": p.read_bytes()
        for p in root.rglob("*")
        if p.is_file()
    }
    entries.update(extra)
    return Manifest({k: ManifestEntry(k, b64_md5(v), len(v)) for k, v in entries.items()})


@pytest.fixture
def daemon(home: Path) -> Iterator[DaemonProcess]:
    d = DaemonProcess(home)
    d.start(env={"ARTISYNC_CHUNK_ENTRIES": str(CHUNK)})
    yield d
    d.kill()


def _stored_manifest(daemon: DaemonProcess, version: str) -> tuple[bytes, str, int]:
    with daemon.registry() as registry:
        v = registry.get_version("proj", "big", version)
    data = (daemon.home / "store" / v.manifest_key).read_bytes()
    return data, v.digest, v.file_count


@pytest.mark.parametrize("policy", ["immutable", "mutable"])
def test_a_version_of_many_chunks_has_the_manifest_of_one_piece(
    daemon: DaemonProcess, tmp_path: Path, policy: str
) -> None:
    root = _tree(tmp_path / "tree")
    (tmp_path / "a.bin").write_bytes(b"loose file")
    with artisync.init(project="proj", home=daemon.home) as run:
        artifact = artisync.Artifact("big", "dataset")
        artifact.add_dir(root, name="data", policy=policy)
        artifact.add_file(tmp_path / "a.bin", name="zz/a.bin")  # a piece of its own
        with artifact.new_file("aa/notes.txt") as f:
            f.write("written")
        run.log_artifact(artifact)
        artifact.wait(timeout=60)
    expected = _expected(root, "data", {"zz/a.bin": b"loose file", "aa/notes.txt": b"written"})
    data, digest, count = _stored_manifest(daemon, artifact.version)
    assert data == json.dumps(expected.to_json(), separators=(",", ":")).encode()
    assert (digest, count) == (expected.digest(), FILES + 2)
    assert artifact.digest == expected.digest()
    with daemon.registry() as registry:
        check_store_consistent(daemon.home, registry.list_versions("proj", "big"))


def test_a_kill_between_chunks_resumes_from_the_chunk_journals(home: Path, tmp_path: Path) -> None:
    root = _tree(tmp_path / "tree")
    daemon = DaemonProcess(home)
    # Killed after hashing the fourth chunk: three chunks are journaled and stored.
    daemon.start(env={"ARTISYNC_CHUNK_ENTRIES": str(CHUNK), "ARTISYNC_CRASH_AT": "after_hash:4"})
    try:
        with artisync.init(project="proj", home=home) as run:
            artifact = artisync.Artifact("big", "dataset")
            artifact.add_dir(root, name="data", policy="immutable")
            run.log_artifact(artifact)
        assert daemon.wait_exit() != 0  # SIGKILL
        work = home / "spool" / "work"
        assert len(list(work.glob("*.journal.json"))) >= 3
        daemon.start(env={"ARTISYNC_CHUNK_ENTRIES": str(CHUNK)})
        artifact.wait(timeout=60)
        assert artifact.version == "v0"
        data, digest, count = _stored_manifest(daemon, "v0")
        expected = _expected(root, "data", {})
        assert (digest, count) == (expected.digest(), FILES)
        assert data == json.dumps(expected.to_json(), separators=(",", ":")).encode()
        # The submission and every chunk journal go once the client has its answer.
        wait_for(lambda: not list(work.iterdir()), what="work/ to empty")
        with daemon.registry() as registry:
            versions = registry.list_versions("proj", "big")
        assert [v.version for v in versions] == ["v0"]
        check_store_consistent(home, versions)
    finally:
        daemon.kill()


def test_one_path_in_two_chunks_is_rejected_naming_it(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    root = _tree(tmp_path / "tree")
    clash = root / "d3" / "f003.txt"
    clash.unlink()
    (tmp_path / "other.txt").write_text("other")
    with artisync.init(project="proj", home=daemon.home) as run:
        artifact = artisync.Artifact("big", "dataset")
        artifact.add_dir(root, name="data", policy="immutable")
        artifact.add_file(tmp_path / "other.txt", name="data/d3/f003.txt", policy="immutable")
        # Back before logging: the daemon's listing of the directory has it too.
        clash.write_text("back")
        run.log_artifact(artifact)
        with pytest.raises(RejectedError, match=r"two entries of the artifact are named"):
            artifact.wait(timeout=60)
    assert "'data/d3/f003.txt'" in str(artifact_error(daemon))


def artifact_error(daemon: DaemonProcess) -> str:
    [error] = (daemon.home / "spool" / "failed").glob("*.error.json")
    return str(json.loads(error.read_text())["reason"])
