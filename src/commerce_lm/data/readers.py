"""Streaming readers for Parquet, CSV and JSONL inputs, local or ``gs://``.

Input is read in record batches so memory does not grow with the corpus. Every value arrives as
it was in the file (strings stay strings, numbers stay numbers); validating them is the caller's
job, so a bad row is rejected with a reason instead of failing the whole file. Undecodable bytes
in CSV/JSONL are kept as lone surrogates (``surrogateescape``) for the same reason.
"""

from __future__ import annotations

import fnmatch
import glob
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from commerce_lm import storage

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


class InputError(ValueError):
    """An input file that cannot be used as a whole; the message names the file (and column)."""


def input_format(path: str) -> str:
    """The format of ``path`` from its extension.

    Raises:
        InputError: When the extension is not one of Parquet, CSV or JSONL.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"{path}: unsupported file type {suffix or '(none)'}; expected Parquet, CSV or JSONL")
    return FORMATS[suffix]


def expand(location: str) -> list[str]:
    """The data files a config's ``data`` names: a file, a folder or a glob, local or ``gs://``.

    Raises:
        InputError: When nothing matches, or the location cannot be read.
    """
    if storage.is_gcs(location):
        try:
            files = _expand_gcs(location)
        except Exception as error:  # the client raises many types; the URI is what the user needs
            raise InputError(f"{location}: cannot read: {error}") from None
    elif any(ch in location for ch in "*?["):
        files = sorted(glob.glob(location, recursive=True))
    elif Path(location).is_dir():
        files = sorted(str(p) for p in Path(location).rglob("*") if p.is_file() and not p.name.startswith("."))
    else:
        files = [location] if Path(location).exists() else []
    if not files:
        raise InputError(f"{location}: no such file or no files match")
    return files


def _expand_gcs(location: str) -> list[str]:
    if "*" in location:
        prefix = location.split("*", 1)[0].rsplit("/", 1)[0]
        return [f for f in storage.list_files(prefix) if fnmatch.fnmatch(f, location)]
    if storage.exists(location):
        return [location]
    return storage.list_files(location)


def _columns_of(path: str, fmt: str, local: Path) -> list[str]:
    if fmt == "parquet":
        return list(pq.ParquetFile(local).schema_arrow.names)
    if fmt == "csv":
        return list(pd.read_csv(local, nrows=0, encoding_errors="surrogateescape").columns)
    first = pd.read_json(local, lines=True, nrows=1, encoding_errors="surrogateescape")
    return list(first.columns)


def _check_nonempty(path: str, local: Path) -> None:
    if local.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")


def _parquet_batches(local: Path, columns: list[str], batch_rows: int) -> Iterator[pd.DataFrame]:
    parquet = pq.ParquetFile(local)
    for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns):
        # Binary columns can hold undecodable bytes: decode per value so only bad rows fail.
        for i, field in enumerate(batch.schema):
            if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
                values = [
                    None if v is None else v.decode("utf-8", "surrogateescape") for v in batch.column(i).to_pylist()
                ]
                batch = batch.set_column(i, field.name, pa.array(values, pa.string()))
        yield batch.to_pandas(types_mapper=None)


def iter_batches(
    location: str, columns: list[str], optional: list[str] = (), batch_rows: int = 65536
) -> Iterator[tuple[str, pd.DataFrame]]:
    """Stream ``columns`` of every file ``location`` names, in record batches.

    Args:
        location: File, folder or glob, local or ``gs://``.
        columns: Columns to read; each must exist in every file.
        optional: Columns read where a file has them (e.g. ``lang``, ``split``).
        batch_rows: Rows per batch.

    Yields:
        ``(file, frame)`` pairs; the frame's ``_row`` column is the row's number in its file.

    Raises:
        InputError: For an unsupported, empty or unreadable file, or a missing column (named).
    """
    for path in expand(location):
        fmt = input_format(path)
        with ExitStack() as stack:
            try:
                local = stack.enter_context(storage.local_copy(path))
            except Exception as error:
                raise InputError(f"{path}: cannot read: {error}") from None
            _check_nonempty(path, local)
            try:
                available = _columns_of(path, fmt, local)
            except Exception as error:
                raise InputError(f"{path}: not a readable {fmt} file: {error}") from None
            missing = [c for c in columns if c not in available]
            if missing:
                raise InputError(f"{path}: missing column(s) {missing}; the file has {available}")
            wanted = columns + [c for c in optional if c in available and c not in columns]
            row = 0
            for frame in _read(local, fmt, wanted, batch_rows):
                frame = frame.reset_index(drop=True)
                frame["_row"] = range(row, row + len(frame))
                row += len(frame)
                yield path, frame
            if row == 0:
                raise InputError(f"{path}: file has no rows")


def _read(local: Path, fmt: str, columns: list[str], batch_rows: int) -> Iterator[pd.DataFrame]:
    if fmt == "parquet":
        yield from _parquet_batches(local, columns, batch_rows)
        return
    if fmt == "csv":
        reader = pd.read_csv(
            local,
            usecols=columns,
            dtype=object,
            chunksize=batch_rows,
            encoding_errors="surrogateescape",
            keep_default_na=False,
            na_values=[""],
        )
    else:
        reader = pd.read_json(local, lines=True, chunksize=batch_rows, dtype=False, encoding_errors="surrogateescape")
    with reader:
        for chunk in reader:
            yield chunk[columns]
