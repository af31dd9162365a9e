"""A submission's many entries checked as one batch: one C-level call per column.

Checked one at a time, the entries of a 10,000-file version cost the daemon a Python
function call per check per entry (types, digest, path normal form, staging area),
the largest share of its time on such a version. Nearly every entry is what the SDK
writes: a staged snapshot with an already normal path and a canonical digest. These
functions answer, for a whole column at once (strings joined by ``"\\n"`` and matched
by one regular expression; ``min``/``max`` over the numbers), whether every value is
of that common form, for which the one-at-a-time checks are known to pass.

They only ever say yes or no: on a no, the caller runs the one-at-a-time checks,
which find the bad value and name it exactly as before. A yes must therefore imply
that those checks pass (the tests hold them side by side); a no costs nothing but
time.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Final

__all__ = ["all_canonical_md5", "all_normal_paths", "all_of_type", "all_staged_under"]

# One path component that names.normalize_entry_path keeps as it is: ASCII, none of
# NUL, "/" and "\\" (a separator on Windows), not "." or "..", at most 255 bytes
# (PATH_COMPONENT_MAX_BYTES). "\n" is left out so that it can join the batch.
_COMPONENT: Final = r"(?!\.\.?(?:/|\n|\Z))[\x01-\x09\x0b-\x2e\x30-\x5b\x5d-\x7f]{1,255}"
# A whole normal path: no drive letter and ":" in front (Windows would read a drive).
_PATH: Final = rf"(?![A-Za-z]:){_COMPONENT}(?:/{_COMPONENT})*"
_PATHS: Final = re.compile(rf"{_PATH}(?:\n{_PATH})*")
# ENTRY_PATH_MAX_BYTES: an ASCII path is as many bytes as characters.
_PATH_MAX: Final = 4096
# W&B's digest of a file in canonical form: base64 of 16 bytes (the last character
# carries 2 bits, so its low 4 are zero), as submission._MD5_BASE64.
_MD5: Final = r"[A-Za-z0-9+/]{21}[AQgw]=="
_MD5S: Final = re.compile(rf"{_MD5}(?:\n{_MD5})*")


def all_of_type(values: Sequence[object], kind: type) -> bool:
    """Whether every value is exactly of type ``kind`` (a ``bool`` is no ``int``)."""
    return set(map(type, values)) <= {kind}


def all_normal_paths(paths: Sequence[str]) -> bool:
    """Whether every path (a ``str``) is an ASCII entry path already in normal form:
    ``names.normalize_entry_path`` would return it unchanged, raising nothing."""
    if not paths:
        return True
    joined = "\n".join(paths)
    return (
        joined.isascii()
        and max(map(len, paths)) <= _PATH_MAX
        and _PATHS.fullmatch(joined) is not None
    )


def all_canonical_md5(digests: Sequence[str]) -> bool:
    """Whether every digest (a ``str``) is the canonical base64 of an MD5."""
    return not digests or _MD5S.fullmatch("\n".join(digests)) is not None


def all_staged_under(staged: Sequence[str], sub_id: str) -> bool:
    """Whether every snapshot path (a ``str``) lies in the submission's staging area,
    ``staging/<sub_id>/...``, with no empty, ``.`` or ``..`` component (the check
    ``daemon.expand`` makes of each, lexically). ``sub_id`` is a checked id."""
    if not staged:
        return True
    prefix = f"staging/{sub_id}/"
    if not all(map(str.startswith, staged, itertools.repeat(prefix))):
        return False
    # Each path ends with "\n" here, so a bad last component is found like any other
    # (and a "\n" inside a path shows as one line too many).
    joined = "\n".join(staged) + "\n"
    return joined.count("\n") == len(staged) and not any(
        bad in joined for bad in ("//", "/./", "/../", "/\n", "/.\n", "/..\n")
    )
