"""Parquet tables of prepare-data: the accepted rows per dataset, the corpus, the rejected rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from commerce_lm.steps.prepare_data.parse import Row

_COMMON = [("id", pa.string()), ("text", pa.string()), ("lang", pa.string()), ("split", pa.string())]
ACCEPTED_SCHEMA = {
    "domain": pa.schema([*_COMMON, ("label", pa.int64())]),
    "task": pa.schema([*_COMMON, ("label", pa.int64())]),
    "similarity": pa.schema([*_COMMON, ("group", pa.string())]),
}
CORPUS_SCHEMA = pa.schema(_COMMON)
REJECTED_SCHEMA = pa.schema(
    [
        ("file", pa.string()),
        ("row", pa.int64()),
        ("line", pa.int64()),
        ("reason", pa.string()),
        ("column", pa.string()),
        ("input", pa.string()),
    ]
)


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

    def _flush(self) -> None:
        if not self.buffer:
            return
        table = pa.Table.from_pylist(self.buffer, schema=self.schema)
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(self.path, self.schema)
        self.writer.write_table(table)
        self.buffer = []

    def close(self) -> None:
        """Write what is buffered; an empty table still gets its columns."""
        self._flush()
        if self.writer is not None:
            self.writer.close()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(self.schema.empty_table(), self.path)


def _printable(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, str):  # undecodable bytes survive as visible escapes
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, list | dict):  # nested: as escaped JSON text, lone surrogates included
        return json.dumps(value, default=str)
    return str(value)  # Decimal, dates: their exact spelling


def rejected_record(record: dict[str, Any], row: Row, path: str) -> dict[str, Any]:
    """The input row as it was (JSON; a malformed line as its raw text), where it is, and why."""
    if "_malformed" in record:
        kept: Any = {"error": record["_malformed"], "raw": _printable(record["_raw"])}
    else:
        kept = {k: _printable(v) for k, v in record.items() if not k.startswith("_")}
    return {
        "file": path,
        "row": int(record["_row"]),
        "line": record["_line"],
        "reason": row.reason,
        "column": row.column,
        "input": json.dumps(kept, ensure_ascii=False),
    }
