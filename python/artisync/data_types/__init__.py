"""Tables stored in artifacts, in the JSON that W&B writes and reads.

``artifact.add(Table(...), "parts/table_0")`` stores ``parts/table_0.table.json``;
``artifact.add(PartitionedTable("parts"), "all")`` stores ``all.partitioned-table.json``,
which names every ``*.table.json`` under ``parts/``. The JSON is what W&B's SDK writes
for a table entry of an artifact (``_type``, ``columns``, ``data``, ``ncols``,
``nrows``, ``column_types``, ``log_mode``; keys sorted), so W&B reads tables made
here and artisync reads tables made by W&B.
"""

from artisync.data_types.entries import (
    PARTITIONED_TABLE_SUFFIX,
    TABLE_SUFFIX,
    entry_path,
    from_json_bytes,
    to_json_bytes,
)
from artisync.data_types.partitioned import PartitionedTable
from artisync.data_types.table import DEFAULT_COLUMNS, Table

__all__ = [
    "DEFAULT_COLUMNS",
    "PARTITIONED_TABLE_SUFFIX",
    "TABLE_SUFFIX",
    "PartitionedTable",
    "Table",
    "entry_path",
    "from_json_bytes",
    "to_json_bytes",
]
