"""Tables and images stored in artifacts, in the JSON that W&B writes and reads.

``artifact.add(Table(...), "parts/table_0")`` stores ``parts/table_0.table.json``;
``artifact.add(PartitionedTable("parts"), "all")`` stores ``all.partitioned-table.json``,
which names every ``*.table.json`` under ``parts/``. The JSON is what W&B's SDK writes
for a table entry of an artifact (``_type``, ``columns``, ``data``, ``ncols``,
``nrows``, ``column_types``, ``log_mode``; keys sorted), so W&B reads tables made
here and artisync reads tables made by W&B. An :class:`Image` in a cell (or added on
its own, as ``<name>.image-file.json``) stores its file under ``media/images/``, named
as W&B names it.
"""

from artisync.data_types.entries import (
    IMAGE_SUFFIX,
    PARTITIONED_TABLE_SUFFIX,
    SUFFIXES,
    TABLE_SUFFIX,
    Stored,
    entry_path,
    from_json_bytes,
    to_json_bytes,
)
from artisync.data_types.image import Image
from artisync.data_types.partitioned import PartitionedTable
from artisync.data_types.table import DEFAULT_COLUMNS, Table

__all__ = [
    "DEFAULT_COLUMNS",
    "IMAGE_SUFFIX",
    "PARTITIONED_TABLE_SUFFIX",
    "SUFFIXES",
    "TABLE_SUFFIX",
    "Image",
    "PartitionedTable",
    "Stored",
    "Table",
    "entry_path",
    "from_json_bytes",
    "to_json_bytes",
]
