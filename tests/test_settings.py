"""Every setting goes through Config: a bad value stops the daemon at start with one
clear line, and no value of any variable can break an import."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import artisync
from artisync.config import Config
from artisync.errors import InvalidInputError
from daemon_harness import DaemonProcess

# Modules that once read a setting when imported.
_IMPORTS = (
    "import artisync.daemon.pipeline, artisync.store.s3, artisync.store.gcs, artisync.crashpoints"
)


@pytest.fixture
def daemon(home: Path) -> Iterator[DaemonProcess]:
    process = DaemonProcess(home)
    yield process
    process.kill()


@pytest.mark.parametrize(
    "variable",
    [
        "ARTISYNC_CHUNK_ENTRIES",
        "ARTISYNC_PART_SIZE",
        "ARTISYNC_MULTIPART_THRESHOLD",
        "ARTISYNC_CRASH_AT",
    ],
)
def test_a_bad_setting_never_breaks_an_import(variable: str) -> None:
    env = {**os.environ, variable: "lots"}
    done = subprocess.run([sys.executable, "-c", _IMPORTS], env=env, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("ARTISYNC_CHUNK_ENTRIES", "lots", "ARTISYNC_CHUNK_ENTRIES='lots' is not a whole number"),
        ("ARTISYNC_CHUNK_ENTRIES", "0", "ARTISYNC_CHUNK_ENTRIES='0': it must be at least 1"),
        ("ARTISYNC_MULTIPART_THRESHOLD", "0", "the threshold must be at least 1"),
        ("ARTISYNC_CRASH_AT", "nowhere", "ARTISYNC_CRASH_AT='nowhere': unknown crash point"),
    ],
)
def test_a_bad_setting_stops_the_daemon_at_start_naming_it(
    daemon: DaemonProcess, variable: str, value: str, message: str
) -> None:
    daemon.start({variable: value}, wait_ready=False)
    assert daemon.wait_exit() == 2
    assert message in daemon.logs()


def test_settings_come_from_config_toml_then_the_environment(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (home / "config.toml").write_text(
        "chunk_entries = 7\nmultipart_threshold = 100\npart_size = 8388608\n"
    )
    config = Config.load(home)
    assert (config.chunk_entries, config.multipart_threshold, config.part_size) == (
        7,
        100,
        8 << 20,
    )
    monkeypatch.setenv("ARTISYNC_CHUNK_ENTRIES", "9")
    assert Config.load(home).chunk_entries == 9


def test_a_bad_value_in_config_toml_names_the_file_and_the_key(home: Path) -> None:
    (home / "config.toml").write_text("part_size = 1000\n")
    with pytest.raises(InvalidInputError, match=r"config\.toml: part_size='1000'|part_size=1000"):
        Config.load(home)


def test_the_daemon_makes_versions_a_chunk_at_a_time_as_config_toml_says(
    home: Path, daemon: DaemonProcess, tmp_path: Path
) -> None:
    """A version of more files than chunk_entries still commits whole: the value from
    config.toml reaches the pipeline (a bad one would have stopped it above)."""
    (home / "config.toml").write_text("chunk_entries = 3\n")
    data = tmp_path / "data"
    data.mkdir()
    for i in range(10):
        (data / f"f{i}.txt").write_text(f"file {i}")
    daemon.start()

    with artisync.init(project="p", home=home) as run:
        artifact = artisync.Artifact("data", "dataset")
        artifact.add_dir(str(data))
        run.log_artifact(artifact)
    artifact.wait()
    assert artifact.version == "v0"
    assert len(artifact.manifest.entries) == 10


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://registry.example:8080/", "https://registry.example:8080"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("/srv/artisync/registry.db", Path("/srv/artisync/registry.db")),
        ("file:///srv/artisync/registry.db", Path("/srv/artisync/registry.db")),
    ],
)
def test_the_registry_is_a_file_or_a_server_url(
    home: Path, monkeypatch: pytest.MonkeyPatch, value: str, expected: Path | str
) -> None:
    monkeypatch.setenv("ARTISYNC_REGISTRY", value)
    config = Config.load(home)
    assert config.registry == expected
    assert config.registry_server == (expected if isinstance(expected, str) else None)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("postgresql://db/artisync", "nodes reach a shared registry through `artisync server`"),
        ("ftp://host/registry", "not a registry"),
    ],
)
def test_a_registry_that_is_neither_is_refused_saying_what_to_write(
    home: Path, value: str, message: str
) -> None:
    (home / "config.toml").write_text(f'registry = "{value}"\n')
    with pytest.raises(InvalidInputError, match=message) as refused:
        Config.load(home)
    assert str(home / "config.toml") in str(refused.value)
