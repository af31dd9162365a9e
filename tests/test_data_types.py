"""Tables in artifacts: W&B's JSON, cell checks, and partitioned tables read by parts."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from artisync.data_types import (
    PartitionedTable,
    Table,
    entry_path,
    from_json_bytes,
    to_json_bytes,
)
from artisync.errors import InvalidInputError

# What wandb 0.31.0 writes for
# artifact.add(wandb.Table(columns=["a", "b", "c", "d"],
#                          data=[[1, "x", True, None], [2.5, None, False, None]]), "t")
WANDB_SCALAR_TABLE = (
    b'{"_type": "table", "column_types": {"params": {"type_map": {"a": {"params": '
    b'{"allowed_types": [{"wb_type": "none"}, {"wb_type": "number"}]}, "wb_type": "union"}, '
    b'"b": {"params": {"allowed_types": [{"wb_type": "none"}, {"wb_type": "string"}]}, '
    b'"wb_type": "union"}, "c": {"params": {"allowed_types": [{"wb_type": "boolean"}, '
    b'{"wb_type": "none"}]}, "wb_type": "union"}, "d": {"params": {"allowed_types": '
    b'[{"wb_type": "none"}, {"wb_type": "unknown"}]}, "wb_type": "union"}}}, '
    b'"wb_type": "typedDict"}, "columns": ["a", "b", "c", "d"], "data": [[1, "x", true, null], '
    b'[2.5, null, false, null]], "log_mode": "IMMUTABLE", "ncols": 4, "nrows": 2}'
)

# What wandb 0.31.0 writes for a table with allow_mixed_types=True, a list column
# (whose "length" is the last list's) and a NaN (written as null).
WANDB_MIXED_TABLE = (
    b'{"_type": "table", "column_types": {"params": {"type_map": {"a": {"params": '
    b'{"allowed_types": [{"wb_type": "any"}, {"wb_type": "none"}]}, "wb_type": "union"}, '
    b'"b": {"params": {"allowed_types": [{"wb_type": "any"}, {"wb_type": "none"}]}, '
    b'"wb_type": "union"}}}, "wb_type": "typedDict"}, "columns": ["a", "b"], '
    b'"data": [[1, [1, 2]], ["s", null]], "log_mode": "IMMUTABLE", "ncols": 2, "nrows": 2}'
)


class FakeArtifact:
    """The two callables an Artifact hands to ``from_json_bytes``, over a dict."""

    def __init__(self, entries: dict[str, bytes]) -> None:
        self.entries = entries
        self.reads: list[str] = []

    def read_entry(self, path: str) -> bytes:
        self.reads.append(path)
        return self.entries[path]

    def list_entries(self, prefix: str) -> list[str]:
        return [path for path in self.entries if path.startswith(prefix)]

    def add(self, obj: Table | PartitionedTable, name: str) -> str:
        path = entry_path(obj, name)
        self.entries[path] = to_json_bytes(obj)
        return path

    def get(self, path: str) -> Table | PartitionedTable:
        return from_json_bytes(
            self.entries[path],
            name=path,
            read_entry=self.read_entry,
            list_entries=self.list_entries,
        )


def load(data: bytes) -> Table | PartitionedTable:
    return FakeArtifact({"t.table.json": data}).get("t.table.json")


def reloaded(table: Table) -> Table:
    loaded = load(to_json_bytes(table))
    assert isinstance(loaded, Table)
    return loaded


# -- Table: the W&B format --------------------------------------------------------------


def test_table_bytes_equal_what_wandb_writes_for_the_same_rows() -> None:
    table = Table(
        columns=["a", "b", "c", "d"], data=[[1, "x", True, None], [2.5, None, False, None]]
    )
    assert to_json_bytes(table) == WANDB_SCALAR_TABLE


def test_table_json_has_the_keys_a_wandb_reader_needs() -> None:
    table = Table(columns=["x", "y"], data=[[1, [1.5, None]], [2, [3.0]]])
    obj = json.loads(to_json_bytes(table))
    assert obj["_type"] == "table"
    assert (obj["columns"], obj["data"]) == (["x", "y"], [[1, [1.5, None]], [2, [3.0]]])
    assert (obj["ncols"], obj["nrows"], obj["log_mode"]) == (2, 2, "IMMUTABLE")
    y = obj["column_types"]["params"]["type_map"]["y"]["params"]["allowed_types"]
    element = {"params": {"allowed_types": [{"wb_type": "none"}, {"wb_type": "number"}]}}
    # W&B types each list from its value: the column's length is the last list's
    # (wandb 0.31 writes 1 here; tests/test_wandb_oracle.py compares with it live).
    assert y[1] == {
        "params": {"element_type": {**element, "wb_type": "union"}, "length": 1},
        "wb_type": "list",
    }


def test_table_reads_what_wandb_wrote() -> None:
    table = load(WANDB_SCALAR_TABLE)
    assert table == Table(["a", "b", "c", "d"], [[1, "x", True, None], [2.5, None, False, None]])
    mixed = load(WANDB_MIXED_TABLE)
    assert isinstance(mixed, Table) and mixed.allow_mixed_types
    assert mixed.data == [[1, [1, 2]], ["s", None]]
    assert to_json_bytes(mixed) == WANDB_MIXED_TABLE


def test_table_round_trips_through_its_entry_bytes() -> None:
    table = Table(
        columns=["id", "label", "boxes", "meta"],
        data=[
            [0, "cat", [[1, 2], [3, 4]], {"split": "train", "score": 0.5}],
            [1, None, [], {"split": "val"}],
        ],
    )
    assert reloaded(table) == table
    assert to_json_bytes(reloaded(table)) == to_json_bytes(table)


def test_dict_cells_missing_a_key_make_that_key_optional() -> None:
    table = Table(columns=["meta"], data=[[{"a": 1, "b": "x"}], [{"a": 2}]])
    union = json.loads(to_json_bytes(table))["column_types"]["params"]["type_map"]["meta"]
    type_map = union["params"]["allowed_types"][1]["params"]["type_map"]
    assert type_map["a"] == {"wb_type": "number"}
    assert [t["wb_type"] for t in type_map["b"]["params"]["allowed_types"]] == ["none", "string"]


def test_nan_is_stored_as_null_and_infinity_as_wandb_writes_it() -> None:
    nan, inf = float("nan"), float("inf")
    table = Table(columns=["loss", "history"], data=[[nan, [nan, 1.0]], [inf, []]])
    assert table.data == [[None, [None, 1.0]], [inf, []]]
    assert b'"data": [[null, [null, 1.0]], [Infinity, []]]' in to_json_bytes(table)
    assert math.isinf(reloaded(table).data[1][0])


# -- Table: the W&B API -------------------------------------------------------------------


def test_table_rows_columns_and_iteration_follow_wandb() -> None:
    table = Table(columns=["user"])
    for user in ["geoff", "juergen", "ada"]:
        table.add_data(user)
    table.add_column("length", [5, 7, 3])
    assert table.columns == ["user", "length"]
    assert table.get_column("length") == [5, 7, 3]
    assert list(table.iterrows()) == [(0, ["geoff", 5]), (1, ["juergen", 7]), (2, ["ada", 3])]
    assert table.data == [["geoff", 5], ["juergen", 7], ["ada", 3]]


def test_table_without_columns_has_wandb_default_columns() -> None:
    assert Table().columns == ["Input", "Output", "Expected"]
    assert Table(data=[[1, 2, 3]]).data == [[1, 2, 3]]


def test_rows_is_the_legacy_name_of_data() -> None:
    assert Table(columns=["a"], rows=[[1], [2]]) == Table(columns=["a"], data=[[1], [2]])


def test_first_column_added_to_an_empty_table_makes_its_rows() -> None:
    table = Table(columns=[])
    table.add_column("a", [1, 2])
    table.add_column(3, ["x", "y"])
    assert table.data == [[1, "x"], [2, "y"]]
    assert json.loads(to_json_bytes(table))["columns"] == ["a", 3]


def test_equal_tables_have_equal_columns_and_rows() -> None:
    table = Table(columns=["a"], data=[[1]])
    assert table == Table(columns=["a"], data=[(1,)])
    assert table != Table(columns=["b"], data=[[1]])
    assert table != Table(columns=["a"], data=[[2]])
    assert table != [[1]]


def test_cells_are_copied_so_later_changes_do_not_leak_in() -> None:
    cell = {"tags": ["a"]}
    table = Table(columns=["meta", "pair"], data=[[cell, ("x", "y")]])
    cell["tags"].append("b")
    assert table.data == [[{"tags": ["a"]}, ["x", "y"]]]


def test_numpy_like_values_become_their_tolist() -> None:
    class Float32:
        __module__ = "numpy"

        def tolist(self) -> float:
            return 0.25

    table = Table(columns=["loss"], data=[[Float32()]])
    assert table.data == [[0.25]]


# -- Table: bad input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "where"),
    [
        (object(), "row 1, column 'b'"),
        ({1, 2}, "row 1, column 'b'"),
        (b"bytes", "row 1, column 'b'"),
        ({1: "x"}, "row 1, column 'b'"),
        ([1, {"k": object()}], "row 1, column 'b', at [1]['k']"),
    ],
)
def test_non_json_cell_names_its_row_and_column(cell: Any, where: str) -> None:
    table = Table(columns=["a", "b"], data=[[0, None]])
    with pytest.raises(InvalidInputError, match=rf"table {re.escape(where)}: "):
        table.add_data(1, cell)
    assert table.data == [[0, None]]


def test_a_column_keeps_one_type_unless_mixed_types_are_allowed() -> None:
    table = Table(columns=["score"], data=[[1], [None]])
    with pytest.raises(InvalidInputError, match=r"row 2, column 'score'.*allow_mixed_types"):
        table.add_data("high")
    with pytest.raises(InvalidInputError, match="row 2, column 'score'"):
        table.add_data(True)
    with pytest.raises(InvalidInputError, match=r"at \[1\]"):
        Table(columns=["v"], data=[[[1, "a"]]])
    mixed = Table(columns=["score"], data=[[1], ["high"], [[1, "a"]]], allow_mixed_types=True)
    assert mixed.get_column("score") == [1, "high", [1, "a"]]


def test_a_row_of_the_wrong_length_names_the_columns() -> None:
    table = Table(columns=["a", "b"])
    with pytest.raises(InvalidInputError, match=r"row 0 has 1 values.*\['a', 'b'\]"):
        table.add_data(1)
    with pytest.raises(InvalidInputError, match="row 0 of the table is a str"):
        Table(columns=["a"], data=["ab"])


def test_bad_columns_are_refused_and_leave_the_table_unchanged() -> None:
    with pytest.raises(InvalidInputError, match="already has a column 'a'"):
        Table(columns=["a", "a"])
    with pytest.raises(InvalidInputError, match=r"column name 1\.5"):
        Table(columns=[1.5])  # type: ignore[list-item]
    table = Table(columns=["a"], data=[[1], [2]])
    with pytest.raises(InvalidInputError, match="has 1 values but the table has 2 rows"):
        table.add_column("b", [1])
    with pytest.raises(InvalidInputError, match="row 1, column 'b'"):
        table.add_column("b", [1, "x"])
    assert (table.columns, table.data) == (["a"], [[1], [2]])
    with pytest.raises(InvalidInputError, match="no column 'b'"):
        table.get_column("b")


def test_rows_changed_through_data_are_checked_again_when_stored() -> None:
    table = Table(columns=["a"], data=[[1]])
    table.data.append([object()])
    with pytest.raises(InvalidInputError, match="row 1, column 'a'"):
        to_json_bytes(table)


# -- pandas stays optional ----------------------------------------------------------------


class FakeDataFrame:
    """Enough of a DataFrame for Table, and pandas-looking by its module."""

    __module__ = "pandas.core.frame"

    def __init__(self, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        self.columns = columns
        self.rows = rows

    def itertuples(
        self, index: bool = True, name: str | None = "Pandas"
    ) -> Iterator[tuple[Any, ...]]:
        assert (index, name) == (False, None)
        return iter(self.rows)


def test_a_dataframe_gives_columns_and_rows() -> None:
    frame = FakeDataFrame(["users", "feature_01"], [("geoff", 1), ("ada", 42)])
    for table in (Table(dataframe=frame), Table(data=frame)):
        assert table.columns == ["users", "feature_01"]
        assert table.get_column("feature_01") == [1, 42]


def test_tables_never_import_pandas(tmp_path: Path) -> None:
    poisoned = tmp_path / "pandas"
    poisoned.mkdir()
    (poisoned / "__init__.py").write_text("raise ImportError('artisync imported pandas')\n")
    script = (
        "import artisync.data_types as d\n"
        "t = d.Table(columns=['a'], data=[[1]])\n"
        "b = d.to_json_bytes(t)\n"
        "assert d.from_json_bytes(b, name='t', read_entry=None, list_entries=None) == t\n"
        "import sys\n"
        "assert 'pandas' not in sys.modules\n"
        "try:\n"
        "    import pandas\n"
        "except ImportError as e:\n"
        "    assert 'artisync imported pandas' in str(e)\n"
        "else:\n"
        "    raise SystemExit('the poisoned pandas was not on the path')\n"
    )
    env_path = os.pathsep.join([str(tmp_path), *sys.path])
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={"PYTHONPATH": env_path},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


# -- entries ------------------------------------------------------------------------------


def test_entry_path_adds_the_type_suffix_once() -> None:
    table, parts = Table(columns=["a"]), PartitionedTable("parts")
    assert entry_path(table, "parts/table_0") == "parts/table_0.table.json"
    assert entry_path(table, "parts/table_0.table.json") == "parts/table_0.table.json"
    assert entry_path(table, "./a//b") == "a/b.table.json"
    assert entry_path(parts, "all") == "all.partitioned-table.json"
    assert entry_path(parts, "all.partitioned-table.json") == "all.partitioned-table.json"
    assert entry_path(parts, "all.table.json") == "all.table.json.partitioned-table.json"


def test_entry_path_refuses_escaping_names_and_other_objects() -> None:
    with pytest.raises(InvalidInputError, match=r"'\.\.'"):
        entry_path(Table(columns=["a"]), "../t")
    with pytest.raises(
        InvalidInputError, match="takes a Table, a PartitionedTable or an Image, not a dict"
    ):
        entry_path({"a": 1}, "t")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="not a list"):
        to_json_bytes([1])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "is not JSON"),
        (b"[1, 2]", "is not a table: its _type is None"),
        (b'{"_type": "audio-file", "path": "x.wav"}', "its _type is 'audio-file'"),
        (b'{"_type": "image-file", "path": "x.png"}', "read with it from a committed artifact"),
        (b'{"_type": "table", "columns": ["a"]}', "needs a 'columns' list and a 'data' list"),
        (
            b'{"_type": "table", "columns": [], "data": [], "log_mode": "INCREMENTAL"}',
            "log_mode 'INCREMENTAL'",
        ),
        (
            b'{"_type": "table", "columns": ["a"], "data": [[null]], "column_types": {"params":'
            b' {"type_map": {"a": {"params": {"serialization_path": {"path": "m.npz"}},'
            b' "wb_type": "ndarray"}}}, "wb_type": "typedDict"}}',
            "separate .npz entry",
        ),
        (b'{"_type": "table", "columns": ["a"], "data": [[1], ["x"]]}', "row 1, column 'a'"),
        (b'{"_type": "partitioned-table"}', "no 'parts_path'"),
    ],
)
def test_an_entry_that_is_not_a_readable_table_says_why(data: bytes, message: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(message)) as caught:
        load(data)
    assert "'t.table.json'" in str(caught.value)


# -- PartitionedTable ---------------------------------------------------------------------


def parted(*parts: tuple[str, Table]) -> FakeArtifact:
    artifact = FakeArtifact({})
    for name, part in parts:
        artifact.add(part, name)
    artifact.add(PartitionedTable("parts"), "all")
    return artifact


def test_partitioned_table_is_stored_as_wandb_stores_it() -> None:
    artifact = parted()
    assert json.loads(artifact.entries["all.partitioned-table.json"]) == {
        "_type": "partitioned-table",
        "parts_path": "parts",
    }
    assert PartitionedTable("parts/") == PartitionedTable("parts")


def test_partitioned_table_reads_its_parts_in_path_order_one_at_a_time() -> None:
    artifact = parted(
        ("parts/table_1", Table(columns=["a"], data=[[3]])),
        ("parts/table_0", Table(columns=["a"], data=[[1], [2]])),
    )
    artifact.entries["parts/README.md"] = b"not a table"
    artifact.entries["parts-old/table_9.table.json"] = to_json_bytes(Table(columns=["b"]))
    loaded = artifact.get("all.partitioned-table.json")
    assert isinstance(loaded, PartitionedTable)
    assert loaded.part_paths == ["parts/table_0.table.json", "parts/table_1.table.json"]
    assert [part.data for part in loaded.parts()] == [[[1], [2]], [[3]]]
    artifact.reads.clear()
    rows = loaded.iterrows()
    assert next(rows) == (0, [1])
    assert artifact.reads == ["parts/table_0.table.json"]
    assert list(rows) == [(1, [2]), (2, [3])]


def test_partitioned_table_to_table_concatenates_its_parts() -> None:
    artifact = parted(
        ("parts/a", Table(columns=["x", "y"], data=[[1, "one"]])),
        ("parts/nested/b", Table(columns=["x", "y"], data=[[2, None]])),
    )
    loaded = artifact.get("all.partitioned-table.json")
    assert isinstance(loaded, PartitionedTable)
    assert loaded.to_table() == Table(columns=["x", "y"], data=[[1, "one"], [2, None]])


def test_partitioned_table_with_no_parts_is_empty() -> None:
    loaded = parted().get("all.partitioned-table.json")
    assert isinstance(loaded, PartitionedTable)
    assert list(loaded.iterrows()) == []
    assert loaded.to_table() == Table(columns=[])


def test_parts_with_other_columns_are_an_error_naming_both() -> None:
    artifact = parted(
        ("parts/t0", Table(columns=["x"], data=[[1]])),
        ("parts/t1", Table(columns=["y"], data=[[2]])),
    )
    loaded = artifact.get("all.partitioned-table.json")
    assert isinstance(loaded, PartitionedTable)
    pattern = r"'parts/t1.table.json' has columns \['y'\] but 'parts/t0.table.json' has \['x'\]"
    with pytest.raises(InvalidInputError, match=pattern):
        list(loaded.iterrows())
    with pytest.raises(InvalidInputError, match=pattern):
        loaded.to_table()


def test_parts_whose_columns_disagree_in_type_name_the_part() -> None:
    artifact = parted(
        ("parts/t0", Table(columns=["x"], data=[[1]])),
        ("parts/t1", Table(columns=["x"], data=[["one"]])),
    )
    loaded = artifact.get("all.partitioned-table.json")
    assert isinstance(loaded, PartitionedTable)
    with pytest.raises(InvalidInputError, match=r"part 'parts/t1\.table\.json'.*column 'x'"):
        loaded.to_table()


def test_a_partitioned_table_not_read_from_an_artifact_cannot_read_parts() -> None:
    with pytest.raises(InvalidInputError, match="not read from an artifact"):
        list(PartitionedTable("parts").iterrows())


def test_a_part_that_is_itself_partitioned_is_refused() -> None:
    artifact = parted()
    artifact.entries["parts/inner.table.json"] = to_json_bytes(PartitionedTable("deeper"))
    loaded = artifact.get("all.partitioned-table.json")
    assert isinstance(loaded, PartitionedTable)
    with pytest.raises(InvalidInputError, match="is a partitioned table itself"):
        list(loaded.parts())
