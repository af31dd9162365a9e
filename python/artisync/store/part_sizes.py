"""How large uploads are cut: from which size a blob goes up in parts, and how big a
part is (an S3 multipart part, a chunk of a GCS resumable session).

The defaults suit a data-centre link: 64 MiB and up goes in parts of 32 MiB, so a
lost connection costs at most one part. Two settings of :class:`~artisync.config.Config`
change them (``multipart_threshold`` and ``part_size`` in ``config.toml``, or
``ARTISYNC_MULTIPART_THRESHOLD`` and ``ARTISYNC_PART_SIZE``); the daemon hands them to
the store when it opens it (:func:`~artisync.store.open_store`). The rules a value must
follow are here, with the stores that need them; ``Config`` applies them at start:

``multipart_threshold``
    Bytes from which a blob goes up in parts (at least 1).
``part_size``
    Bytes per part: at least 5 MiB (S3's minimum for every part but the last) and a
    multiple of 256 KiB (GCS's unit for every chunk but the last).

Tests lower them so that a few-megabyte file takes several parts; an operator may
raise them for a fast link or lower them for a flaky one.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "DEFAULT_PART_SIZE",
    "DEFAULT_THRESHOLD",
    "MAX_PARTS",
    "MIN_PART_SIZE",
    "PART_QUANTUM",
    "SINGLE_PUT_MAX",
    "part_size_for",
    "part_size_problem",
    "threshold_problem",
]

MIN_PART_SIZE: Final = 5 << 20
"""S3's minimum for every part but the last."""

MAX_PARTS: Final = 10_000
"""S3's limit on the parts of one upload."""

SINGLE_PUT_MAX: Final = 5 << 30
"""S3's limit for one PUT: a larger blob must go in parts (a manifest goes up in one)."""

PART_QUANTUM: Final = 256 << 10
"""GCS wants every chunk of a resumable session but the last in multiples of this."""

_MiB = 1 << 20

DEFAULT_THRESHOLD: Final = 64 * _MiB
"""Blobs of at least this size go up in parts (``multipart_threshold``)."""

DEFAULT_PART_SIZE: Final = 32 * _MiB
"""Bytes per part (``part_size``)."""


def part_size_for(size: int, part_size: int) -> int:
    """``part_size``, raised (to whole MiB) where ``size`` would need more than
    :data:`MAX_PARTS` parts of it: the same for every node, so a blob is cut alike."""
    if size <= part_size * MAX_PARTS:
        return part_size
    return -(-size // MAX_PARTS // _MiB) * _MiB + _MiB


def threshold_problem(value: int) -> str | None:
    """What is wrong with ``value`` as a multipart threshold, or ``None`` if nothing."""
    if value < 1:
        return "the threshold must be at least 1"
    return None


def part_size_problem(value: int) -> str | None:
    """What is wrong with ``value`` as a part size, or ``None`` if nothing."""
    if value < MIN_PART_SIZE or value % PART_QUANTUM:
        return (
            f"a part must be at least 5 MiB ({MIN_PART_SIZE}) and a "
            f"multiple of 256 KiB ({PART_QUANTUM}), e.g. {8 * _MiB} for 8 MiB"
        )
    return None
