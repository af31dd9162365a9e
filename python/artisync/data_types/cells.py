"""What a table cell may hold, and the column types W&B writes beside the rows.

A cell is a JSON value (None, bool, int, float, str, or a list or dict (string keys)
of those) or an :class:`~artisync.data_types.image.Image`, at the top or inside lists
and dicts, as in W&B. :func:`check_cell` copies a value into that form and infers its type;
:func:`merge` combines the types of a column's cells, or says where they conflict;
:func:`column_type_json` is the type in W&B's JSON (``{"wb_type": ..., "params":
...}``), which W&B's reader checks every row against, so the types written here
accept every row they describe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from artisync.data_types.image import IMAGE_TYPE, IMAGE_TYPE_PARAMS, Image
from artisync.data_types.media import MediaWriter
from artisync.errors import InvalidInputError

__all__ = [
    "ANY",
    "NONE",
    "CellError",
    "CellType",
    "cell_json",
    "check_cell",
    "column_type_json",
    "merge",
]


@dataclass(frozen=True, slots=True)
class CellType:
    """What the cells of a column (or the items of a list cell) hold so far.

    ``kind`` is ``unknown`` (nothing but None seen), ``number``, ``string``,
    ``boolean``, ``image-file``, ``list``, ``dict`` or ``any`` (mixed types allowed); ``optional``
    says None was seen (or, for a dict key, that some dicts lack it).
    """

    kind: str
    optional: bool = False
    element: CellType | None = None
    length: int | None = None
    fields: tuple[tuple[str, CellType], ...] = ()


NONE = CellType("unknown", optional=True)
"""The type of None, and of a column with no values yet."""

ANY = CellType("any")
"""The type of every column of a table with ``allow_mixed_types=True``."""

_UNKNOWN = CellType("unknown")
_STRING = CellType("string")
_IMAGE = CellType(IMAGE_TYPE)
_SCALARS = {bool: CellType("boolean"), int: CellType("number"), float: CellType("number")}
_PLURALS = {
    "number": "numbers",
    "string": "strings",
    "boolean": "booleans",
    IMAGE_TYPE: "images",
}


class CellError(Exception):
    """A bad cell. ``where`` is the place inside it (``''``, ``[2]['x']``);
    ``conflict`` says the value is JSON but of another type than its neighbours."""

    def __init__(self, where: str, message: str, *, conflict: bool = False) -> None:
        super().__init__(message)
        self.where = where
        self.message = message
        self.conflict = conflict


def merge(a: CellType, b: CellType, where: str = "") -> CellType:
    """The type of a column holding values of both types; ``CellError`` if none."""
    optional = a.optional or b.optional
    if a.kind == "unknown":
        return replace(b, optional=optional)
    if b.kind == "unknown" or a == b:
        return replace(a, optional=optional)
    if a.kind != b.kind:
        held = _PLURALS.get(a.kind, a.kind + "s")
        raise CellError(where, f"a {b.kind} where the others hold {held}", conflict=True)
    if a.kind == "list":
        assert a.element is not None and b.element is not None
        element = merge(a.element, b.element, where + "[...]")
        # W&B types each new list from the value itself: the length is the latest one's.
        return CellType("list", optional, element, b.length)
    if a.kind == "dict":
        left, right = dict(a.fields), dict(b.fields)
        fields: dict[str, CellType] = {}
        for key in [*left, *(k for k in right if k not in left)]:
            if key in left and key in right:
                fields[key] = merge(left[key], right[key], f"{where}[{key!r}]")
            else:  # a dict without the key reads it as None
                fields[key] = replace(left.get(key) or right[key], optional=True)
        return CellType("dict", optional, fields=tuple(fields.items()))
    return replace(a, optional=optional)


def check_cell(value: Any, *, infer: bool = True, where: str = "") -> tuple[Any, CellType]:
    """A plain-JSON copy of ``value`` and its type, or ``CellError``.

    NumPy values become their ``tolist()``; NaN becomes None, as W&B writes it. An
    ``Image`` is kept as it is (its JSON is written with the table, into an artifact).
    With ``infer=False`` (mixed types allowed) only JSON-ness is checked and the
    type returned is meaningless.
    """
    if isinstance(value, Image):
        return value, _IMAGE
    if type(value).__module__.partition(".")[0] == "numpy" and hasattr(value, "tolist"):
        value = value.tolist()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None, NONE
    for plain in (bool, int, float):
        if isinstance(value, plain):
            return plain(value), _SCALARS[plain]
    if isinstance(value, str):
        return str(value), _STRING
    if isinstance(value, list | tuple):
        items: list[Any] = []
        element = _UNKNOWN
        for index, item in enumerate(value):
            copied, item_type = check_cell(item, infer=infer, where=f"{where}[{index}]")
            if infer:
                element = merge(element, item_type, f"{where}[{index}]")
            items.append(copied)
        return items, CellType("list", element=element, length=len(items))
    if isinstance(value, dict):
        copy: dict[str, Any] = {}
        fields: list[tuple[str, CellType]] = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise CellError(where, f"dict key {key!r} is not a string (JSON keys are)")
            copy[key], item_type = check_cell(item, infer=infer, where=f"{where}[{key!r}]")
            fields.append((key, item_type))
        return copy, CellType("dict", fields=tuple(fields))
    kind = type(value)
    raise CellError(
        where,
        f"{kind.__module__}.{kind.__qualname__} {value!r:.60} is not a JSON value; cells "
        "hold None, bool, int, float, str, artisync.Image, and lists and dicts (str keys) "
        "of those",
    )


def _type_name(t: CellType) -> str:
    """W&B's name for a type (``Number``, ``String[]``), which orders a union's members."""
    if t.kind == "list":
        assert t.element is not None
        name = _type_name(t.element) + "[]"
    elif t.kind == "dict":
        name = "{" + ", ".join(f"{k!r}: {_type_name(v)}" for k, v in t.fields) + "}"
    else:
        name = t.kind.capitalize()
    if t.optional:
        return "None" if t.kind == "unknown" else " or ".join(sorted(["None", name]))
    return name


def _type_json(t: CellType, *, column: bool = False) -> dict[str, Any]:
    if t.kind == "list":
        assert t.element is not None
        params: dict[str, Any] = {"element_type": _type_json(t.element), "length": t.length}
        base: dict[str, Any] = {"params": params, "wb_type": "list"}
    elif t.kind == "dict":
        type_map = {key: _type_json(value) for key, value in t.fields}
        base = {"params": {"type_map": type_map}, "wb_type": "typedDict"}
    elif t.kind == IMAGE_TYPE:
        base = {"params": IMAGE_TYPE_PARAMS, "wb_type": IMAGE_TYPE}
    else:
        base = {"wb_type": t.kind}
    if not (t.optional or column):
        return base
    if t.kind == "unknown" and not column:
        return {"wb_type": "none"}
    plain = replace(t, optional=False)
    allowed = sorted([("None", {"wb_type": "none"}), (_type_name(plain), base)])
    return {"params": {"allowed_types": [j for _, j in allowed]}, "wb_type": "union"}


def column_type_json(t: CellType) -> dict[str, Any]:
    """A column's type in W&B's JSON: always "None or ..." (W&B columns are optional)."""
    return _type_json(t, column=True)


def cell_json(value: Any, media: MediaWriter | None) -> Any:
    """A checked cell as the table's JSON holds it: each ``Image`` in it replaced by
    its JSON, its file stored through ``media`` (the artifact being written)."""
    if isinstance(value, Image):
        if media is None:
            raise InvalidInputError(
                "a table holding images is written into an artifact, which stores the "
                "image files beside it: artifact.add(table, name)"
            )
        return value.to_json(media)
    if isinstance(value, list):
        return [cell_json(item, media) for item in value]
    if isinstance(value, dict):
        return {key: cell_json(item, media) for key, item in value.items()}
    return value
