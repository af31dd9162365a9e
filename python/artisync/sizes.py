"""Byte counts as people read them, for every message that names a size."""

from __future__ import annotations

__all__ = ["human_size"]

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def human_size(n: int) -> str:
    """A byte count in binary units: ``512 B``, ``1.5 KiB``, ``12.0 GiB``."""
    if n < 0:
        raise ValueError(f"a size cannot be negative, got {n}")
    if n < 1024:
        return f"{n} B"
    value, unit = float(n), 0
    # Divide until the shown figure (rounded to one decimal) stays under 1024.
    while round(value, 1) >= 1024 and unit < len(_UNITS) - 1:
        value /= 1024
        unit += 1
    return f"{value:.1f} {_UNITS[unit]}"
