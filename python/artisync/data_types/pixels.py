"""Pixels to image files and back, as ``wandb.Image`` turns them into files.

Pillow is optional (``pip install 'artisync[media]'``): it is imported only when pixels
must be encoded (a NumPy array or a PIL image), when an image file must be measured
(a path given to ``Image``), or when a PIL image is asked for. NumPy is never imported
here: an array is used through its own methods (``squeeze``, ``astype``), so a caller
who has an array has all that is needed.

The steps are W&B's, in W&B's order, because the file's bytes, and with them the entry
name and digest, must come out the same: squeeze trivial dimensions, guess the mode from
the shape, cast to ``uint8`` (no rescaling: values are taken to be 0-255 already, as
wandb 0.31 takes them), ``PIL.Image.fromarray(...).convert(mode)``, then save with
``transparency=None``.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, cast

from artisync.errors import InvalidInputError, MissingDependencyError

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

__all__ = [
    "FILE_TYPES",
    "INSTALL_HINT",
    "Encoded",
    "encode",
    "guess_mode",
    "is_pil_image",
    "measure",
    "open_image",
    "pil",
]

FILE_TYPES: Final = ("png", "jpg", "jpeg", "bmp")
"""The ``file_type`` values an image made from pixels may be written as (W&B's list)."""

INSTALL_HINT: Final = "pip install 'artisync[media]'"
"""The line that installs what images need."""

_PIL_FORMATS: Final = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "bmp": "BMP"}


def pil(needed_for: str) -> ModuleType:
    """``PIL.Image``, or :class:`MissingDependencyError` saying what needed it."""
    try:
        from PIL import Image
    except ImportError:
        raise MissingDependencyError(
            f"artisync.Image needs Pillow to {needed_for}, and Pillow is not installed: "
            f"{INSTALL_HINT}"
        ) from None
    return Image


def is_pil_image(value: object) -> bool:
    """Whether ``value`` is a PIL image, without importing Pillow for anything else."""
    if type(value).__module__.partition(".")[0] != "PIL":
        return False
    return isinstance(value, pil("read a PIL image").Image)


@dataclass(frozen=True, slots=True)
class Encoded:
    """An image file made from pixels: its bytes, size in pixels and file type."""

    data: bytes
    width: int
    height: int
    file_type: str


def guess_mode(shape: tuple[int, ...], file_type: str | None) -> str:
    """The PIL mode W&B picks for an array of ``shape`` (already squeezed).

    Two dimensions, or one channel, is ``L`` (grayscale); three channels ``RGB``; four
    ``RGBA``, except for JPEG, which has no alpha: then ``RGB``, with a warning, as W&B
    does.
    """
    channels = shape[-1] if shape else 0
    if len(shape) == 2 or channels == 1:
        return "L"
    if channels == 3:
        return "RGB"
    if channels == 4:
        if file_type in ("jpg", "jpeg"):
            warnings.warn(
                "JPEG has no transparency: the image's alpha channel is dropped "
                "(pass file_type='png' to keep it)",
                UserWarning,
                stacklevel=4,
            )
            return "RGB"
        return "RGBA"
    raise InvalidInputError(
        f"an image array of shape {list(shape)} has {channels} channels; artisync.Image "
        "takes HxW (grayscale), HxWx1, HxWx3 (RGB) or HxWx4 (RGBA) arrays"
    )


def _is_array(value: object) -> bool:
    return all(hasattr(value, name) for name in ("ndim", "shape", "squeeze", "astype"))


def _pixels(data: Any, mode: str | None, file_type: str, module: ModuleType) -> PILImage:
    """A PIL image of ``data`` (a PIL image as it is, an array as W&B converts it)."""
    if isinstance(data, module.Image):
        return cast("PILImage", data)
    kind = type(data)
    origin = kind.__module__.partition(".")[0]
    if origin in ("torch", "matplotlib"):
        raise InvalidInputError(
            f"artisync.Image does not take a {kind.__module__}.{kind.__qualname__}; pass a "
            "NumPy array of shape HxWxC (a tensor: tensor.permute(1, 2, 0).cpu().numpy()) "
            "or a PIL image (a figure: save it to a file and pass its path)"
        )
    if not _is_array(data) and hasattr(data, "numpy"):  # TensorFlow eager tensors
        data = data.numpy()
    if not _is_array(data):
        raise InvalidInputError(
            f"artisync.Image takes a file path, a PIL image or a NumPy array, not a "
            f"{kind.__module__}.{kind.__qualname__}"
        )
    array: Any = data
    if array.ndim > 2:  # trivial dimensions go, as in W&B: HxWx1 becomes HxW
        array = array.squeeze()
    if array.ndim not in (2, 3):
        raise InvalidInputError(
            f"an image array of shape {list(data.shape)} (squeezed: {list(array.shape)}) "
            "is not an image; artisync.Image takes HxW, HxWx1, HxWx3 or HxWx4 arrays"
        )
    mode = mode or guess_mode(tuple(array.shape), file_type)
    try:
        return module.fromarray(array.astype("uint8")).convert(mode)  # type: ignore[no-any-return]
    except (TypeError, ValueError) as e:
        raise InvalidInputError(
            f"cannot make a {mode!r} image of an array of shape {list(array.shape)} and "
            f"dtype {array.dtype}: {e}"
        ) from None


def encode(data: object, mode: str | None, file_type: str | None) -> Encoded:
    """The image file W&B writes for ``data`` (a PIL image or an array).

    ``file_type`` is one of :data:`FILE_TYPES` (default ``png``); ``mode`` a PIL mode
    that overrides the guessed one (arrays only, as in W&B).
    """
    chosen = file_type or "png"
    if chosen not in FILE_TYPES:
        raise InvalidInputError(
            f"file_type {file_type!r} is not one artisync.Image writes; use one of "
            f"{list(FILE_TYPES)}"
        )
    module = pil(f"write an image as {chosen}")
    image = _pixels(data, mode, chosen, module)
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=_PIL_FORMATS[chosen], transparency=None)
    except (OSError, ValueError, KeyError) as e:
        raise InvalidInputError(
            f"cannot write a PIL image of mode {image.mode!r} as {chosen}: {e}; convert it "
            "first (image.convert('RGB')) or choose another file_type"
        ) from None
    width, height = image.size
    return Encoded(buffer.getvalue(), width, height, chosen)


def open_image(path: str) -> PILImage:
    """The image file at ``path``, decoded whole (so a broken file fails here)."""
    module = pil("read the image file " + repr(path))
    try:
        image: PILImage = module.open(path)
        image.load()
    except module.UnidentifiedImageError:
        raise InvalidInputError(
            f"{path!r} is not an image file Pillow can read (PNG, JPEG, BMP, GIF, ...)"
        ) from None
    return image


def measure(path: str) -> tuple[int, int]:
    """The width and height of the image file at ``path``."""
    with open_image(path) as image:
        return image.size
