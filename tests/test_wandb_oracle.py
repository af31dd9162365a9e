"""The wandb package as the oracle: the same script, run with ``wandb`` and with
``artisync`` (``import artisync as wandb``), makes byte-identical artifacts.

wandb runs offline in a process of its own (``wandb_oracle.py``), under an audit hook
that records and refuses every network connection and subprocess; artisync logs the
same artifacts through a real daemon. Compared: each manifest as stored (the bytes of
``to_manifest_json()`` with contents in path order), each artifact digest, and the bytes
of every entry (files, ``new_file`` output, table JSON, image JSON and image files).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import artisync
from artisync.store.base import manifest_key
from daemon_harness import DaemonProcess, clean_env, short_home
from wandb_oracle import ARTIFACTS, build, make_inputs, wandb_env

ORACLE = Path(__file__).with_name("wandb_oracle.py")
NAMES = list(ARTIFACTS)


def run_guarded(args: list[str], scratch: Path) -> dict[str, Any]:
    """Run ``wandb_oracle.py`` with ``args`` in a wandb-offline environment; its output."""
    out = scratch / "out.json"
    env = {**clean_env(), **wandb_env(scratch)}
    done = subprocess.run(
        [sys.executable, str(ORACLE), *args, str(scratch), str(out)],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    result: dict[str, Any] = json.loads(out.read_text())
    return result


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_inputs(tmp_path_factory.mktemp("oracle") / "inputs")


@pytest.fixture(scope="module")
def oracle(inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What wandb made: attempts to go off the machine, and each artifact."""
    return run_guarded([str(inputs)], tmp_path_factory.mktemp("wandb"))


@pytest.fixture(scope="module")
def logged(inputs: Path) -> Iterator[tuple[Path, dict[str, artisync.Artifact]]]:
    """The same artifacts, built by the same code with artisync and committed."""
    for home in short_home():
        daemon = DaemonProcess(home)
        daemon.start()
        try:
            with artisync.init(project="oracle", home=home) as run:
                made = build(artisync, inputs)
                for artifact in made:
                    run.log_artifact(artifact)
            for artifact in made:
                artifact.wait(timeout=60)
            yield home, {artifact.name: artifact for artifact in made}
        finally:
            daemon.kill()


def wandb_manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """wandb's manifest with its contents in path order (its digest's order, and how
    artisync stores every manifest), in artisync's stored form."""
    ordered = {**manifest, "contents": dict(sorted(manifest["contents"].items()))}
    return json.dumps(ordered, separators=(",", ":")).encode()


def test_wandb_offline_opens_no_connection_and_starts_no_process(
    oracle: dict[str, Any], tmp_path: Path
) -> None:
    assert run_guarded(["--import-only"], tmp_path)["attempts"] == []
    assert oracle["attempts"] == []
    assert sorted(oracle["artifacts"]) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_manifest_is_byte_identical_to_wandbs(
    name: str, oracle: dict[str, Any], logged: tuple[Path, dict[str, artisync.Artifact]]
) -> None:
    home, artifacts = logged
    expected = oracle["artifacts"][name]
    digest = artifacts[name].digest
    assert digest is not None
    stored = (home / "store" / manifest_key(digest)).read_bytes()
    assert json.loads(stored) == expected["manifest"]
    assert stored == wandb_manifest_bytes(expected["manifest"])


@pytest.mark.parametrize("name", NAMES)
def test_artifact_digest_is_wandbs(
    name: str, oracle: dict[str, Any], logged: tuple[Path, dict[str, artisync.Artifact]]
) -> None:
    assert logged[1][name].digest == oracle["artifacts"][name]["digest"]


@pytest.mark.parametrize("name", NAMES)
def test_every_entry_has_wandbs_bytes(
    name: str,
    oracle: dict[str, Any],
    logged: tuple[Path, dict[str, artisync.Artifact]],
    tmp_path: Path,
) -> None:
    root = Path(logged[1][name].download(tmp_path / name))
    ours = {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }
    theirs = {p: base64.b64decode(b) for p, b in oracle["artifacts"][name]["files"].items()}
    assert sorted(ours) == sorted(theirs)
    for path, data in theirs.items():
        assert ours[path] == data, f"{name}/{path} differs from what wandb wrote"


def test_image_cells_and_files_are_wandbs(
    oracle: dict[str, Any], logged: tuple[Path, dict[str, artisync.Artifact]], tmp_path: Path
) -> None:
    """The image table, cell by cell: the JSON of each image cell and the file it names."""
    theirs = {p: base64.b64decode(b) for p, b in oracle["artifacts"]["images"]["files"].items()}
    root = Path(logged[1]["images"].download(tmp_path))
    table = json.loads((root / "examples.table.json").read_bytes())
    assert (root / "examples.table.json").read_bytes() == theirs["examples.table.json"]
    expected = json.loads(theirs["examples.table.json"])
    assert table["column_types"] == expected["column_types"]
    cells = [row[1] for row in table["data"] if row[1] is not None]
    assert len(cells) == 19
    for ours_cell, their_cell in zip(cells, (r[1] for r in expected["data"] if r[1]), strict=True):
        assert ours_cell == their_cell
        assert (root / ours_cell["path"]).read_bytes() == theirs[ours_cell["path"]]
    # An image of a file the artifact already holds names that entry, as in W&B.
    assert cells[2]["path"] == "raw/gray.png"
    assert cells[0]["path"] == "raw_images/cat.png"
    single = root / "single.image-file.json"
    assert single.read_bytes() == theirs["single.image-file.json"]
