"""Streaming readers for Parquet, CSV and JSONL inputs, local or ``gs://``.

Input is read record by record (Parquet in record batches), so memory does not grow with the
corpus. Every value arrives as the file typed it; validating it is the caller's job, so a bad row is
rejected with a reason instead of failing the whole file (see :mod:`commerce_lm.data.formats`). What
makes a whole file unusable (unsupported type, wrong encoding, a named column that is not there, a
corrupt page) raises :class:`InputError` with one line naming the file.
"""

from __future__ import annotations

import fnmatch
import glob
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from commerce_lm import storage
from commerce_lm.data.formats import FormatError, Record
from commerce_lm.data.input_formats import FORMATS, Format


class InputError(ValueError):
    """An input file that cannot be used as a whole; the message names the file (and column).

    The message is always one line: the libraries' own messages can span several.
    """

    def __init__(self, message: str) -> None:
        """Keep ``message`` on one line."""
        super().__init__(" ".join(message.split()))


def input_format(path: str) -> Format:
    """The format of ``path`` from its extension (:data:`commerce_lm.data.input_formats.FORMATS`).

    Raises:
        InputError: When no format has the extension; the message lists the formats.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        *others, last = dict.fromkeys(fmt.title for fmt in FORMATS.values())
        expected = f"{', '.join(others)} or {last}" if others else last
        raise InputError(f"{path}: unsupported file type {suffix or '(none)'}; expected {expected}")
    return FORMATS[suffix]


def _is_data_file(relative: str) -> bool:
    """Hidden and ``_``-prefixed entries (``_SUCCESS``, ``_temporary/``, ``.crc``) are not data."""
    return not any(part.startswith((".", "_")) for part in Path(relative).parts)


def expand(location: str) -> list[str]:
    """The data files a config's ``data`` names: a file, a folder or a glob, local or ``gs://``.

    A path that exists is taken as it is, even when it holds glob characters such as ``[``. In a
    folder, hidden and ``_``-prefixed entries are skipped, as Spark and Hadoop write them.

    Raises:
        InputError: When nothing matches, or the location cannot be read.
    """
    if storage.is_gcs(location):
        try:
            files = _expand_gcs(location)
        except Exception as error:  # the client raises many types; the URI is what the user needs
            raise InputError(f"{location}: cannot read: {error}") from None
    elif Path(location).is_dir():
        root = Path(location)
        files = sorted(str(p) for p in root.rglob("*") if p.is_file() and _is_data_file(str(p.relative_to(root))))
    elif Path(location).exists():
        files = [location]
    elif any(ch in location for ch in "*?["):
        files = sorted(glob.glob(location, recursive=True))
    else:
        files = []
    if not files:
        raise InputError(f"{location}: no such file or no files match")
    return files


def _expand_gcs(location: str) -> list[str]:
    if "*" in location:
        prefix = location.split("*", 1)[0].rsplit("/", 1)[0]
        return [f for f in storage.list_files(prefix) if fnmatch.fnmatch(f, location)]
    if storage.exists(location):
        return [location]
    folder = location.rstrip("/") + "/"
    return [f for f in storage.list_files(location) if _is_data_file(f[len(folder) :])]


def _format_and_columns(path: str, local: Path, encoding: str | None) -> tuple[Format, list[str] | None]:
    """The file's format and its columns (None for JSONL), or an InputError naming the file."""
    if local.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")
    fmt = input_format(path)
    try:
        return fmt, fmt.columns(local, encoding)
    except FormatError as error:
        raise InputError(f"{path}: {error}") from None
    except Exception as error:  # each format's library raises its own types; name the file
        raise InputError(f"{path}: not a readable {fmt.name} file: {error}") from None


def _file_records(
    path: str, local: Path, columns: list[str], optional: list[str], encoding: str | None, batch_rows: int
) -> Iterator[Record]:
    fmt, available = _format_and_columns(path, local, encoding)
    if available is not None:
        missing = [c for c in columns if c not in available]
        if missing:
            raise InputError(f"{path}: missing column(s) {missing}; the file has {available}")
    wanted = columns + [c for c in optional if c not in columns and (available is None or c in available)]
    seen: set[str] = set()
    yield from fmt.records(local, wanted, encoding, batch_rows, seen)
    if available is None:  # the columns are known now that every record is read
        missing = [c for c in columns if c not in seen]
        if missing:
            raise InputError(f"{path}: no record has column(s) {missing}, which the config names")


@contextmanager
def _opened(path: str, encoding: str | None) -> Iterator[Path]:
    """A local copy of ``path``; what fails while reading it becomes a one-line InputError naming it."""
    with ExitStack() as stack:
        try:
            local = stack.enter_context(storage.local_copy(path))
        except Exception as error:
            raise InputError(f"{path}: cannot read: {error}") from None
        try:
            yield local
        except FormatError as error:
            raise InputError(f"{path}, {error}") from None
        except UnicodeError as error:  # a configured codec that does not fit the bytes
            raise InputError(f"{path}: cannot decode as {encoding}: {error}") from None


def iter_records(
    location: str,
    columns: list[str],
    optional: list[str] = (),
    batch_rows: int = 65536,
    encoding: str | None = None,
) -> Iterator[tuple[str, Record]]:
    """Stream ``columns`` of every file ``location`` names, record by record.

    Args:
        location: File, folder or glob, local or ``gs://``.
        columns: Columns to read; each must exist in every file (the config names them).
        optional: Columns read where a file has them (defaulted ``lang``, ``split``); a record of a
            file without one holds None.
        batch_rows: Rows per Parquet record batch.
        encoding: The text codec of CSV/JSONL files; None reads UTF-8 (with or without a BOM) and
            refuses anything else.

    Yields:
        ``(file, record)`` pairs; see :mod:`commerce_lm.data.formats` for ``_row``, ``_line`` and
        malformed records.

    Raises:
        InputError: For an unsupported, empty or unreadable file, or a missing column (named).
    """
    for path in expand(location):
        with _opened(path, encoding) as local:
            rows = 0
            for record in _file_records(path, local, list(columns), list(optional), encoding, batch_rows):
                rows += 1
                yield path, {c: None for c in optional} | record
            if rows == 0:
                raise InputError(f"{path}: file has no rows")


@dataclass
class LoadedFile:
    """Rows of one input file, read once for every dataset that names it.

    Attributes:
        path: The file (local or ``gs://``).
        available: Its columns; None for JSONL, whose keys are known only once read (``seen``).
        table: A batch of a Parquet file's columns as Arrow (``_row`` implied by position), or None.
        records: A CSV or JSONL file's records, as :func:`iter_records` yields them, or None.
        seen: For JSONL, the read columns some record holds.
        read: The columns asked for (those the file has were read).
        first_row: The file row of the batch's first row.
    """

    path: str
    available: list[str] | None
    read: list[str] = field(default_factory=list)
    table: pa.Table | None = None
    records: list[Record] | None = None
    seen: set[str] = field(default_factory=set)
    first_row: int = 0

    @property
    def rows(self) -> int:
        """Rows in the batch, malformed ones included."""
        return self.table.num_rows if self.table is not None else len(self.records)

    def check_columns(self, columns: list[str]) -> None:
        """Raise :class:`InputError` as :func:`iter_records` does when a named column is missing."""
        if self.available is not None:
            missing = [c for c in columns if c not in self.available]
            if missing:
                raise InputError(f"{self.path}: missing column(s) {missing}; the file has {self.available}")
        else:
            missing = [c for c in columns if c not in self.seen]
            if missing:
                raise InputError(f"{self.path}: no record has column(s) {missing}, which the config names")


def load_batches(path: str, columns: list[str], encoding: str | None, batch_rows: int) -> Iterator[LoadedFile]:
    """Read the ``columns`` a file has (every dataset's that names it) once, as :func:`iter_records` would.

    A Parquet file comes in batches of at most ``batch_rows`` rows, so memory does not grow with
    the file; a CSV or JSONL file comes as one batch of all its records (they are parsed row by row).

    Raises:
        InputError: For an unsupported, empty or unreadable file (named), as :func:`iter_records`.
    """
    with _opened(path, encoding) as local:
        fmt, available = _format_and_columns(path, local, encoding)
        wanted = [c for c in columns if available is None or c in available]
        rows, seen = 0, set()
        for batch in fmt.batches(local, wanted, encoding, batch_rows, seen):
            table = batch if isinstance(batch, pa.Table) else None
            records = None if table is not None else batch
            yield LoadedFile(
                path, available, read=list(columns), table=table, records=records, seen=seen, first_row=rows
            )
            rows += len(batch)
    if rows == 0:
        raise InputError(f"{path}: file has no rows")
