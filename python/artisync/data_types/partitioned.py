"""``PartitionedTable``: one table made of the table entries under a directory."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from artisync.data_types.table import TABLE_TYPE, ColumnKey, Table
from artisync.errors import InvalidInputError
from artisync.names import normalize_entry_path

__all__ = ["PARTITIONED_TABLE_TYPE", "EntryReader", "PartitionedTable"]

PARTITIONED_TABLE_TYPE = "partitioned-table"
"""The ``_type`` of a partitioned table entry, and the middle of its suffix."""


@dataclass(frozen=True, slots=True)
class EntryReader:
    """How a partitioned table read from an artifact reaches its parts.

    ``read_entry(path)`` returns an entry's bytes, ``list_entries(prefix)`` the
    paths of the entries under a prefix, and ``load_table(data, path)`` turns a
    part's bytes into a :class:`Table`.
    """

    read_entry: Callable[[str], bytes]
    list_entries: Callable[[str], Iterable[str]]
    load_table: Callable[[bytes, str], Table]


class PartitionedTable:
    """One table made of the ``*.table.json`` entries under ``parts_path``, as in W&B.

    Several writers (``upsert_artifact`` from many runs) each add a part, say
    ``parts/table_<rank>``, and one ``PartitionedTable("parts")`` presents them as a
    whole. Parts are read in path order (string order: zero-pad numbers so that
    ``table_02`` comes before ``table_10``) and must have the same columns. Only a
    partitioned table got back from an artifact (``artifact.get(name)``) can read
    its parts.
    """

    def __init__(self, parts_path: str) -> None:
        self.parts_path = normalize_entry_path(parts_path)
        self._reader: EntryReader | None = None

    @classmethod
    def bound(cls, parts_path: str, reader: EntryReader) -> PartitionedTable:
        """A partitioned table that reads its parts through ``reader`` (what
        loading it from an artifact gives)."""
        table = cls(parts_path)
        table._reader = reader
        return table

    def to_json(self) -> dict[str, Any]:
        """The JSON W&B writes for a partitioned table in an artifact."""
        return {"_type": PARTITIONED_TABLE_TYPE, "parts_path": self.parts_path}

    def _bound_reader(self) -> EntryReader:
        if self._reader is None:
            raise InvalidInputError(
                f"PartitionedTable({self.parts_path!r}) was not read from an artifact, so it "
                "cannot read its parts; add it to an artifact, then get it back with "
                "artifact.get(name)"
            )
        return self._reader

    @property
    def part_paths(self) -> list[str]:
        """The entry paths of the parts, in the order they are read."""
        prefix, suffix = self.parts_path + "/", f".{TABLE_TYPE}.json"
        listed = self._bound_reader().list_entries(prefix)
        return sorted({p for p in listed if p.startswith(prefix) and p.endswith(suffix)})

    def parts(self) -> Iterator[Table]:
        """Yield each part as a :class:`Table`, reading one at a time."""
        for _, part in self._parts():
            yield part

    def _parts(self) -> Iterator[tuple[str, Table]]:
        reader = self._bound_reader()
        for path in self.part_paths:
            yield path, reader.load_table(reader.read_entry(path), path)

    def _same_columns(self) -> Iterator[tuple[str, Table]]:
        columns: list[ColumnKey] | None = None
        first = ""
        for path, part in self._parts():
            if columns is None:
                columns, first = part.columns, path
            elif part.columns != columns:
                raise InvalidInputError(
                    f"partitioned table {self.parts_path!r}: part {path!r} has columns "
                    f"{part.columns} but {first!r} has {columns}; every part needs the same "
                    "columns in the same order"
                )
            yield path, part

    def iterrows(self) -> Iterator[tuple[int, list[Any]]]:
        """Yield ``(index, row)`` over the rows of every part, in part order.

        ``index`` counts on across parts, as W&B's does. A part whose columns differ
        from the first part's raises :class:`~artisync.errors.InvalidInputError`.
        """
        index = 0
        for _, part in self._same_columns():
            for _, row in part.iterrows():
                yield index, row
                index += 1

    def to_table(self) -> Table:
        """Every part's rows in one :class:`Table` (the parts must share columns)."""
        parts = list(self._same_columns())
        mixed = any(part.allow_mixed_types for _, part in parts)
        table = Table(parts[0][1].columns if parts else [], allow_mixed_types=mixed)
        for path, part in parts:
            try:
                for row in part.data:
                    table.add_data(*row)
            except InvalidInputError as e:
                raise InvalidInputError(
                    f"partitioned table {self.parts_path!r}, part {path!r}: {e}"
                ) from None
        return table

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PartitionedTable):
            return NotImplemented
        return self.parts_path == other.parts_path

    def __hash__(self) -> int:
        return hash(self.parts_path)

    def __repr__(self) -> str:
        return f"PartitionedTable({self.parts_path!r})"
