"""``artisync.Image``: made as ``wandb.Image`` is, stored in tables as W&B stores it, and
read back by ``artifact.get``.

Byte-for-byte equality with what wandb writes is tests/test_wandb_oracle.py's job; here
are the behaviours around it: modes, bad input, Pillow missing, what a draft holds,
and images read back from a committed version by a real daemon.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image as PILImage

import artisync
from artisync.data_types import Image, Table, to_json_bytes
from artisync.errors import InvalidInputError
from artisync.sdk import PendingEntry
from daemon_harness import DaemonProcess, clean_env, short_home

PYTHON_DIR = Path(artisync.__file__).parent.parent
RNG = np.random.default_rng(3)
RGB = RNG.integers(0, 256, (6, 4, 3), dtype=np.uint8)
RGBA = RNG.integers(0, 256, (5, 3, 4), dtype=np.uint8)
GRAY = RNG.integers(0, 256, (4, 7), dtype=np.uint8)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A home for drafts (no daemon), and a working directory of the test's own."""
    for var in ("ARTISYNC_SPOOL", "ARTISYNC_STORE", "ARTISYNC_SOCKET", "ARTISYNC_REGISTRY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ARTISYNC_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    yield tmp_path / "home"
    artisync.finish()


@pytest.fixture(scope="module")
def daemon() -> Iterator[DaemonProcess]:
    for home in short_home():
        process = DaemonProcess(home)
        process.start()
        yield process
        process.kill()


@pytest.fixture
def at_daemon(
    daemon: DaemonProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DaemonProcess]:
    """The daemon's home as the one artifacts snapshot into, and a working directory
    of the test's own (downloads go to ./artifacts)."""
    for var in ("ARTISYNC_SPOOL", "ARTISYNC_STORE", "ARTISYNC_SOCKET", "ARTISYNC_REGISTRY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ARTISYNC_HOME", str(daemon.home))
    monkeypatch.chdir(tmp_path)
    yield daemon
    artisync.finish()


def committed(daemon: DaemonProcess, artifact: artisync.Artifact) -> artisync.Artifact:
    """``artifact`` logged through the daemon, then read as a reader would."""
    with artisync.init(project="media", home=daemon.home) as run:
        run.log_artifact(artifact)
    artifact.wait(timeout=60)
    api = artisync.Api(home=daemon.home)
    return api.artifact(f"media/{artifact.name}:{artifact.version}")


# -- Image: made as wandb.Image is --------------------------------------------------------


@pytest.mark.parametrize(
    ("pixels", "mode", "size"),
    [
        (GRAY, "L", (7, 4)),
        (GRAY[:, :, None], "L", (7, 4)),
        (RGB, "RGB", (4, 6)),
        (RGBA, "RGBA", (3, 5)),
    ],
)
def test_array_mode_follows_its_shape(pixels: Any, mode: str, size: tuple[int, int]) -> None:
    image = Image(pixels)
    assert (image.image.mode, image.image.size) == (mode, size)
    assert (image.width, image.height, image.format) == (*size, "png")
    assert np.array_equal(np.asarray(image.image), pixels.squeeze())


def test_float_pixels_are_cast_to_uint8_unscaled_as_wandb_031_does() -> None:
    image = Image(np.array([[0.4, 1.0], [200.9, 255.0]]))
    assert np.asarray(image.image).tolist() == [[0, 1], [200, 255]]


def test_mode_and_file_type_choose_what_is_written() -> None:
    assert Image(RGB, mode="L").image.mode == "L"
    assert Image(RGB, file_type="bmp").format == "bmp"
    with pytest.warns(UserWarning, match="alpha channel is dropped"):
        jpeg = Image(RGBA, file_type="jpg")
    assert (jpeg.format, jpeg.image.mode) == ("jpg", "RGB")


def test_pil_image_and_path_keep_their_pixels(tmp_path: Path) -> None:
    pil = PILImage.fromarray(RGB)
    assert np.array_equal(np.asarray(Image(pil).image), RGB)
    path = tmp_path / "photo.PNG"
    pil.save(path, format="PNG")
    from_path = Image(path, caption="a photo", file_type="jpg", mode="L")
    assert (from_path.format, from_path.width, from_path.height) == ("PNG", 4, 6)
    assert from_path.path == str(path) and from_path.caption == "a photo"
    assert from_path.image.mode == "RGB"  # file_type and mode apply to pixels only


def test_a_copy_keeps_the_originals_caption_as_wandbs_does() -> None:
    original = Image(RGB, caption="first")
    copy = Image(original, caption="second", grouping=3)
    assert copy.caption == "first" and copy == Image(original, grouping=3)
    assert copy.path == original.path


def test_images_are_equal_by_file_caption_and_size() -> None:
    assert Image(RGB, caption="x") == Image(RGB.copy(), caption="x")
    assert Image(RGB, caption="x") != Image(RGB, caption="y")
    assert Image(RGB) != Image(RGBA)


@pytest.mark.parametrize(
    ("data", "kwargs", "message"),
    [
        (RGB, {"file_type": "gif"}, "['png', 'jpg', 'jpeg', 'bmp']"),
        (RNG.integers(0, 256, (4, 4, 2), dtype=np.uint8), {}, "has 2 channels"),
        (RNG.integers(0, 256, (4, 4, 5), dtype=np.uint8), {}, "has 5 channels"),
        (np.zeros(6, dtype=np.uint8), {}, "is not an image"),
        (np.zeros((2, 2, 2, 3), dtype=np.uint8), {}, "is not an image"),
        (b"\x89PNG", {}, "not bytes"),
        ({"pixels": 1}, {}, "not a builtins.dict"),
        ("s3://bucket/cat.png", {}, "does not take a URL"),
        ("https://example.com/cat.png", {}, "does not take a URL"),
        (RGB, {"boxes": {"predictions": {}}}, "does not support boxes"),
        (RGB, {"masks": {"m": {}}, "classes": [{"id": 1}]}, "does not support classes, masks"),
        (RGB, {"caption": {"a": 1}}, "caption is a string"),
        (RGB, {"grouping": True}, "grouping must be an int"),
        (RGBA, {"file_type": "jpg", "mode": "RGBA"}, "cannot write a PIL image of mode 'RGBA'"),
    ],
)
def test_bad_input_says_what_to_pass(data: Any, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        Image(data, **kwargs)


def test_a_path_that_is_no_image_or_no_file_says_so(tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(InvalidInputError, match="is not an image file Pillow can read"):
        Image(tmp_path / "notes.png")
    with pytest.raises(FileNotFoundError):
        Image(tmp_path / "missing.png")


def _poisoned(tmp_path: Path, *modules: str) -> dict[str, str]:
    """An environment in which importing ``modules`` fails, as if not installed."""
    for module in modules:
        (tmp_path / "poison" / module).mkdir(parents=True)
        (tmp_path / "poison" / module / "__init__.py").write_text(
            f"raise ImportError('no {module} here')\n"
        )
    env = clean_env()
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "poison"), str(PYTHON_DIR)])
    return env


