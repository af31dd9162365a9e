"""Checks on the SDK's user values that ``artisync.names`` does not cover.

Artifact metadata and run config must be JSON, reference URIs must use a scheme the
daemon can expand, run ids must fit in a run path, and list arguments must be lists.
Each check raises :class:`InvalidInputError` naming the value (and for JSON, the key
path to it: ``metadata['eval']['scores'][3]``), so a mistake fails in the training
script at the line that made it, not later in the daemon.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

from artisync.errors import InvalidInputError
from artisync.names import validate_run_id
from artisync.references.uri import REFERENCE_SCHEMES, check_reference

__all__ = [
    "REFERENCE_SCHEMES",
    "check_reference_uri",
    "check_run_id",
    "optional_str",
    "require_json",
    "require_json_object",
    "str_list",
]


_JSON_TYPES: Final = (
    "use str, int, float, bool, None, or lists and dicts of them "
    "(convert numpy values with .item() or .tolist())"
)


def require_json(value: Any, where: str) -> None:
    """Raise unless ``value`` is JSON that reads back equal; name the first bad part.

    JSON here is ``str``, ``int``, finite ``float``, ``bool``, ``None``, and lists,
    tuples and string-keyed dicts of them. NaN and infinity are refused (the spool
    writes strict JSON), and so are non-string keys, which ``json.dumps`` would
    silently turn into strings. ``where`` names ``value`` in the message, e.g.
    ``"artifact 'model' metadata"``.
    """
    _check_json(value, where, set())


def require_json_object(value: Any, where: str) -> dict[str, Any]:
    """A shallow copy of ``value`` if it is a JSON object (a string-keyed dict), else raise."""
    if not isinstance(value, Mapping):
        raise InvalidInputError(
            f"Invalid {where} {_short_repr(value)}: must be a dict, not {type(value).__name__}"
        )
    copy = dict(value)
    require_json(copy, where)
    return copy


def _check_json(value: Any, where: str, open_containers: set[int]) -> None:
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(
                f"{where} is {value!r}, which JSON cannot hold (no NaN or infinity); "
                "store None or a string instead"
            )
        return
    # json.dumps writes dicts, lists and tuples; other mappings and sequences it refuses.
    if not isinstance(value, dict | list | tuple):
        raise InvalidInputError(
            f"{where} is {_short_repr(value)} of type {type(value).__name__}, which is not "
            f"JSON-serialisable: {_JSON_TYPES}"
        )
    # A container inside itself would recurse forever.
    if id(value) in open_containers:
        raise InvalidInputError(f"{where} contains itself (a circular reference)")
    open_containers.add(id(value))
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInputError(
                    f"{where} has the key {key!r} of type {type(key).__name__}: "
                    "JSON object keys must be str"
                )
            _check_json(item, f"{where}[{key!r}]", open_containers)
    else:
        for index, item in enumerate(value):
            _check_json(item, f"{where}[{index}]", open_containers)
    open_containers.discard(id(value))


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def check_reference_uri(uri: object) -> str:
    """Return ``uri`` if ``add_reference`` can record it, else raise (the rules are
    :func:`artisync.references.uri.check_reference`'s, which the daemon applies too)."""
    return check_reference(uri)


def check_run_id(run_id: object) -> str:
    """Return ``run_id`` if W&B would accept it as a run id, else raise (see
    :func:`artisync.names.validate_run_id`)."""
    return validate_run_id(run_id)  # type: ignore[arg-type]  # it checks the type


def optional_str(value: object, what: str) -> str | None:
    """Return ``value`` if it is ``None`` or a non-empty str, else raise naming ``what``."""
    if value is not None and (not isinstance(value, str) or not value):
        raise InvalidInputError(f"Invalid {what} {value!r}: must be a non-empty str or None")
    return value


def str_list(value: object, what: str, *, single: bool = False) -> list[str]:
    """``value`` as a list; with ``single``, a lone str counts as a list of one (as W&B
    takes ``aliases="best"``). The items are checked by the caller's name rules."""
    if isinstance(value, str) and single:
        return [value]
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise InvalidInputError(f"Invalid {what} {value!r}: must be a list of str")
    return list(value)
