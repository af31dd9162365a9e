"""``Image``: W&B's ``wandb.Image``, for table cells and artifacts.

An image is a file plus a little JSON. Made from a path, the file is that file; made
from a PIL image or a NumPy array, it is encoded now (``png`` unless ``file_type`` says
otherwise) into a temporary file that lives as long as the process, as W&B does. Added
to an artifact (in a table, or on its own with ``artifact.add(image, name)``), the file
becomes an entry where W&B puts it and the JSON names it:

- pixels: ``media/images/<first 20 hex digits of the file's MD5>.<file type>``;
- a path: ``media/images/<first 20 hex digits of its SHA-256>/<file name>``;
- a file the artifact already holds from the same local path (``add_file``,
  ``add_dir``): that entry, with no second copy;
- an image read from an artifact: the path it had there.

The JSON is W&B's for an artifact: ``_type`` ``image-file``, ``path``, ``sha256``,
``format``, ``width`` and ``height``, and ``caption`` and ``grouping`` when set.
Masks, bounding boxes and classes are not supported (an error says so).
"""

from __future__ import annotations

import base64
import hashlib
import os
import posixpath
import re
import tempfile
import threading
import uuid
from typing import TYPE_CHECKING, Any, ClassVar, Final

from artisync.data_types.media import IMAGE_DIR, MediaWriter
from artisync.data_types.pixels import encode, open_image
from artisync.errors import InvalidInputError
from artisync.manifest import md5_b64_to_hex

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

__all__ = ["IMAGE_TYPE", "IMAGE_TYPE_PARAMS", "Image"]

IMAGE_TYPE: Final = "image-file"
"""The ``_type`` of an image's JSON, the middle of its entry suffix, and the
``wb_type`` of an image column."""

# The parameters of an image column's type as W&B writes them for images without
# boxes, masks or classes: six constants, all empty; the one W&B holds as a set is "set".
IMAGE_TYPE_PARAMS: Final[dict[str, Any]] = {
    name: {"params": {"is_set": is_set, "val": [] if is_set else {}}, "wb_type": "const"}
    for name, is_set in (
        ("box_class_maps", False),
        ("box_layers", False),
        ("box_score_keys", True),
        ("class_map", False),
        ("mask_class_maps", False),
        ("mask_layers", False),
    )
}

_REFERENCE: Final = re.compile(r"^(gs|s3|https?)://")
_CHUNK: Final = 1 << 20

_tmp_lock = threading.Lock()
_tmp_dir: tempfile.TemporaryDirectory[str] | None = None


def _media_tmp() -> str:
    """The process's directory for encoded images; removed when the process exits."""
    global _tmp_dir
    with _tmp_lock:
        if _tmp_dir is None:
            _tmp_dir = tempfile.TemporaryDirectory(prefix="artisync-media-")
        return _tmp_dir.name


def _digests(path: str) -> tuple[str, str, int]:
    """SHA-256 (hex), MD5 (base64) and size of a file, in one read."""
    sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), base64.b64encode(md5.digest()).decode("ascii"), size


def _caption(value: object) -> str | int | float | bool | None:
    if type(value).__module__.partition(".")[0] == "numpy" and hasattr(value, "item"):
        value = value.item()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise InvalidInputError(
        f"an image caption is a string (or a number), not a {type(value).__name__}: {value!r:.60}"
    )


def _refuse_annotations(classes: object, boxes: object, masks: object) -> None:
    given = [n for n, v in (("classes", classes), ("boxes", boxes), ("masks", masks)) if v]
    if given:
        raise InvalidInputError(
            f"artisync.Image does not support {', '.join(given)} (W&B's segmentation masks, "
            "bounding boxes and class sets); store them in other table columns, or log the "
            "image without them"
        )


