"""Tables as artifact entries: their names, their bytes, and reading them back.

``Artifact.add(obj, name)`` stores ``to_json_bytes(obj)`` under
``entry_path(obj, name)``; ``Artifact.get(name)`` gives an entry's bytes to
:func:`from_json_bytes`, with two callables to reach the artifact's other entries (a
partitioned table's parts).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from artisync.data_types.partitioned import PARTITIONED_TABLE_TYPE, EntryReader, PartitionedTable
from artisync.data_types.table import LOG_MODE, TABLE_TYPE, Table
from artisync.errors import InvalidInputError
from artisync.names import normalize_entry_path

__all__ = [
    "PARTITIONED_TABLE_SUFFIX",
    "SUFFIXES",
    "TABLE_SUFFIX",
    "entry_path",
    "from_json_bytes",
    "to_json_bytes",
]

TABLE_SUFFIX = f".{TABLE_TYPE}.json"
"""How the entry path of a :class:`Table` ends (``.table.json``)."""

PARTITIONED_TABLE_SUFFIX = f".{PARTITIONED_TABLE_TYPE}.json"
"""How the entry path of a :class:`PartitionedTable` ends (``.partitioned-table.json``)."""

SUFFIXES: dict[type, str] = {Table: TABLE_SUFFIX, PartitionedTable: PARTITIONED_TABLE_SUFFIX}
"""The suffix of each object's entry path, as W&B names them."""


def _suffix(obj: object) -> str:
    suffix = SUFFIXES.get(type(obj))
    if suffix is None:
        raise InvalidInputError(
            f"artifact.add() takes a Table or a PartitionedTable, not a "
            f"{type(obj).__name__}; add files with add_file() or add_dir()"
        )
    return suffix


def entry_path(obj: Table | PartitionedTable, name: str) -> str:
    """The entry path ``artifact.add(obj, name)`` stores ``obj`` under.

    ``name`` (normalized as every entry path is) plus the object's suffix:
    ``parts/table_0`` becomes ``parts/table_0.table.json``, and a name that ends
    with the suffix already keeps it once.
    """
    suffix = _suffix(obj)
    path = normalize_entry_path(name)
    return path if path.endswith(suffix) else path + suffix


def to_json_bytes(obj: Table | PartitionedTable) -> bytes:
    """The bytes of ``obj``'s entry: its JSON with sorted keys, as W&B writes it."""
    _suffix(obj)
    return json.dumps(obj.to_json(), sort_keys=True).encode("utf-8")


def from_json_bytes(
    data: bytes,
    *,
    name: str,
    read_entry: Callable[[str], bytes],
    list_entries: Callable[[str], Iterable[str]],
) -> Table | PartitionedTable:
    """The table an entry's bytes hold, whether artisync or W&B wrote them.

    ``name`` is the entry's path (for messages). ``read_entry(path)`` returns
    another entry's bytes and ``list_entries(prefix)`` the paths of the entries
    under a prefix; a :class:`PartitionedTable` reads its parts through them.
    """
    obj = _parse(data, name)
    if obj.get("_type") == PARTITIONED_TABLE_TYPE:
        parts_path = obj.get("parts_path")
        if not isinstance(parts_path, str):
            raise InvalidInputError(f"partitioned table {name!r} has no 'parts_path' string")
        return PartitionedTable.bound(parts_path, EntryReader(read_entry, list_entries, _part))
    return _table(obj, name)


def _parse(data: bytes, name: str) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InvalidInputError(f"entry {name!r} is not JSON ({e})") from None
    kind = obj.get("_type") if isinstance(obj, dict) else None
    if kind not in (TABLE_TYPE, PARTITIONED_TABLE_TYPE):
        raise InvalidInputError(
            f"entry {name!r} is not a table: its _type is {kind!r}; artisync reads "
            f"{TABLE_TYPE!r} and {PARTITIONED_TABLE_TYPE!r} entries"
        )
    assert isinstance(obj, dict)
    return obj


def _part(data: bytes, path: str) -> Table:
    obj = _parse(data, path)
    if obj.get("_type") != TABLE_TYPE:
        raise InvalidInputError(f"part {path!r} is a partitioned table itself, not a table")
    return _table(obj, path)


def _table(obj: dict[str, Any], name: str) -> Table:
    if obj.get("log_mode", LOG_MODE) != LOG_MODE:
        raise InvalidInputError(
            f"table {name!r} was logged with log_mode {obj['log_mode']!r}; "
            f"artisync reads only tables written whole ({LOG_MODE})"
        )
    columns, rows = obj.get("columns"), obj.get("data")
    if not isinstance(columns, list) or not isinstance(rows, list):
        raise InvalidInputError(f"table {name!r} needs a 'columns' list and a 'data' list")
    types = obj.get("column_types")
    if _contains(types, lambda d: "serialization_path" in d):
        raise InvalidInputError(
            f"table {name!r} keeps NumPy columns in a separate .npz entry (W&B does that "
            "with large arrays); artisync reads tables whose cells are all in the JSON"
        )
    # W&B marks the columns of a table with allow_mixed_types=True as "any".
    mixed = _contains(types, lambda d: d.get("wb_type") == "any")
    try:
        return Table(columns, rows, allow_mixed_types=mixed)
    except InvalidInputError as e:
        raise InvalidInputError(f"entry {name!r}: {e}") from None


def _contains(value: Any, test: Callable[[dict[str, Any]], bool]) -> bool:
    """Whether a dict anywhere in the JSON ``value`` passes ``test``."""
    if isinstance(value, dict):
        return test(value) or any(_contains(v, test) for v in value.values())
    if isinstance(value, list):
        return any(_contains(v, test) for v in value)
    return False
