"""The keys the rules compare and the split hashes, computed in DuckDB a batch at a time.

Rows are compared by 128-bit digests of their id and text (the first half of their SHA-256), so
nothing the size of a text is held for the whole dataset. The split hashes are today's, spelled in
SQL: :func:`commerce_lm.data.splits.text_key` is the first 24 hex digits of the SHA-256 of the text
without zero-width marks, and :func:`commerce_lm.data.splits.unit_hash` the first 8 bytes of the
salted key's SHA-256 over 2**64 (an exact power of two, so the division rounds as Python's does).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from commerce_lm.data import splits
from commerce_lm.data.parse import Dataset

SPLITS = pa.array(["train", "validation", "test"])  # a split's code is its place here
POSITION_BITS = 40  # a row's position is (its file's place among the dataset's files) << 40 | its row
_MACROS = [
    # splits.unit_hash: the salted key's SHA-256, its first 8 bytes (16 hex digits) over 2**64
    f"CREATE MACRO unit(k) AS ('0x' || sha256('{splits.SPLIT_SALT}:' || k)[1:16])::UBIGINT::DOUBLE"
    " / 18446744073709551616.0",
    "CREATE MACRO hi(h) AS ('0x' || h[1:16])::UBIGINT",
    "CREATE MACRO lo(h) AS ('0x' || h[17:32])::UBIGINT",
    "CREATE MACRO hi_lo(h, l) AS (h::UHUGEINT << 64) | l::UHUGEINT",  # both halves as one 128-bit value
]


def connect(scratch: Path, memory_mb: int, threads: int) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that spills to ``scratch`` past ``memory_mb``, with the hash macros."""
    db = duckdb.connect(config={"memory_limit": f"{memory_mb}MB", "temp_directory": str(scratch), "threads": threads})
    for macro in _MACROS:
        db.execute(macro).fetchall()
    return db


def do(db: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Run a statement to its end (DuckDB keeps a statement's result until it is read)."""
    db.execute(sql).fetchall()


def literal(path: Path) -> str:
    """``path`` as an SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


def _query(db: duckdb.DuckDBPyConnection, table: pa.Table, sql: str) -> pa.Table:
    """``sql`` over ``table`` (named ``batch``), its rows in the table's order.

    DuckDB scans an Arrow table a record batch per thread: small batches put every core to work.
    """
    batches = pa.Table.from_batches(table.to_batches(max_chunksize=16_384), table.schema)
    return db.from_arrow(batches).query("batch", sql).to_arrow_table()


def text_keys(db: duckdb.DuckDBPyConnection, text: pa.Array) -> pa.Table:
    """Per text: its digest (``tk_hi``, ``tk_lo``); split hashes of its text key (``tu``), of ``val:`` + it (``tv``).

    All of them are of the text's :func:`commerce_lm.data.splits.key_form`.
    """
    return _query(
        db,
        pa.table({"text": pc.replace_substring_regex(text, f"[{splits.KEY_IGNORED}]", "")}),
        "SELECT hi(h) AS tk_hi, lo(h) AS tk_lo, unit(h[1:24]) AS tu, unit('val:' || h[1:24]) AS tv"
        " FROM (SELECT sha256(text) AS h FROM batch)",
    )


def id_keys(db: duckdb.DuckDBPyConnection, ids: pa.Array) -> pa.Table:
    """Per id: its digest (``ik_hi``, ``ik_lo``)."""
    return _query(
        db, pa.table({"id": ids}), "SELECT hi(h) AS ik_hi, lo(h) AS ik_lo FROM (SELECT sha256(id) AS h FROM batch)"
    )


def group_keys(db: duckdb.DuckDBPyConnection, groups: pa.Array) -> pa.Table:
    """Per group key: its digest (``gk_hi``, ``gk_lo``), the split hashes of it (``gu``) and of ``val:`` + it (``gv``).

    All null for a row without a group.
    """
    if groups.null_count == len(groups):  # nothing to hash
        digest = {name: pa.nulls(len(groups), pa.uint64()) for name in ("gk_hi", "gk_lo")}
        return pa.table({**digest, **{name: pa.nulls(len(groups), pa.float64()) for name in ("gu", "gv")}})
    return _query(
        db,
        pa.table({"g": groups}),
        "SELECT hi(sha256(g)) AS gk_hi, lo(sha256(g)) AS gk_lo, unit(g) AS gu, unit('val:' || g) AS gv FROM batch",
    )


def row_keys(
    db: duckdb.DuckDBPyConnection, ds: Dataset, parsed: pa.Table, shared: list[pa.Table], part: int, seed: int
) -> pa.Table:
    """What the rules need of each parsed row of a batch, without its text.

    Args:
        db: The connection of :func:`connect`.
        ds: The dataset the rows are parsed for.
        parsed: The batch's parsed rows (see :mod:`.frame`) with their file ``row``.
        shared: :func:`id_keys`, :func:`text_keys` and :func:`group_keys` of the rows (shared by
            the datasets that read the same columns).
        part: The file's place among the files of ``ds``.
        seed: The run's seed (the ``sample`` order).

    Returns:
        ``pos`` (the row's order in the dataset), ``valid`` (parsed without a reason), ``own`` (the
        file's split as a code, -1 for none), ``target``, the shared keys, and for a dataset with a
        ``sample`` cap also ``su`` (the sample order) and ``id``.
    """
    position = (np.int64(part) << POSITION_BITS) + parsed["row"].to_numpy()
    columns = {
        "pos": pa.array(position),
        "valid": parsed["reason"].is_null(),
        "own": pc.index_in(parsed["split"], SPLITS).fill_null(-1).cast(pa.int8()),
        "target": parsed["target"],
    }
    if ds.spec.sample:
        shared = [
            *shared,
            _query(db, parsed.select(["id"]), f"SELECT unit('sample:{int(seed)}:' || id) AS su, id FROM batch"),
        ]
    for table in shared:
        columns.update(zip(table.column_names, table.columns, strict=True))
    return pa.table(columns)


def dense(positions: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Row positions (see :func:`row_keys`) as indexes 0..n-1 in order; ``offsets``: the rows before each file."""
    return offsets[positions >> POSITION_BITS] + (positions & ((1 << POSITION_BITS) - 1))
