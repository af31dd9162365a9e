"""The same artifacts built with wandb and with artisync, for the oracle tests.

:func:`build` is written once, the way a W&B script is written, against ``lib``: the
``wandb`` module or ``artisync`` (``import artisync as wandb`` is the only difference).
:func:`make_inputs` writes the files both read.

Run as a script (``python wandb_oracle.py INPUTS SCRATCH OUT``), it builds the
artifacts with the real wandb package, offline, and writes to ``OUT`` (JSON) what wandb
made of each: its manifest (``to_manifest_json()``), its digest and every entry's
bytes, plus every network connection or subprocess the process tried, which an audit
hook records and blocks before wandb is imported: the oracle must never reach a server.
"""

from __future__ import annotations

import base64
import json
import math
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

# What ``build`` makes, in order: name -> what it exercises.
ARTIFACTS = {
    "files": "add_file, add_dir and new_file",
    "tables": "tables of scalars, lists, dicts, NaN, NumPy values, mixed types, partitioned",
    "images": "Image from a path, a PIL image and NumPy arrays, in tables and on its own",
}

# The environment that keeps wandb offline and quiet, with its directories in SCRATCH.
WANDB_ENV = {
    "WANDB_MODE": "offline",
    "WANDB_SILENT": "true",
    "WANDB_DISABLE_GIT": "true",
    "WANDB_ERROR_REPORTING": "false",
    "WANDB_DISABLE_CODE": "true",
}
WANDB_DIRS = (
    "WANDB_DIR",
    "WANDB_CACHE_DIR",
    "WANDB_DATA_DIR",
    "WANDB_CONFIG_DIR",
    "WANDB_ARTIFACT_DIR",
)


def wandb_env(scratch: Path) -> dict[str, str]:
    """``WANDB_ENV`` plus each of wandb's directories under ``scratch``."""
    return {**WANDB_ENV, **{name: str(scratch / name.lower()) for name in WANDB_DIRS}}


def make_inputs(root: Path) -> Path:
    """Write the files the artifacts are built from under ``root``; return ``root``."""
    import numpy as np
    from PIL import Image as PILImage

    (root / "data" / "nested").mkdir(parents=True)
    (root / "data" / "a.txt").write_text("alpha\n")
    (root / "data" / "nested" / "b.bin").write_bytes(bytes(range(256)) * 3)
    (root / "model.h5").write_bytes(b"\x89HDF\r\n" + b"weights" * 100)
    (root / "empty.txt").write_bytes(b"")
    rng = np.random.default_rng(7)
    (root / "images" / "sub").mkdir(parents=True)
    PILImage.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(
        root / "images" / "cat.png"
    )
    PILImage.fromarray(rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)).save(
        root / "images" / "sub" / "dog.jpg"
    )
    PILImage.fromarray(rng.integers(0, 256, (5, 6), dtype=np.uint8)).save(root / "gray.png")
    PILImage.fromarray(rng.integers(0, 256, (4, 4, 4), dtype=np.uint8)).save(root / "rgba.png")
    return root


def pixels() -> dict[str, Any]:
    """The NumPy arrays the images are made from (the same in every process)."""
    import numpy as np

    rng = np.random.default_rng(11)
    return {
        "gray": rng.integers(0, 256, (7, 5), dtype=np.uint8),
        "gray1": rng.integers(0, 256, (7, 5, 1), dtype=np.uint8),
        "rgb": rng.integers(0, 256, (8, 6, 3), dtype=np.uint8),
        "rgba": rng.integers(0, 256, (6, 4, 4), dtype=np.uint8),
        # Floats are cast to uint8 as they are (wandb 0.31 does not rescale them).
        "float": rng.random((5, 5, 3)) * 255.0,
        "unit_float": rng.random((4, 3)),
    }


