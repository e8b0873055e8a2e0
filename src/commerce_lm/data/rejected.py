"""Rejected rows, kept as they were with where they came from and why (prepare-data and scoring alike).

Nothing is dropped silently: a rejected row keeps its file, row and line, the reason and the column
at fault, and the row itself as JSON (a malformed line as its raw text, undecodable bytes visible).
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from commerce_lm.data.parse import Row

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
