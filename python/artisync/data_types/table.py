"""``Table``: rows of JSON values under named columns, as ``wandb.Table`` has them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from artisync.data_types.cells import (
    ANY,
    NONE,
    CellError,
    CellType,
    cell_json,
    check_cell,
    column_type_json,
    merge,
)
from artisync.data_types.media import MediaWriter
from artisync.errors import InvalidInputError

__all__ = ["DEFAULT_COLUMNS", "LOG_MODE", "TABLE_TYPE", "ColumnKey", "Table"]

ColumnKey = str | int
"""A column name: W&B allows strings and integers."""

DEFAULT_COLUMNS: tuple[str, ...] = ("Input", "Output", "Expected")
"""The columns of a table made without any, as in W&B."""

TABLE_TYPE = "table"
"""The ``_type`` of a table entry, and the middle of its ``.table.json`` suffix."""

LOG_MODE = "IMMUTABLE"
"""W&B's ``log_mode`` of a table written whole (the only kind artisync reads)."""


def _is_dataframe(value: object) -> bool:
    # Duck-typed, so that pandas is never imported here.
    module = type(value).__module__.partition(".")[0]
    return module == "pandas" and hasattr(value, "itertuples") and hasattr(value, "columns")


class Table:
    """Rows of JSON values under named columns: W&B's ``wandb.Table``.

    ``data`` (or its legacy name ``rows``) is an iterable of rows, each a sequence of
    one value per column; ``dataframe`` (or a pandas DataFrame passed as ``data``)
    gives columns and rows at once. Without ``columns`` a table has W&B's default
    ``["Input", "Output", "Expected"]``. Cells are JSON values (None, bool, int,
    float, str, and lists and string-keyed dicts of those) and images
    (:class:`~artisync.data_types.image.Image`, whose files the artifact stores
    beside the table); NumPy values are
    converted with ``tolist()`` and NaN is stored as None, as W&B stores them. Each
    column holds one type of value, None aside, unless ``allow_mixed_types`` is
    True. A bad cell raises :class:`~artisync.errors.InvalidInputError` naming its
    row and column.
    """

    def __init__(
        self,
        columns: Sequence[ColumnKey] | None = None,
        data: Any = None,
        rows: Any = None,
        dataframe: Any = None,
        allow_mixed_types: bool = False,
    ) -> None:
        if dataframe is None and _is_dataframe(data):
            dataframe, data = data, None
        if dataframe is not None:
            columns = list(dataframe.columns)
            data = dataframe.itertuples(index=False, name=None)
        elif data is None:
            data = rows
        self.allow_mixed_types = allow_mixed_types
        self.columns: list[ColumnKey] = []
        self.data: list[list[Any]] = []
        self._types: list[CellType] = []
        for column in DEFAULT_COLUMNS if columns is None else columns:
            self._check_new_column(column)
            self.columns.append(column)
            self._types.append(self._empty_type)
        for row in data if data is not None else ():
            if isinstance(row, str | bytes) or not hasattr(row, "__iter__"):
                raise InvalidInputError(
                    f"row {len(self.data)} of the table is a {type(row).__name__}, "
                    f"not a list of {len(self.columns)} values (one per column)"
                )
            self.add_data(*row)

    @property
    def _empty_type(self) -> CellType:
        return ANY if self.allow_mixed_types else NONE

    def _check_new_column(self, name: object) -> None:
        if isinstance(name, bool) or not isinstance(name, str | int):
            raise InvalidInputError(
                f"column name {name!r} is a {type(name).__name__}; W&B tables name "
                "columns with strings (or integers)"
            )
        if name in self.columns:
            raise InvalidInputError(f"the table already has a column {name!r}")

    def _checked(self, value: Any, row: int, column: int, held: CellType) -> tuple[Any, CellType]:
        """``value`` as plain JSON and its column's type with it, or a clear error."""
        try:
            copied, cell_type = check_cell(value, infer=not self.allow_mixed_types)
            return copied, ANY if self.allow_mixed_types else merge(held, cell_type)
        except CellError as e:
            place = f"row {row}, column {self.columns[column]!r}"
            inside = f", at {e.where}" if e.where else ""
            hint = (
                " (the cells of a column have one type, None aside; "
                "pass allow_mixed_types=True to mix types)"
                if e.conflict
                else ""
            )
            raise InvalidInputError(f"table {place}{inside}: {e.message}{hint}") from None

    def add_data(self, *row: Any) -> None:
        """Append a row: one value per column, in column order."""
        if len(row) != len(self.columns):
            raise InvalidInputError(
                f"row {len(self.data)} has {len(row)} values but the table has "
                f"{len(self.columns)} columns: {self.columns}"
            )
        index = len(self.data)
        checked = [self._checked(value, index, n, self._types[n]) for n, value in enumerate(row)]
        self.data.append([value for value, _ in checked])
        self._types = [cell_type for _, cell_type in checked]

    def add_column(self, name: ColumnKey, data: Sequence[Any]) -> None:
        """Append a column: one value per existing row (a first column makes the rows)."""
        self._check_new_column(name)
        values = list(data)
        if self.columns and len(values) != len(self.data):
            raise InvalidInputError(
                f"column {name!r} has {len(values)} values but the table has {len(self.data)} rows"
            )
        self.columns.append(name)
        cells: list[Any] = []
        cell_type = self._empty_type
        try:
            for row, value in enumerate(values):
                cell, cell_type = self._checked(value, row, len(self.columns) - 1, cell_type)
                cells.append(cell)
        except InvalidInputError:
            self.columns.pop()
            raise
        if len(self.columns) == 1:
            self.data = [[] for _ in cells]
        for row_values, cell in zip(self.data, cells, strict=True):
            row_values.append(cell)
        self._types.append(cell_type)

    def get_column(self, name: ColumnKey) -> list[Any]:
        """The values of one column, top to bottom."""
        if name not in self.columns:
            raise InvalidInputError(f"the table has no column {name!r}; it has {self.columns}")
        index = self.columns.index(name)
        return [row[index] for row in self.data]

    def iterrows(self) -> Iterator[tuple[int, list[Any]]]:
        """Yield ``(index, row)`` for every row, top to bottom."""
        yield from enumerate(self.data)

    def to_json(self, media: MediaWriter | None = None) -> dict[str, Any]:
        """The table's JSON, as W&B writes a table entry of an artifact.

        The rows are checked again: ``data`` is a public list, which the caller
        may have changed since the rows were added. Image cells store their files
        through ``media`` (the artifact the table is added to), which a table holding
        images needs.
        """
        check = Table(self.columns, self.data, allow_mixed_types=self.allow_mixed_types)
        type_map = {
            str(name): column_type_json(cell_type)
            for name, cell_type in zip(check.columns, check._types, strict=True)
        }
        return {
            "_type": TABLE_TYPE,
            "column_types": {"params": {"type_map": type_map}, "wb_type": "typedDict"},
            "columns": check.columns,
            "data": [[cell_json(cell, media) for cell in row] for row in check.data],
            "log_mode": LOG_MODE,
            "ncols": len(check.columns),
            "nrows": len(check.data),
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Table):
            return NotImplemented
        return self.columns == other.columns and self.data == other.data

    __hash__ = None  # type: ignore[assignment]  # mutable, like a list

    def __repr__(self) -> str:
        return f"Table(columns={self.columns!r}, rows={len(self.data)})"
