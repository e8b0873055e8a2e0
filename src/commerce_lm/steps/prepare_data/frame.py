"""One dataset's rows of one file, parsed as whole columns: canonical values, or a reason.

The result has, per input row: ``id``, ``text``, ``lang``, ``split``, ``target`` (label or group),
``group_key`` and, for a rejected row, ``reason`` and ``column``. A Parquet file whose columns are
plain (strings, integers) is parsed with :mod:`.cells`; any other file (CSV, JSONL, or Parquet with
floats, booleans, bytes or nested values) row by row with :func:`commerce_lm.data.parse.parse`,
which defines the rules; both give the same values.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from commerce_lm.config import PrepareConfig
from commerce_lm.cores import usable as usable_cores
from commerce_lm.data import formats, values
from commerce_lm.data.parse import SPLIT_ALIASES, Dataset, parse
from commerce_lm.data.readers import LoadedFile, Record
from commerce_lm.steps.prepare_data import cells

NULL = pa.scalar(None, pa.string())
SLICE = 65_536  # rows whose text is normalised at a time (per thread)


def target_type(ds: Dataset) -> pa.DataType:
    """The type of ``target``: a 0/1 label for a task, a canonical string otherwise."""
    return pa.int64() if ds.kind == "task" else pa.string()


def schema(ds: Dataset) -> pa.Schema:
    """The columns of a parsed frame."""
    strings = ["id", "text", "lang", "split"]
    return pa.schema(
        [*((name, pa.string()) for name in strings), ("target", target_type(ds))]
        + [(name, pa.string()) for name in ("group_key", "reason", "column")]
    )


def record(ds: Dataset, loaded: LoadedFile, row: int) -> Record:
    """Row ``row`` of the batch ``loaded`` as :func:`commerce_lm.data.readers.iter_records` gives it to ``ds``."""
    named, optional = ds.columns()
    if loaded.records is not None:
        found = loaded.records[row]
        kept = found if "_malformed" in found else {k: found.get(k) for k in ("_row", "_line", *named, *optional)}
        return {c: None for c in optional} | kept
    present = [c for c in named + optional if c in loaded.table.column_names]  # named first, as read
    cells_of = {name: formats.python_values(loaded.table.column(name).slice(row, 1))[0] for name in present}
    return {c: None for c in optional} | {"_row": loaded.first_row + row, "_line": None, **cells_of}


def by_rows(ds: Dataset, loaded: LoadedFile, prep: PrepareConfig) -> pa.Table:
    """Parse any file for ``ds`` row by row, with :func:`commerce_lm.data.parse.parse` (the rules' definition)."""
    rows = [parse(ds, record(ds, loaded, i), prep) for i in range(loaded.rows)]
    columns: dict[str, Any] = {
        key: [getattr(row, key) for row in rows] for key in ("id", "text", "lang", "split", "group_key")
    }
    columns["target"] = [row.target for row in rows]
    columns["reason"] = [row.reason for row in rows]
    columns["column"] = [row.column for row in rows]
    return pa.table(columns, schema=schema(ds))


def plain(ds: Dataset, loaded: LoadedFile) -> bool:
    """Whether every column ``ds`` reads from ``loaded`` has a type :mod:`.cells` covers."""
    if loaded.table is None:
        return False
    named, optional = ds.columns()
    read = [c for c in named + optional if c in loaded.table.column_names]
    return all(cells.is_plain_type(loaded.table.schema.field(c).type) for c in read)


def _texts(ds: Dataset, rows: pa.Table, prep: PrepareConfig) -> tuple[pa.Array, pa.Array]:
    parts = [cells.as_strings(rows.column(c).combine_chunks()) for c in ds.spec.text]
    joined = parts[0]
    for part in parts[1:]:  # the non-null parts joined by newlines (join's "skip" drops all-null rows)
        both = pc.binary_join_element_wise(joined, part, "\n")
        joined = pc.if_else(part.is_null(), joined, pc.if_else(joined.is_null(), part, both))
    text = cells.normalize(joined.fill_null(""))
    too_long = pc.greater(pc.utf8_length(text), prep.max_text_chars)
    reasons = pc.if_else(cells.blank(text), "empty_text", NULL)
    if prep.overlong == "reject":
        reasons = pc.if_else(pc.and_(reasons.is_null(), too_long), "text_too_long", reasons)
    else:
        text = pc.if_else(too_long, pc.utf8_slice_codeunits(text, 0, prep.max_text_chars), text)
    return text, reasons


def texts(ds: Dataset, loaded: LoadedFile, prep: PrepareConfig) -> tuple[pa.Array, pa.Array]:
    """The normalised text of every row and its reason (``empty_text``, ``text_too_long``) or null.

    Slices of at most :data:`SLICE` rows, at least one per core, run on the process's cores
    (Arrow's kernels release the GIL), so the intermediate columns stay small.
    """
    table = loaded.table.select(list(ds.spec.text))
    cores = usable_cores()
    size = max(1, min(SLICE, -(-table.num_rows // cores)))
    slices = [table.slice(start, size) for start in range(0, table.num_rows, size)]
    if len(slices) <= 1:
        return _texts(ds, table, prep)
    with ThreadPoolExecutor(cores) as pool:
        done = list(pool.map(lambda rows: _texts(ds, rows, prep), slices))
    return pa.concat_arrays([text for text, _ in done]), pa.concat_arrays([reason for _, reason in done])


def _column(loaded: LoadedFile, name: str | None) -> pa.Array:
    if name and name in loaded.table.column_names:
        column = loaded.table.column(name).combine_chunks()
        return column.cast(pa.string()) if pa.types.is_large_string(column.type) else column
    return pa.nulls(loaded.rows, pa.string())


def _target(ds: Dataset, loaded: LoadedFile) -> tuple[pa.Array, pa.Array]:
    column = _column(loaded, ds.target_column)
    if ds.kind == "task":
        return cells.binary_labels(column)
    if ds.kind == "domain":
        return cells.class_labels(column, ds.allowed_labels)
    return cells.groups(column), pa.nulls(loaded.rows, pa.string())


def by_columns(ds: Dataset, loaded: LoadedFile, text: tuple[pa.Array, pa.Array]) -> pa.Table:
    """Parse a plain Parquet file for ``ds``; ``text`` is :func:`texts` (shared by datasets)."""
    spec = ds.spec
    raw_id = _column(loaded, spec.id)
    ids = cells.as_strings(raw_id) if pa.types.is_integer(raw_id.type) else cells.strip(cells.as_strings(raw_id))
    raw_lang = _column(loaded, spec.lang)
    lang = pc.if_else(cells.missing(raw_lang), "und", cells.canonical(raw_lang, stripped=True))
    not_language = pc.invert(pc.match_substring_regex(lang, f"^(?:{values.LANGUAGE.pattern})$"))
    split = _column(loaded, spec.split)
    splits = pc.if_else(cells.missing(split), NULL, cells.split_names(split, SPLIT_ALIASES))
    target, target_reason = _target(ds, loaded)
    checks = [  # (reason, column) in the order parse() tries them: the first one found is the row's
        (pc.if_else(pc.or_(cells.missing(raw_id), pc.equal(ids, "").fill_null(True)), "missing_id", NULL), spec.id),
        (text[1], spec.text[0]),
        (pc.if_else(not_language, "invalid_value", NULL), spec.lang),
        (pc.if_else(pc.and_(pc.invert(cells.missing(split)), splits.is_null()), "invalid_split", NULL), spec.split),
        (target_reason, ds.target_column),
    ]
    reason = column = pa.nulls(loaded.rows, pa.string())
    for found, name in reversed(checks):
        reason = pc.if_else(found.is_valid(), found, reason)
        column = pc.if_else(found.is_valid(), pa.scalar(name, pa.string()), column)
    group_columns = {name: _column(loaded, name) for name in ds.group_columns()}
    columns = {
        "id": ids,
        "text": text[0],
        "lang": lang,
        "split": splits,
        "target": target,
        "group_key": cells.group_keys(group_columns, loaded.rows),
        "reason": reason,
        "column": column,
    }
    return pa.table(columns, schema=schema(ds))
