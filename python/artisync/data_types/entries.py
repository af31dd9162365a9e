"""Tables and images as artifact entries: their names, their bytes, and reading them back.

``Artifact.add(obj, name)`` stores ``to_json_bytes(obj, media)`` under
``entry_path(obj, name)``, where ``media`` stores the files of the images the object
holds; ``Artifact.get(name)`` gives an entry's bytes to :func:`from_json_bytes`, with
callables to reach the artifact's other entries (a partitioned table's parts, the
images' files).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from artisync.data_types.image import IMAGE_TYPE, Image
from artisync.data_types.media import MediaFetcher, MediaWriter
from artisync.data_types.partitioned import PARTITIONED_TABLE_TYPE, EntryReader, PartitionedTable
from artisync.data_types.table import LOG_MODE, TABLE_TYPE, Table
from artisync.errors import InvalidInputError
from artisync.names import normalize_entry_path

__all__ = [
    "IMAGE_SUFFIX",
    "PARTITIONED_TABLE_SUFFIX",
    "SUFFIXES",
    "TABLE_SUFFIX",
    "Stored",
    "entry_path",
    "from_json_bytes",
    "to_json_bytes",
]

Stored = Table | PartitionedTable | Image
"""What ``Artifact.add`` stores as a JSON entry, and ``Artifact.get`` reads back."""

TABLE_SUFFIX = f".{TABLE_TYPE}.json"
"""How the entry path of a :class:`Table` ends (``.table.json``)."""

PARTITIONED_TABLE_SUFFIX = f".{PARTITIONED_TABLE_TYPE}.json"
"""How the entry path of a :class:`PartitionedTable` ends (``.partitioned-table.json``)."""

IMAGE_SUFFIX = f".{IMAGE_TYPE}.json"
"""How the entry path of an :class:`Image` added on its own ends (``.image-file.json``)."""

SUFFIXES: dict[type, str] = {
    Table: TABLE_SUFFIX,
    PartitionedTable: PARTITIONED_TABLE_SUFFIX,
    Image: IMAGE_SUFFIX,
}
"""The suffix of each object's entry path, as W&B names them."""

_TYPES = (TABLE_TYPE, PARTITIONED_TABLE_TYPE, IMAGE_TYPE)


def _suffix(obj: object) -> str:
    suffix = SUFFIXES.get(type(obj))
    if suffix is None:
        raise InvalidInputError(
            f"artifact.add() takes a Table, a PartitionedTable or an Image, not a "
            f"{type(obj).__name__}; add files with add_file() or add_dir()"
        )
    return suffix


def entry_path(obj: Stored, name: str) -> str:
    """The entry path ``artifact.add(obj, name)`` stores ``obj`` under.

    ``name`` (normalized as every entry path is) plus the object's suffix:
    ``parts/table_0`` becomes ``parts/table_0.table.json``, and a name that ends
    with the suffix already keeps it once.
    """
    suffix = _suffix(obj)
    path = normalize_entry_path(name)
    return path if path.endswith(suffix) else path + suffix


def to_json_bytes(obj: Stored, media: MediaWriter | None = None) -> bytes:
    """The bytes of ``obj``'s entry: its JSON with sorted keys, as W&B writes it.

    ``media`` stores the files of the images ``obj`` holds (a table with image cells,
    or an image), which need one.
    """
    _suffix(obj)
    if isinstance(obj, PartitionedTable):
        value = obj.to_json()
    elif isinstance(obj, Image):
        if media is None:
            raise InvalidInputError(
                "an image is written into an artifact, which stores its file beside its "
                "JSON: artifact.add(image, name)"
            )
        value = obj.to_json(media)
    else:
        value = obj.to_json(media)
    return json.dumps(value, sort_keys=True).encode("utf-8")


def from_json_bytes(
    data: bytes,
    *,
    name: str,
    read_entry: Callable[[str], bytes],
    list_entries: Callable[[str], Iterable[str]],
    fetch_media: MediaFetcher | None = None,
) -> Stored:
    """The table or image an entry's bytes hold, whether artisync or W&B wrote them.

    ``name`` is the entry's path (for messages). ``read_entry(path)`` returns
    another entry's bytes and ``list_entries(prefix)`` the paths of the entries
    under a prefix; a :class:`PartitionedTable` reads its parts through them.
    ``fetch_media(paths)`` downloads the image files the cells name (all of a
    table's in one call) and returns their local paths.
    """
    obj = _parse(data, name)
    kind = obj.get("_type")
    if kind == PARTITIONED_TABLE_TYPE:
        parts_path = obj.get("parts_path")
        if not isinstance(parts_path, str):
            raise InvalidInputError(f"partitioned table {name!r} has no 'parts_path' string")

        def part(data: bytes, path: str) -> Table:
            return _part(data, path, fetch_media)

        return PartitionedTable.bound(parts_path, EntryReader(read_entry, list_entries, part))
    if kind == IMAGE_TYPE:
        return _images([obj], fetch_media, name)[0]
    return _table(obj, name, fetch_media)


def _parse(data: bytes, name: str) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InvalidInputError(f"entry {name!r} is not JSON ({e})") from None
    kind = obj.get("_type") if isinstance(obj, dict) else None
    if kind not in _TYPES:
        raise InvalidInputError(
            f"entry {name!r} is not a table: its _type is {kind!r}; artisync reads "
            f"{', '.join(map(repr, _TYPES))} entries"
        )
    assert isinstance(obj, dict)
    return obj


def _part(data: bytes, path: str, fetch_media: MediaFetcher | None) -> Table:
    obj = _parse(data, path)
    if obj.get("_type") == PARTITIONED_TABLE_TYPE:
        raise InvalidInputError(f"part {path!r} is a partitioned table itself, not a table")
    if obj.get("_type") == IMAGE_TYPE:
        raise InvalidInputError(f"part {path!r} is an image, not a table")
    return _table(obj, path, fetch_media)


def _is_image_cell(cell: Any) -> bool:
    return isinstance(cell, dict) and cell.get("_type") == IMAGE_TYPE


def _images(
    cells: list[dict[str, Any]], fetch_media: MediaFetcher | None, name: str
) -> list[Image]:
    """The images ``cells`` (image JSON objects) name, their files fetched in one call."""
    if fetch_media is None:
        raise InvalidInputError(
            f"entry {name!r} names image files, which are read with it from a committed "
            "artifact: artifact.get(name)"
        )
    paths: list[str] = []
    for cell in cells:
        path = cell.get("path")
        if not isinstance(path, str):
            raise InvalidInputError(
                f"entry {name!r}: an image cell has no 'path' string naming its file: "
                f"{json.dumps(cell)[:200]}"
            )
        paths.append(path)
    local = fetch_media(list(dict.fromkeys(paths)))
    return [Image._from_artifact(c, local[p], p) for c, p in zip(cells, paths, strict=True)]


def _table(obj: dict[str, Any], name: str, fetch_media: MediaFetcher | None) -> Table:
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
    # As W&B reads them: a top-level image cell becomes an Image; one inside a list or
    # dict stays its JSON.
    places = [
        (r, c)
        for r, row in enumerate(rows)
        if isinstance(row, list)
        for c, cell in enumerate(row)
        if _is_image_cell(cell)
    ]
    if places:
        rows = [list(row) if isinstance(row, list) else row for row in rows]
        images = _images([rows[r][c] for r, c in places], fetch_media, name)
        for (r, c), image in zip(places, images, strict=True):
            rows[r][c] = image
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