class Image:
    """An image for a table cell or an artifact: W&B's ``wandb.Image``.

    ``data_or_path`` is a path to an image file (its format is its extension;
    ``file_type`` and ``mode`` do not apply), a PIL image, a NumPy array (HxW or HxWx1
    grayscale, HxWx3 RGB, HxWx4 RGBA; values are cast to ``uint8`` as they are, so
    floats must already be 0-255, as in wandb 0.31), or another ``Image`` (a copy that
    keeps the original's caption, as W&B's does). ``mode`` overrides the PIL mode
    guessed for an array; ``file_type`` is ``png`` (default), ``jpg``, ``jpeg`` or
    ``bmp``. Pillow is needed for everything but reading an image back from an
    artifact: ``pip install 'artisync[media]'``.
    """

    _log_type: ClassVar[str] = IMAGE_TYPE

    format: str
    """The file type: ``png`` for pixels by default, a path's extension otherwise."""

    _path: str
    _is_tmp: bool
    _sha256: str
    _size: int

    def __init__(
        self,
        data_or_path: Any,
        mode: str | None = None,
        caption: Any = None,
        grouping: int | None = None,
        classes: Any = None,
        boxes: Any = None,
        masks: Any = None,
        file_type: str | None = None,
    ) -> None:
        _refuse_annotations(classes, boxes, masks)
        self._caption = _caption(caption)
        self._grouping: int | None = None
        self._width: int | None = None
        self._height: int | None = None
        self._image: PILImage | None = None
        self._md5: str | None = None
        self._entry_path: str | None = None  # where it was read from, if it was
        self._file_type = file_type
        if isinstance(data_or_path, Image):
            self._copy(data_or_path)
        elif isinstance(data_or_path, str | os.PathLike):
            self._from_path(os.fspath(data_or_path))
        else:
            self._from_pixels(data_or_path, mode, file_type)
        if grouping is not None:
            if isinstance(grouping, bool) or not isinstance(grouping, int):
                raise InvalidInputError(f"grouping must be an int, not {grouping!r}")
            self._grouping = grouping

    def _copy(self, other: Image) -> None:
        # W&B's copy takes everything image-related from the original, the caption too.
        self._caption, self._grouping = other._caption, other._grouping
        self._width, self._height = other._width, other._height
        self._path, self._is_tmp = other._path, other._is_tmp
        self._sha256, self._md5, self._size = other._sha256, other._md5, other._size
        self.format, self._file_type = other.format, other._file_type
        self._entry_path = other._entry_path

    def _from_path(self, path: str) -> None:
        if _REFERENCE.match(path):
            raise InvalidInputError(
                f"artisync.Image does not take a URL ({path!r}): images referenced in a "
                "bucket or on a web server are not supported yet; download the file and "
                "pass its local path"
            )
        self._path, self._is_tmp = path, False
        self._sha256, self._md5, self._size = _digests(path)
        with open_image(path) as image:
            self._width, self._height = image.size
        self.format = os.path.splitext(path)[1][1:]

    def _from_pixels(self, data: Any, mode: str | None, file_type: str | None) -> None:
        if isinstance(data, bytes | bytearray):
            raise InvalidInputError(
                "artisync.Image takes a file path, a PIL image or a NumPy array, not bytes; "
                "decode them with PIL.Image.open(io.BytesIO(data)) first"
            )
        encoded = encode(data, mode, file_type)
        path = os.path.join(_media_tmp(), f"{uuid.uuid4().hex}.{encoded.file_type}")
        with open(path, "xb") as f:
            f.write(encoded.data)
        self._path, self._is_tmp = path, True
        self._sha256 = hashlib.sha256(encoded.data).hexdigest()
        md5 = hashlib.md5(encoded.data, usedforsecurity=False).digest()
        self._md5 = base64.b64encode(md5).decode("ascii")
        self._size = len(encoded.data)
        self._width, self._height = encoded.width, encoded.height
        self.format = encoded.file_type

    @classmethod
    def _from_artifact(cls, cell: dict[str, Any], local_path: str, entry_path: str) -> Image:
        """The image a cell read from an artifact names: its file downloaded to
        ``local_path``, its size and caption from the cell (no Pillow needed)."""
        image = cls.__new__(cls)
        image._caption = _caption(cell.get("caption"))
        grouping = cell.get("grouping")
        image._grouping = grouping if isinstance(grouping, int) else None
        width, height = cell.get("width"), cell.get("height")
        image._width = width if isinstance(width, int) else None
        image._height = height if isinstance(height, int) else None
        image._image, image._md5, image._file_type = None, None, None
        image._path, image._is_tmp, image._entry_path = local_path, False, entry_path
        sha256 = cell.get("sha256")
        if isinstance(sha256, str):
            image._sha256, image._size = sha256, os.path.getsize(local_path)
        else:
            image._sha256, image._md5, image._size = _digests(local_path)
        image.format = os.path.splitext(local_path)[1][1:]
        return image

    # -- what W&B users read -------------------------------------------------------------

    @property
    def image(self) -> PILImage:
        """The image as a PIL image (needs Pillow), read from its file when first asked."""
        if self._image is None:
            self._image = open_image(self._path)
        return self._image

    @property
    def path(self) -> str:
        """The local file holding the image."""
        return self._path

    @property
    def caption(self) -> str | int | float | bool | None:
        """The caption, or None."""
        return self._caption

    @property
    def width(self) -> int | None:
        """Width in pixels (None only for an image read from a cell that lacks it)."""
        return self._width

    @property
    def height(self) -> int | None:
        """Height in pixels (None only for an image read from a cell that lacks it)."""
        return self._height

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the file, as the cell's JSON records it."""
        return self._sha256

    @property
    def size(self) -> int:
        """Size of the file in bytes."""
        return self._size

    def to_data_array(self) -> list[list[Any]]:
        """The pixels, row by row, as W&B's ``to_data_array`` gives them (needs Pillow)."""
        image = self.image
        pixels = list(image.getdata())
        width = image.width
        return [pixels[row * width : (row + 1) * width] for row in range(image.height)]

    # -- stored in an artifact ---------------------------------------------------------

    def _digest(self) -> str:
        if self._md5 is None:
            _, self._md5, _ = _digests(self._path)
        return self._md5

    def _entry_name(self) -> str:
        """Where W&B puts this image's file in an artifact that does not hold it yet."""
        if self._entry_path is not None:
            return self._entry_path
        if self._is_tmp:
            return f"{IMAGE_DIR}/{md5_b64_to_hex(self._digest())[:20]}.{self.format}"
        return f"{IMAGE_DIR}/{self._sha256[:20]}/{posixpath.basename(self._path)}"

    def to_json(self, media: MediaWriter) -> dict[str, Any]:
        """The image's JSON in an artifact, its file stored through ``media``."""
        name = media.added_name(self._path)
        if name is None:
            name = media.add_media_file(self._path, self._entry_name(), self._digest())
        json_obj: dict[str, Any] = {
            "_type": IMAGE_TYPE,
            "format": self.format,
            "path": name,
            "sha256": self._sha256,
        }
        if self._caption is not None:
            json_obj["caption"] = self._caption
        if self._width is not None:
            json_obj["width"] = self._width
        if self._height is not None:
            json_obj["height"] = self._height
        if self._grouping:
            json_obj["grouping"] = self._grouping
        return json_obj

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Image):
            return NotImplemented
        return (
            self._sha256 == other._sha256
            and self._caption == other._caption
            and (self._width, self._height) == (other._width, other._height)
            and self._grouping == other._grouping
        )

    __hash__ = None  # type: ignore[assignment]  # as W&B's: equal by content, not hashable

    def __repr__(self) -> str:
        caption = "" if self._caption is None else f", caption={self._caption!r}"
        return f"Image({self.format}, {self._width}x{self._height}{caption})"
