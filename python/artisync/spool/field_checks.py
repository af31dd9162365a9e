"""Types and ranges of a submission's fields, checked once when the daemon reads it.

A submission file is input from outside the daemon (a buggy or foreign client, a
file dropped by hand): every field the later stages rely on is checked here, so that
a bad one is rejected with a sentence naming it instead of failing deep inside the
pipeline (a negative size in the Rust core, a string of aliases iterated letter by
letter, NaN in the registry's JSON). Limits follow what the rest of the system can
hold: sizes and counts fit SQLite's signed 64-bit integers, inodes an unsigned one,
and a TTL a ``datetime.timedelta``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import sys
from datetime import timedelta
from typing import Any, Final

from artisync.errors import SubmissionError

__all__ = [
    "INT64_MAX",
    "KNOWN_KEYS",
    "TTL_MAX_SECONDS",
    "UINT64_MAX",
    "check_digest",
    "check_int",
    "check_optional_str",
    "check_str_list",
    "check_ttl",
    "check_unknown_keys",
    "strict_json",
]

KNOWN_KEYS: Final = frozenset(
    {
        "format",
        "format_version",
        "id",
        "created_ns",
        "project",
        "entity",
        "run",
        "action",
        "distributed_id",
        "artifact",
        "entries",
        "sealed_key",
        "base",
    }
)

INT64_MAX: Final = 2**63 - 1
UINT64_MAX: Final = 2**64 - 1
TTL_MAX_SECONDS: Final = timedelta.max.total_seconds()
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")


def _refuse_constant(name: str) -> Any:
    raise SubmissionError(
        f"the submission is not strict JSON: it contains {name}, which JSON cannot hold"
    )


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise SubmissionError(f"the submission holds the number {text}, too large for a float")
    return value


def strict_json(data: bytes) -> Any:
    """``data`` decoded as strict JSON: UTF-8 without lone surrogates, no ``NaN``, no
    infinities (the SDK writes none of them, and SQLite could not store the strings)."""
    try:
        # Not json.loads(bytes): it lets UTF-8-encoded surrogates through.
        text = data.decode("utf-8")
        obj = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
        if _SURROGATE_ESCAPE.search(text):
            # "\ud800" escapes: a pair decodes to one character, a lone one does not.
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except (UnicodeError, json.JSONDecodeError) as e:
        raise SubmissionError(f"the submission is not valid JSON: {e}") from None
    except RecursionError:
        raise SubmissionError("the submission is not valid JSON: nested too deeply") from None
    except SubmissionError:
        raise
    except ValueError:
        # The one other ValueError json.loads raises: an integer longer than Python
        # converts (sys.get_int_max_str_digits(), against quadratic-time parsing). A hook
        # on every integer instead would slow down every submission's read.
        raise SubmissionError(
            f"the submission holds an integer of more than {sys.get_int_max_str_digits():,} "
            "digits, the most artisync reads; store such a number as a string"
        ) from None
    return obj


def check_unknown_keys(obj: dict[str, Any]) -> None:
    """Refuse fields this format version does not have, rather than ignore them."""
    unknown = sorted(set(obj) - KNOWN_KEYS)
    if unknown:
        raise SubmissionError(
            f"unknown field(s) {', '.join(map(repr, unknown))} in the submission: this daemon "
            "reads format_version 1; upgrade the daemon to match the SDK that wrote it"
        )


def check_optional_str(value: object, where: str) -> None:
    """``value`` must be a string or ``None``."""
    if value is not None and not isinstance(value, str):
        raise SubmissionError(f"{where} must be a string or null, not {type(value).__name__}")


def check_str_list(value: object, where: str) -> None:
    """``value`` must be a list of strings (a lone string is refused, not split)."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SubmissionError(f"{where} must be a list of strings, not {_describe(value)}")


def check_int(value: int, where: str, low: int, high: int) -> None:
    """``value`` (already known to be an int) must lie in ``[low, high]``."""
    if not low <= value <= high:
        raise SubmissionError(f"{where} is {_short(value)}: it must be from {low} to {high}")


def check_ttl(value: object) -> None:
    """A TTL is ``None`` or a positive number of seconds a ``timedelta`` can hold."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SubmissionError(f"artifact ttl_seconds must be a number, not {_describe(value)}")
    if not 0 < value <= TTL_MAX_SECONDS:
        raise SubmissionError(
            f"artifact ttl_seconds is {_short(value)}: it must be positive and at most "
            f"{TTL_MAX_SECONDS:.0f} (or null for no TTL)"
        )


def check_digest(digest: str, where: str) -> None:
    """A file digest is W&B's: base64 of a 16-byte MD5."""
    try:
        raw = base64.b64decode(digest, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise SubmissionError(
            f"{where}: digest {_short(digest)} is not the base64 of an MD5 (24 characters)"
        )


def _describe(value: object) -> str:
    return f"{type(value).__name__} {_short(value)}"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."
