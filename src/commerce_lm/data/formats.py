"""Strict record readers for one local Parquet, CSV or JSONL file (found by suffix: :mod:`.input_formats`).

Each reader yields plain dict records in file order. A record carries ``_row`` (its number in the
file, from 0, counting malformed records too) and ``_line`` (the 1-based line where it starts; None
for Parquet). A row the format itself cannot parse (a CSV row with the wrong number of fields, a
JSONL line that is not a JSON object) is yielded as a malformed record: ``_malformed`` holds why and
``_raw`` what the line held, so the caller rejects it instead of guessing its columns. An error
that leaves the rest of the file unreadable (an unclosed quote, a corrupt Parquet page) raises
:class:`FormatError` naming the row or line.

Values arrive as the file typed them, never through floats: CSV cells are strings, JSON numbers
are ``int`` or :class:`decimal.Decimal`, Parquet values are Arrow's Python values. Undecodable bytes
stay visible as lone surrogates (``surrogateescape``), so the caller can reject the row and name the
column.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

# Python's reader refuses a field over 128 KiB; a long description is a text like any other, cut or
# rejected by ``prepare.overlong`` as a Parquet cell is, so only the platform's limit applies.
csv.field_size_limit(2**31 - 1)

# Byte-order marks of encodings that are not UTF-8: such a file is refused unless configured.
FOREIGN_BOMS = {
    codecs.BOM_UTF32_LE: "UTF-32",
    codecs.BOM_UTF32_BE: "UTF-32",
    codecs.BOM_UTF16_LE: "UTF-16",
    codecs.BOM_UTF16_BE: "UTF-16",
}
Record = dict[str, Any]
# Where a user names another encoding: prepare-data reads it from the config, score from its flag.
ENCODING_HINT = "name its encoding (prepare-data: encoding: in the config's dataset; score: --encoding)"


class FormatError(ValueError):
    """The rest of a file cannot be read; the message says where (row or line) and why."""


def check_encoding(local: Path, encoding: str | None) -> str:
    """The codec to read a text file with: UTF-8 (a BOM is skipped) unless ``encoding`` names one.

    Raises:
        FormatError: For a UTF-16/32 file (byte-order mark or NUL bytes) read without ``encoding``.
    """
    if encoding:
        return encoding
    with open(local, "rb") as handle:
        head = handle.read(65536)
    for bom, name in FOREIGN_BOMS.items():
        if head.startswith(bom):
            raise FormatError(f"encoded as {name} (byte-order mark), not UTF-8; {ENCODING_HINT}")
    if b"\x00" in head:
        raise FormatError(f"not UTF-8 text (it holds NUL bytes, as UTF-16 does); {ENCODING_HINT}")
    return "utf-8-sig"


def _malformed(row: int, line: int | None, why: str, raw: str) -> Record:
    return {"_row": row, "_line": line, "_malformed": why, "_raw": raw}


def csv_header(local: Path, encoding: str) -> list[str]:
    """The header row of a CSV file."""
    with open(local, encoding=encoding, errors="surrogateescape", newline="") as handle:
        try:
            return next(csv.reader(handle, strict=True))
        except StopIteration:
            return []
        except csv.Error as error:
            raise FormatError(f"line 1: malformed CSV header: {error}") from None


def _stray_quote(fields: list[str], raw: str) -> bool:
    """Whether a field holds a quote that the row's text does not quote (RFC 4180 forbids it).

    Python's reader keeps such a quote as text. After a broken quote it is how a fragment of other
    rows would pass as a row of its own, so it is rejected instead of read as written.
    """
    return any('"' in field and f'"{field.replace(chr(34), chr(34) * 2)}"' not in raw for field in fields)


def csv_records(local: Path, columns: list[str], encoding: str) -> Iterator[Record]:
    """The CSV rows of ``columns``; a row with the wrong field count or a stray quote is malformed."""
    with open(local, encoding=encoding, errors="surrogateescape", newline="") as handle:
        consumed: list[str] = []  # the raw lines of the record being read

        def lines() -> Iterator[str]:
            for text in handle:
                consumed.append(text)
                yield text

        reader = csv.reader(lines(), strict=True)
        header = next(reader)
        index = {name: header.index(name) for name in columns}
        row = 0
        while True:
            line = reader.line_num + 1
            consumed.clear()
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                if "unexpected end of data" in str(error):  # an unclosed quote swallowed the rest
                    raise FormatError(f"line {line}: unclosed quote runs to the end of the file") from None
                yield _malformed(row, line, f"malformed CSV: {error}", "".join(consumed).rstrip("\r\n"))
                row += 1
                continue
            if not fields:  # a blank line holds no row
                continue
            # The row's raw text is needed only to tell how a quote in a field was written.
            raw = "".join(consumed) if any('"' in field for field in fields) else ""
            if len(fields) != len(header):
                why = f"{len(fields)} fields where the header has {len(header)}"
                yield _malformed(row, line, why, json.dumps(fields, ensure_ascii=False))
            elif raw and _stray_quote(fields, raw):
                yield _malformed(row, line, "a quote inside an unquoted field", raw.rstrip("\r\n"))
            else:
                yield {"_row": row, "_line": line, **{name: fields[i] for name, i in index.items()}}
            row += 1


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def jsonl_records(local: Path, columns: list[str], encoding: str, seen: set[str]) -> Iterator[Record]:
    """The JSON objects of a JSONL file, one per non-blank line, with ``columns`` (absent: None).

    Args:
        local: The file.
        columns: Keys to keep; the schema comes from the config, not from the first record.
        encoding: The text codec.
        seen: Filled with every key of ``columns`` some record has, so the caller can tell a named
            column that no record holds.
    """
    with open(local, encoding=encoding, errors="surrogateescape", newline="\n") as handle:
        row = 0
        for line, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                value = json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
            except ValueError as error:
                yield _malformed(row, line, f"malformed JSON: {error}", text.rstrip("\r\n"))
            else:
                if isinstance(value, dict):
                    seen.update(c for c in columns if c in value)
                    yield {"_row": row, "_line": line, **{c: value.get(c) for c in columns}}
                else:
                    yield _malformed(row, line, f"a JSON {type(value).__name__}, not an object", text.rstrip("\r\n"))
            row += 1


def _parquet(local: Path) -> pq.ParquetFile:
    # Page checksums, where the writer stored them, turn a corrupt page into an error, not a changed value.
    # A buffered stream without pre-buffering reads a column chunk page by page: a large row group
    # is never held whole, so reading takes the same memory whatever the file's row groups.
    return pq.ParquetFile(local, page_checksum_verification=True, buffer_size=1 << 20, pre_buffer=False)


def parquet_columns(local: Path) -> list[str]:
    """The column names of a Parquet file."""
    return list(_parquet(local).schema_arrow.names)


def python_values(column: pa.Array) -> list[Any]:
    """A column's cells as Python values, as the records carry them (bytes decoded, escaped)."""
    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        return [None if v is None else v.decode("utf-8", "surrogateescape") for v in column.to_pylist()]
    return column.to_pylist()


