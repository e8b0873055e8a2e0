"""Parquet tables of prepare-data: the accepted rows per dataset and the corpus (rejected rows: data.rejected)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

_COMMON = [("id", pa.string()), ("text", pa.string()), ("lang", pa.string()), ("split", pa.string())]
ACCEPTED_SCHEMA = {
    # A domain row's split group ("column:value", null for none): group_contrastive's positives.
    "domain": pa.schema([*_COMMON, ("group", pa.string()), ("label", pa.int64())]),
    "task": pa.schema([*_COMMON, ("label", pa.int64())]),
    "similarity": pa.schema([*_COMMON, ("group", pa.string())]),
}
CORPUS_SCHEMA = pa.schema(_COMMON)


class Writer:
    """Appends rows to a Parquet file in row groups, so nothing is held for the whole corpus."""

    def __init__(self, path: Path, schema: pa.Schema, rows_per_group: int = 50_000) -> None:
        """Write ``schema`` rows to ``path``, ``rows_per_group`` at a time."""
        self.path, self.schema, self.rows_per_group = path, schema, rows_per_group
        self.buffer: list[dict[str, Any]] = []
        self.writer: pq.ParquetWriter | None = None

    def add(self, row: dict[str, Any]) -> None:
        """Append one row."""
        self.buffer.append(row)
        if len(self.buffer) >= self.rows_per_group:
            self._flush()

    def add_table(self, table: pa.Table) -> None:
        """Append the rows of ``table`` (of this writer's schema), after any added one by one."""
        self._flush()
        for start in range(0, table.num_rows, self.rows_per_group):
            self._write(table.slice(start, self.rows_per_group))

    def _write(self, table: pa.Table) -> None:
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(self.path, self.schema)
        self.writer.write_table(table)

    def _flush(self) -> None:
        if not self.buffer:
            return
        self._write(pa.Table.from_pylist(self.buffer, schema=self.schema))
        self.buffer = []

    def close(self) -> None:
        """Write what is buffered; an empty table still gets its columns."""
        self._flush()
        if self.writer is not None:
            self.writer.close()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(self.schema.empty_table(), self.path)
