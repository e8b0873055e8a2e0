"""Scratch files of one prepare-data run: Arrow tables written a batch at a time, read back by batch.

The first pass writes what the last needs (each file's raw columns for the rows it rejects, each
text once, each dataset's parsed columns) here instead of holding it, so memory does not grow with
the corpus. Arrow IPC files are written as they lie in memory and read back batch by batch.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

# LZ4 frames: a few times smaller on disk (texts, ids) for little CPU, at gigabytes per second.
_IPC = pa.ipc.IpcWriteOptions(compression="lz4")


class Spill:
    """Named Arrow IPC files in a scratch folder, each a list of batches; and Parquet files for DuckDB."""

    def __init__(self, folder: Path) -> None:
        """Write under ``folder`` (removed by the caller)."""
        self.folder = folder
        self._files: dict[str, Path] = {}
        self._writers: dict[str, pa.ipc.RecordBatchFileWriter | pq.ParquetWriter] = {}
        self._readers: dict[str, tuple[pa.OSFile, pa.ipc.RecordBatchFileReader]] = {}
        self._batches: dict[str, int] = {}
        self._lock = threading.Lock()

    def _path(self, name: str, suffix: str) -> Path:
        with self._lock:  # two threads may name new files at once
            if name not in self._files:  # names hold file paths: the files are numbered instead
                self._files[name] = self.folder / f"{len(self._files)}{suffix}"
            return self._files[name]

    def append(self, name: str, table: pa.Table) -> int:
        """Add ``table`` to ``name`` as one batch; returns the batch's index."""
        writer = self._writers.get(name)
        if writer is None:
            writer = pa.ipc.new_file(self._path(name, ".arrow"), table.schema, options=_IPC)
            self._writers[name] = writer
        writer.write_batch(table.combine_chunks().to_batches()[0])
        index = self._batches.get(name, 0)
        self._batches[name] = index + 1
        return index

    def append_parquet(self, name: str, table: pa.Table) -> Path:
        """Add ``table`` to the Parquet file ``name`` (for DuckDB to read); returns its path."""
        path = self._path(name, ".parquet")
        if name not in self._writers:
            # Read once, soon: neither compressed, nor dictionary-encoded, nor with statistics.
            self._writers[name] = pq.ParquetWriter(
                path, table.schema, compression="none", use_dictionary=False, write_statistics=False
            )
        self._writers[name].write_table(table)
        return path

    def finish(self) -> None:
        """Close every file written so far: they can be read now."""
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    def batch(self, name: str, index: int) -> pa.Table:
        """Batch ``index`` of ``name``."""
        if name not in self._readers:
            source = pa.OSFile(str(self._files[name]))
            self._readers[name] = source, pa.ipc.open_file(source)
        return pa.Table.from_batches([self._readers[name][1].get_batch(index)])

    def close(self) -> None:
        """Close the readers (the files stay until the folder goes)."""
        self.finish()
        for source, _ in self._readers.values():
            source.close()
        self._readers.clear()