def parquet_records(local: Path, columns: list[str], batch_rows: int) -> Iterator[Record]:
    """The rows of ``columns`` of a Parquet file, read in record batches."""
    batches = _parquet(local).iter_batches(batch_size=batch_rows, columns=columns)
    row = 0
    while True:
        try:
            batch = next(batches)
            values = {name: python_values(batch.column(name)) for name in columns}
        except StopIteration:
            return
        except (OSError, ValueError, pa.ArrowException) as error:  # ValueError: invalid UTF-8 in a string page
            raise FormatError(f"rows from {row}: unreadable Parquet data: {error}") from None
        for i in range(batch.num_rows):
            yield {"_row": row + i, "_line": None, **{name: values[name][i] for name in columns}}
        row += batch.num_rows


def parquet_batches(local: Path, columns: list[str], batch_rows: int) -> Iterator[pa.Table]:
    """``columns`` of a Parquet file as Arrow tables of at most ``batch_rows`` rows, in file order.

    Raises:
        FormatError: For a corrupt page or invalid UTF-8 in a string page, naming the first row.
    """
    batches = _parquet(local).iter_batches(batch_size=batch_rows, columns=columns)
    row = 0
    while True:
        try:
            batch = next(batches)
            for name in columns:  # as parquet_records: invalid UTF-8 surfaces while converting
                if pa.types.is_string(batch.column(name).type) or pa.types.is_large_string(batch.column(name).type):
                    batch.column(name).validate(full=True)
        except StopIteration:
            return
        except (OSError, ValueError, pa.ArrowException) as error:
            raise FormatError(f"rows from {row}: unreadable Parquet data: {error}") from None
        if batch.num_rows:
            yield pa.Table.from_batches([batch])
        row += batch.num_rows
