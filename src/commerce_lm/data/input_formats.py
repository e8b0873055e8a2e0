"""The input formats, each a :class:`Format` found by its file's suffix in :data:`FORMATS`.

:data:`FORMATS` maps every suffix a data file may have to its format: the only list of them. A new
format is one :class:`Format` subclass here and its suffixes in :data:`FORMATS`; the record readers
it calls live in :mod:`.formats`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pyarrow as pa

from commerce_lm.data.formats import (
    Record,
    check_encoding,
    csv_header,
    csv_records,
    jsonl_records,
    parquet_batches,
    parquet_columns,
    parquet_records,
)


class Format(ABC):
    """One input format: the columns a local file of it has, and its records or batches of them.

    Attributes:
        name: How messages name it ("not a readable csv file").
        title: How the list of supported formats names it.
    """

    name: ClassVar[str]
    title: ClassVar[str]

    @abstractmethod
    def columns(self, local: Path, encoding: str | None) -> list[str] | None:
        """The file's columns; None where they are known only once it is read (JSONL's keys).

        Raises:
            FormatError: For a file that cannot be read at all (an encoding refused, a broken header).
        """

    @abstractmethod
    def records(
        self, local: Path, columns: list[str], encoding: str | None, batch_rows: int, seen: set[str]
    ) -> Iterator[Record]:
        """The records of ``columns`` in file order (see the module's docstring).

        Args:
            local: The file.
            columns: The columns to read (those the file has, where :meth:`columns` knows them).
            encoding: The text codec; None reads UTF-8 and refuses anything else.
            batch_rows: Rows read at a time, where the format reads in batches.
            seen: Filled with every column some record has, where :meth:`columns` is None.
        """

    def batches(
        self, local: Path, columns: list[str], encoding: str | None, batch_rows: int, seen: set[str]
    ) -> Iterator[pa.Table | list[Record]]:
        """The file's rows in batches: by default one list of all its records (none when it has none).

        A text file is parsed row by row, so its records are the batch; a columnar format gives Arrow
        tables instead. The arguments are those of :meth:`records`.
        """
        records = list(self.records(local, columns, encoding, batch_rows, seen))
        if records:
            yield records


class Parquet(Format):
    """Parquet: its schema's columns, read in record batches (Arrow tables of at most ``batch_rows`` rows)."""

    name, title = "parquet", "Parquet"

    def columns(self, local: Path, encoding: str | None) -> list[str] | None:
        """The schema's column names."""
        return parquet_columns(local)

    def records(
        self, local: Path, columns: list[str], encoding: str | None, batch_rows: int, seen: set[str]
    ) -> Iterator[Record]:
        """The rows of ``columns``, read in record batches."""
        return parquet_records(local, columns, batch_rows)

    def batches(
        self, local: Path, columns: list[str], encoding: str | None, batch_rows: int, seen: set[str]
    ) -> Iterator[pa.Table | list[Record]]:
        """``columns`` as Arrow tables of at most ``batch_rows`` rows: memory does not grow with the file."""
        return parquet_batches(local, columns, batch_rows)


class Csv(Format):
    """CSV with a header row."""

    name, title = "csv", "CSV"

    def columns(self, local: Path, encoding: str | None) -> list[str] | None:
        """The header row."""
        return csv_header(local, check_encoding(local, encoding))

    def records(
        self, local: Path, columns: list[str], encoding: str | None, batch_rows: int, seen: set[str]
    ) -> Iterator[Record]:
        """The rows of ``columns``."""
        return csv_records(local, columns, check_encoding(local, encoding))


class Jsonl(Format):
    """JSON Lines: one object per line, whose keys are known only once the file is read."""

    name, title = "jsonl", "JSONL"

    def columns(self, local: Path, encoding: str | None) -> list[str] | None:
        """None: the keys are known once read; a text the codec cannot fit is refused now, before reading."""
        check_encoding(local, encoding)
        return None

    def records(
        self, local: Path, columns: list[str], encoding: str | None, batch_rows: int, seen: set[str]
    ) -> Iterator[Record]:
        """The objects' values of ``columns``, noting in ``seen`` those some object has."""
        return jsonl_records(local, columns, check_encoding(local, encoding), seen)


_PARQUET, _JSONL = Parquet(), Jsonl()
# Every suffix a data file may have, and its format: the only list of them.
FORMATS: dict[str, Format] = {".parquet": _PARQUET, ".pq": _PARQUET, ".csv": Csv(), ".jsonl": _JSONL, ".ndjson": _JSONL}