def test_without_pillow_images_name_the_extra_to_install(tmp_path: Path) -> None:
    PILImage.fromarray(RGB).save(tmp_path / "cat.png")
    script = (
        "import sys, artisync\n"
        "from artisync.errors import MissingDependencyError\n"
        "class Pixels:\n"  # an array-like that needs no NumPy
        "    ndim, shape = 2, (2, 2)\n"
        "    def squeeze(self): return self\n"
        "    def astype(self, t): return self\n"
        "for data in (Pixels(), sys.argv[1]):\n"
        "    try:\n"
        "        artisync.Image(data)\n"
        "    except MissingDependencyError as e:\n"
        "        assert isinstance(e, ImportError)\n"
        "        print(e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "cat.png")],
        env=_poisoned(tmp_path, "PIL", "numpy"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    assert all("pip install 'artisync[media]'" in line for line in lines)
    assert "Pillow" in lines[0] and "cat.png" in lines[1]


# -- Tables holding images ----------------------------------------------------------------


def test_an_image_column_holds_images_and_none_only() -> None:
    table = Table(columns=["image"], data=[[Image(RGB)], [None]])
    assert isinstance(table.data[0][0], Image)
    with pytest.raises(InvalidInputError, match="a number where the others hold images"):
        table.add_data(3)
    Table(columns=["any"], data=[[Image(RGB)], [3]], allow_mixed_types=True)


def test_a_table_with_images_is_written_into_an_artifact_only() -> None:
    with pytest.raises(InvalidInputError, match=r"artifact.add\(table, name\)"):
        to_json_bytes(Table(columns=["image"], data=[[Image(RGB)]]))
    with pytest.raises(InvalidInputError, match=r"artifact.add\(image, name\)"):
        to_json_bytes(Image(RGB))


def test_adding_a_table_stores_each_image_file_once_where_wandb_does(home: Path) -> None:
    shared = Image(RGB, caption="shared")
    artifact = artisync.Artifact("imgs", type="dataset")
    artifact.add(Table(columns=["a"], data=[[shared], [shared], [Image(RGB.copy())]]), "t1")
    artifact.add(Table(columns=["b"], data=[[shared]]), "t2")
    media = [p for p in artifact.manifest.entries if p.startswith("media/")]
    assert media == [shared_json(artifact, "t1.table.json")["path"]]
    assert media[0].startswith("media/images/") and media[0].endswith(".png")
    entry = artifact.get_entry(media[0])
    assert entry.size == shared.size


def shared_json(artifact: artisync.Artifact, path: str) -> dict[str, Any]:
    """The first cell of a draft's table entry, as written."""
    entry = artifact.get_entry(path)
    assert isinstance(entry, PendingEntry) and entry.local_path is not None
    cell: dict[str, Any] = json.loads(Path(entry.local_path).read_bytes())["data"][0][0]
    return cell


def test_an_image_of_a_file_already_added_names_that_entry(home: Path, tmp_path: Path) -> None:
    (tmp_path / "pics").mkdir()
    PILImage.fromarray(RGB).save(tmp_path / "pics" / "cat.png")
    artifact = artisync.Artifact("imgs", type="dataset")
    artifact.add_dir(str(tmp_path / "pics"), name="raw")
    artifact.add(Table(columns=["a"], data=[[Image(str(tmp_path / "pics" / "cat.png"))]]), "t")
    assert shared_json(artifact, "t.table.json")["path"] == "raw/cat.png"
    assert sorted(artifact.manifest.entries) == ["raw/cat.png", "t.table.json"]


def test_a_failed_add_leaves_the_draft_as_it_was(home: Path, tmp_path: Path) -> None:
    image = Image(RGB)
    artifact = artisync.Artifact("imgs", type="dataset")
    artifact.add(Table(columns=["a"], data=[[image]]), "first")
    (taken,) = (p for p in artifact.manifest.entries if p.startswith("media/"))
    before = sorted(artifact.manifest.entries)
    other = artisync.Artifact("other", type="dataset")
    (tmp_path / "other.png").write_bytes(b"other bytes")
    other.add_file(str(tmp_path / "other.png"), name=taken)
    with pytest.raises(InvalidInputError, match=r"already has an entry .* with other content"):
        other.add(Table(columns=["a"], data=[[Image(RGBA)], [image]]), "t")
    assert sorted(other.manifest.entries) == [taken]
    with pytest.raises(InvalidInputError, match=r"already has an entry 'first\.table\.json'"):
        artifact.add(Table(columns=["a"], data=[[Image(GRAY)]]), "first")
    assert sorted(artifact.manifest.entries) == before


def test_an_image_file_changed_after_the_image_was_made_is_refused(
    home: Path, tmp_path: Path
) -> None:
    path = tmp_path / "cat.png"
    PILImage.fromarray(RGB).save(path)
    image = Image(str(path))
    PILImage.fromarray(RGBA).save(path)
    artifact = artisync.Artifact("imgs", type="dataset")
    with pytest.raises(InvalidInputError, match="changed after the Image was made"):
        artifact.add(Table(columns=["a"], data=[[image]]), "t")
    assert list(artifact.manifest.entries) == []


# -- Read back from a committed version -----------------------------------------------------


def test_get_reads_images_back_from_their_downloaded_files(
    at_daemon: DaemonProcess, tmp_path: Path
) -> None:
    table = Table(
        columns=["id", "image"],
        data=[[0, Image(RGB, caption="rgb")], [1, Image(GRAY, grouping=2)], [2, None]],
    )
    artifact = artisync.Artifact("read-back", type="dataset")
    artifact.add(table, "examples")
    artifact.add(Image(RGBA, caption="alone"), "single")
    version = committed(at_daemon, artifact)
    loaded = version.get("examples")
    assert isinstance(loaded, Table) and loaded == table
    rgb, gray = loaded.data[0][1], loaded.data[1][1]
    assert (rgb.caption, rgb.width, rgb.height, rgb.format) == ("rgb", 4, 6, "png")
    assert np.array_equal(np.asarray(rgb.image), RGB)
    assert np.array_equal(np.asarray(gray.image), GRAY)
    root = (tmp_path / "artifacts" / "read-back:v0").resolve()
    assert Path(rgb.path).parent == root / "media" / "images"
    single = version.get("single")
    assert isinstance(single, Image) and single.caption == "alone"
    assert np.array_equal(np.asarray(single.image), RGBA)


def test_a_table_read_back_is_stored_again_as_it_was(at_daemon: DaemonProcess) -> None:
    artifact = artisync.Artifact("first", type="dataset")
    artifact.add(Table(columns=["image"], data=[[Image(RGB, caption="c")], [Image(GRAY)]]), "t")
    first = committed(at_daemon, artifact)
    loaded = first.get("t")
    assert isinstance(loaded, Table)
    again = artisync.Artifact("second", type="dataset")
    again.add(loaded, "t")
    second = committed(at_daemon, again)
    assert first.digest == second.digest
    assert {p: e.digest for p, e in first.manifest.entries.items()} == {
        p: e.digest for p, e in second.manifest.entries.items()
    }


def test_images_read_back_without_pillow_until_pixels_are_asked_for(
    at_daemon: DaemonProcess, tmp_path: Path
) -> None:
    artifact = artisync.Artifact("no-pillow", type="dataset")
    artifact.add(Table(columns=["image"], data=[[Image(RGB, caption="c")]]), "t")
    committed(at_daemon, artifact)
    script = (
        "import sys, artisync\n"
        "from artisync.errors import MissingDependencyError\n"
        "api = artisync.Api(home=sys.argv[1])\n"
        "image = api.artifact('media/no-pillow:v0').get('t').data[0][0]\n"
        "print(image.width, image.height, image.caption, image.size > 0)\n"
        "try:\n"
        "    image.image\n"
        "except MissingDependencyError as e:\n"
        "    print(e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(at_daemon.home)],
        env=_poisoned(tmp_path, "PIL"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert first == "4 6 c True"
    assert "pip install 'artisync[media]'" in second