def build(lib: ModuleType, inputs: Path) -> list[Any]:
    """The artifacts of :data:`ARTIFACTS`, made with ``lib`` from the files in ``inputs``."""
    import numpy as np
    from PIL import Image as PILImage

    files = lib.Artifact("files", type="dataset", metadata={"source": "oracle"})
    files.add_file(str(inputs / "model.h5"))
    files.add_file(str(inputs / "model.h5"), name="models/copy.h5")
    files.add_file(str(inputs / "empty.txt"), name="empty.txt")
    files.add_dir(str(inputs / "data"))
    files.add_dir(str(inputs / "data"), name="data")
    with files.new_file("notes/readme.txt") as f:
        f.write("written with new_file\n")
    with files.new_file("notes/blob.bin", mode="xb") as f:
        f.write(bytes(range(64)))

    tables = lib.Artifact("tables", type="dataset")
    tables.add(
        lib.Table(
            columns=["a", "b", "c", "d"], data=[[1, "x", True, None], [2.5, None, False, None]]
        ),
        "scalars",
    )
    tables.add(
        lib.Table(
            columns=["id", "tags", "nested", "meta"],
            data=[
                [0, ["a", "b"], [[1, 2], [3]], {"split": "train", "score": 0.5}],
                [1, [], [[4]], {"split": "val", "score": 1}],
                [None, ["c"], [[5, 6, 7]], {"split": "test", "score": 2.5}],
            ],
        ),
        "structured",
    )
    tables.add(
        lib.Table(
            columns=["x", "nan", "np"],
            data=[
                [np.int64(3), math.nan, np.float32(0.5)],
                [np.int32(4), 1.5, np.float64(2.25)],
                [None, math.inf, np.bool_(True).item()],
            ],
            allow_mixed_types=True,
        ),
        "numpy_and_nan",
    )
    mixed = lib.Table(columns=["k", "v"], data=[["a", 1], [2, "b"]], allow_mixed_types=True)
    tables.add(mixed, "mixed")
    tables.add(lib.Table(), "empty_default_columns")
    for rank in range(3):
        tables.add(lib.Table(columns=["rank", "sq"], data=[[rank, rank * rank]]), f"parts/p_{rank}")
    tables.add(lib.data_types.PartitionedTable("parts"), "all_parts")

    arrays = pixels()
    images = lib.Artifact("images", type="dataset")
    images.add_file(str(inputs / "gray.png"), name="raw/gray.png")
    images.add_dir(str(inputs / "images"), name="raw_images")
    shared = lib.Image(arrays["rgb"], caption="shared")
    table = lib.Table(
        columns=["id", "image", "label"],
        data=[
            [0, lib.Image(str(inputs / "images" / "cat.png"), caption="a cat"), "cat"],
            [1, lib.Image(str(inputs / "images" / "sub" / "dog.jpg")), "dog"],
            [2, lib.Image(str(inputs / "gray.png"), caption="already added"), "gray"],
            [3, lib.Image(str(inputs / "rgba.png")), "rgba file"],
            [4, lib.Image(arrays["gray"], caption="gray array"), "gray"],
            [5, lib.Image(arrays["gray1"]), "gray HxWx1"],
            [6, lib.Image(arrays["rgb"], caption=6), "rgb"],
            [7, lib.Image(arrays["rgba"]), "rgba"],
            [8, lib.Image(arrays["float"], caption="float"), "float"],
            [9, lib.Image(arrays["unit_float"]), "unit float"],
            [10, lib.Image(PILImage.fromarray(arrays["rgb"])), "pil rgb"],
            [11, lib.Image(PILImage.fromarray(arrays["gray"]), caption="pil L"), "pil gray"],
            [12, lib.Image(PILImage.fromarray(arrays["rgba"])), "pil rgba"],
            [13, lib.Image(arrays["rgb"], file_type="jpg", grouping=2), "jpg"],
            [14, lib.Image(arrays["rgba"], file_type="bmp"), "bmp"],
            [15, lib.Image(arrays["rgb"], mode="L"), "mode L"],
            [16, shared, "shared"],
            [17, shared, "shared again"],
            [18, lib.Image(shared, caption="ignored, as W&B ignores it"), "copy"],
            [19, None, "no image"],
        ],
    )
    images.add(table, "examples")
    images.add(
        lib.Table(columns=["gallery"], data=[[[shared, lib.Image(arrays["gray"])]], [[]]]),
        "galleries",
    )
    images.add(lib.Image(arrays["rgb"], caption="on its own"), "single")
    return [files, tables, images]


def _entry_bytes(entry: Any) -> bytes:
    with open(entry.local_path, "rb") as f:
        return f.read()


def _oracle(inputs: Path) -> dict[str, Any]:
    import wandb

    made = {}
    for artifact in build(wandb, inputs):
        manifest = artifact.manifest
        made[artifact.name] = {
            "manifest": manifest.to_manifest_json(),
            "digest": manifest.digest(),
            "files": {
                path: base64.b64encode(_entry_bytes(entry)).decode("ascii")
                for path, entry in manifest.entries.items()
            },
        }
    return made


def _guard(attempts: list[str]) -> None:
    """Record and refuse every connection off this machine's Unix sockets, every name
    lookup and every new process."""
    import socket

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "socket.connect" and args[0].family == socket.AF_UNIX:
            return
        if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname") or (
            event in ("subprocess.Popen", "os.posix_spawn", "os.exec", "os.fork")
        ):
            attempts.append(f"{event} {args[1:]!r:.200}" if event == "socket.connect" else event)
            raise PermissionError(f"the wandb oracle may not {event}")

    sys.addaudithook(hook)


def main() -> None:
    """``wandb_oracle.py (INPUTS | --import-only) SCRATCH OUT``."""
    what, scratch, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    os.environ.update(wandb_env(scratch))
    attempts: list[str] = []
    _guard(attempts)
    if what == "--import-only":
        import wandb  # noqa: F401

        made = {}
    else:
        made = _oracle(Path(what))
    out.write_text(json.dumps({"attempts": attempts, "artifacts": made}))


if __name__ == "__main__":
    main()
