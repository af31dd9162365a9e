"""``artisync ls``, ``get`` and ``lineage`` against a real daemon's registry and store."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import artisync
from daemon_harness import DaemonProcess


@pytest.fixture(scope="module")
def daemon() -> Iterator[DaemonProcess]:
    from contextlib import contextmanager

    from daemon_harness import short_home

    with contextmanager(short_home)() as home:
        d = DaemonProcess(home)
        d.start()
        with artisync.init(project="proj", job_type="prep", id="prep1", home=home) as run:
            raw = artisync.Artifact("raw", "dataset")
            with raw.new_file("data/x.csv", mode="wb") as f:
                f.write(b"1,2\n")
            run.log_artifact(raw, aliases=["golden"]).wait(timeout=60)
        with artisync.init(project="proj", job_type="train", id="train1", home=home) as run:
            run.use_artifact("raw:golden")
            model = artisync.Artifact("model", "model")
            with model.new_file("w.bin", mode="wb") as f:
                f.write(b"weights")
            run.log_artifact(model).wait(timeout=60)
        yield d
        d.kill()


def cli(daemon: DaemonProcess, *args: str) -> str:
    command = [sys.executable, "-m", "artisync.cli", "--home", str(daemon.home), *args]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_ls_lists_projects_collections_and_versions(daemon: DaemonProcess) -> None:
    assert cli(daemon, "ls").split() == ["local/proj"]
    assert "raw" in cli(daemon, "ls", "proj") and "model" in cli(daemon, "ls", "proj")
    [entry] = json.loads(cli(daemon, "ls", "proj/raw", "--json"))
    assert entry["version"] == "v0" and sorted(entry["aliases"]) == ["golden", "latest"]
    assert {c["name"] for c in json.loads(cli(daemon, "ls", "proj", "--json"))} == {"raw", "model"}


def test_get_downloads_and_verifies(daemon: DaemonProcess, tmp_path: Path) -> None:
    out = cli(daemon, "get", "proj/raw:golden", "-o", str(tmp_path / "got"))
    assert out.startswith("proj/raw:v0 -> ")
    assert (tmp_path / "got" / "data" / "x.csv").read_bytes() == b"1,2\n"


def test_lineage_in_text_dot_and_json(daemon: DaemonProcess) -> None:
    text = cli(daemon, "lineage", "proj/raw:v0")
    assert "run prep1" in text and "run train1" in text and "model:v0" in text
    dot = cli(daemon, "lineage", "proj/raw:v0", "--format", "dot")
    assert dot.startswith("digraph") and "train1" in dot
    graph = json.loads(cli(daemon, "lineage", "proj/model:latest", "--json"))
    assert graph["nodes"] and graph["edges"]


def test_a_missing_artifact_is_a_clear_error(daemon: DaemonProcess) -> None:
    command = [sys.executable, "-m", "artisync.cli", "--home", str(daemon.home)]
    done = subprocess.run([*command, "get", "proj/nope:v0"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "artifact 'nope' not found in project 'local/proj'; it has: model" in done.stderr
