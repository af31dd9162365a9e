"""How large uploads are cut: from which size a blob goes up in parts, and how big a
part is (an S3 multipart part, a chunk of a GCS resumable session).

The defaults suit a data-centre link: 64 MiB and up goes in parts of 32 MiB, so a
lost connection costs at most one part. Two environment variables change them for a
daemon (read when the stores are first imported, so set them before it starts):

``ARTISYNC_MULTIPART_THRESHOLD``
    Bytes from which a blob goes up in parts (at least 1).
``ARTISYNC_PART_SIZE``
    Bytes per part: at least 5 MiB (S3's minimum for every part but the last) and a
    multiple of 256 KiB (GCS's unit for every chunk but the last).

Tests lower them so that a few-megabyte file takes several parts; an operator may
raise them for a fast link or lower them for a flaky one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final

from artisync.errors import InvalidInputError

__all__ = [
    "DEFAULT_PART_SIZE",
    "DEFAULT_THRESHOLD",
    "ENV_PART_SIZE",
    "ENV_THRESHOLD",
    "MIN_PART_SIZE",
    "PART_QUANTUM",
    "part_size_from",
    "threshold_from",
]

ENV_THRESHOLD: Final = "ARTISYNC_MULTIPART_THRESHOLD"
ENV_PART_SIZE: Final = "ARTISYNC_PART_SIZE"

MIN_PART_SIZE: Final = 5 << 20
"""S3's minimum for every part but the last."""

PART_QUANTUM: Final = 256 << 10
"""GCS wants every chunk of a resumable session but the last in multiples of this."""

_MiB = 1 << 20


def _integer(name: str, text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise InvalidInputError(
            f"{name}={text!r} is not a whole number of bytes; write e.g. {name}={64 * _MiB}"
        ) from None


def threshold_from(environ: Mapping[str, str], default: int) -> int:
    """``ARTISYNC_MULTIPART_THRESHOLD`` from ``environ``, else ``default``."""
    text = environ.get(ENV_THRESHOLD)
    if text is None:
        return default
    value = _integer(ENV_THRESHOLD, text)
    if value < 1:
        raise InvalidInputError(f"{ENV_THRESHOLD}={text!r}: the threshold must be at least 1")
    return value


def part_size_from(environ: Mapping[str, str], default: int) -> int:
    """``ARTISYNC_PART_SIZE`` from ``environ``, else ``default``."""
    text = environ.get(ENV_PART_SIZE)
    if text is None:
        return default
    value = _integer(ENV_PART_SIZE, text)
    if value < MIN_PART_SIZE or value % PART_QUANTUM:
        raise InvalidInputError(
            f"{ENV_PART_SIZE}={text!r}: a part must be at least 5 MiB ({MIN_PART_SIZE}) and a "
            f"multiple of 256 KiB ({PART_QUANTUM}), e.g. {8 * _MiB} for 8 MiB"
        )
    return value


DEFAULT_THRESHOLD: Final = threshold_from(os.environ, 64 * _MiB)
"""Blobs of at least this size go up in parts (``ARTISYNC_MULTIPART_THRESHOLD``)."""

DEFAULT_PART_SIZE: Final = part_size_from(os.environ, 32 * _MiB)
"""Bytes per part (``ARTISYNC_PART_SIZE``)."""
