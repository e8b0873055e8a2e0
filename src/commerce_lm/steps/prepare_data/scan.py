"""The first pass: each input file read once, a batch at a time, for every dataset that names it.

Per batch, the text of each set of text columns is normalised once (:func:`.frame.texts`) and
shared by the datasets that read it; each dataset's rows are parsed (:mod:`.frame`); and what the
last pass needs is spilled (:mod:`.spill`) instead of held: the batch's raw columns (for the rows
it rejects), each text once, each dataset's parsed columns, and the keys the rules compare
(:mod:`.keys`), as Parquet for DuckDB.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from commerce_lm.config import PrepareSection
from commerce_lm.data import readers
from commerce_lm.data.parse import Dataset
from commerce_lm.data.readers import LoadedFile
from commerce_lm.progress import progress_bar
from commerce_lm.steps.prepare_data import frame as frames
from commerce_lm.steps.prepare_data import keys
from commerce_lm.steps.prepare_data.spill import Spill


@dataclass
class Batch:
    """A batch of a dataset's rows, and where its parts lie in the spill."""

    path: str  # the input file
    part: int  # the file's place among the dataset's files
    first_row: int  # the file row of its first row
    rows: int
    parsed: int  # its batch in the dataset's spill
    text: tuple[str, int]  # the spill and batch of its texts
    raw: int | None  # its batch in the file's raw spill; None: the file's records are held


@dataclass
class Scanned:
    """A dataset after the first pass."""

    paths: list[str]  # its files, in order
    batches: list[Batch] = field(default_factory=list)
    keys: Path | None = None  # the Parquet file of its rows' keys

    @property
    def input_rows(self) -> int:
        """Rows read for the dataset."""
        return sum(batch.rows for batch in self.batches)

    def offsets(self) -> np.ndarray:
        """Rows of the dataset before each of its files."""
        rows = np.zeros(len(self.paths) + 1, np.int64)
        for batch in self.batches:
            rows[batch.part + 1] += batch.rows
        return np.cumsum(rows)[:-1]


def raw_spill(path: str) -> str:
    """The spill of a file's raw columns."""
    return f"raw:{path}"


def parsed_spill(ds: Dataset) -> str:
    """The spill of a dataset's parsed columns (all but the text)."""
    return f"parsed:{ds.name}"


class Scanner:
    """Reads every file the datasets name, once, into the spill.

    Two stages overlap: the main thread reads a batch and normalises and hashes its texts while a
    second thread parses the previous batch for each dataset and spills it (each on its own DuckDB
    cursor). One batch waits between them, so memory holds two batches at most.
    """

    def __init__(self, cfg: PrepareSection, sets: list[Dataset], spill: Spill, db: duckdb.DuckDBPyConnection) -> None:
        """Scan the files of ``sets`` into ``spill``; ``db`` computes the keys."""
        self.cfg, self.sets, self.spill, self.db = cfg, sets, spill, db
        self.records: dict[str, LoadedFile] = {}  # CSV and JSONL files, held whole for their rejected rows

    def run(self) -> None:
        """The first pass over every file; afterwards each dataset has its :class:`Scanned`."""
        users: dict[str, list[Dataset]] = {}
        for ds in self.sets:
            ds.scanned = Scanned(readers.expand(ds.spec.data))
            for path in ds.scanned.paths:
                users.setdefault(path, []).append(ds)
        cursor = self.db.cursor()
        with ThreadPoolExecutor(1) as pool, progress_bar(None, "prepare-data: read", unit="row") as bar:
            parsing = None
            for path, named_by in users.items():
                columns = list(dict.fromkeys(c for ds in named_by for c in [*ds.columns()[0], *ds.columns()[1]]))
                batches = readers.load_batches(path, columns, named_by[0].spec.encoding, self.cfg.prepare.batch_rows)
                for loaded in batches:
                    for ds in named_by:
                        loaded.check_columns(ds.columns()[0])
                    raw, texts = self._texts(loaded, named_by)
                    if parsing:
                        parsing.result()
                    parsing = pool.submit(self._datasets, cursor, loaded, named_by, raw, texts)
                    bar.update(loaded.rows)
            if parsing:
                parsing.result()
        cursor.close()
        self.spill.finish()
        for ds in self.sets:
            ds.scanned.batches.sort(key=lambda batch: (batch.part, batch.first_row))

    def _texts(self, loaded: LoadedFile, named_by: list[Dataset]) -> tuple[int | None, dict[tuple, tuple]]:
        """Spill the batch's raw columns; normalise, spill and hash each plain dataset's text columns once.

        Returns:
            The batch's place in the raw spill (None: the file's records are held), and per text
            columns: the spill and batch of the texts, the texts and their keys.
        """
        texts: dict[tuple, tuple] = {}
        if loaded.table is None:
            self.records[loaded.path] = loaded
            return None, texts
        raw = self.spill.append(raw_spill(loaded.path), loaded.table)
        for ds in named_by:
            columns = ("text", *ds.spec.text)
            if frames.plain(ds, loaded) and columns not in texts:
                text = frames.texts(ds, loaded, self.cfg.prepare)
                name = f"text:{loaded.path}:{columns}"
                index = self.spill.append(name, pa.table({"text": text[0]}))
                texts[columns] = (name, index, text, keys.text_keys(self.db, text[0]))
        return raw, texts

    def _datasets(
        self,
        db: duckdb.DuckDBPyConnection,
        loaded: LoadedFile,
        named_by: list[Dataset],
        raw: int | None,
        texts: dict[tuple, tuple],
    ) -> None:
        """Parse the batch for each dataset naming its file; spill the parsed columns and the keys."""
        shared: dict[tuple, pa.Table] = {}  # id and group keys of the datasets reading the same columns
        for ds in named_by:
            if frames.plain(ds, loaded):
                name, index, text, text_keys = texts[("text", *ds.spec.text)]
                parsed = frames.by_columns(ds, loaded, text)
                found = [
                    _shared(shared, ("id", ds.spec.id), keys.id_keys, db, parsed["id"]),
                    text_keys,
                    _shared(shared, ("group", *ds.group_columns()), keys.group_keys, db, parsed["group_key"]),
                ]
            else:
                parsed = frames.by_rows(ds, loaded, self.cfg.prepare)
                name = f"text:{loaded.path}:{ds.name}"
                index = self.spill.append(name, parsed.select(["text"]))
                found = [
                    keys.id_keys(db, parsed["id"]),
                    keys.text_keys(db, parsed["text"]),
                    keys.group_keys(db, parsed["group_key"]),
                ]
            rows = pa.array(range(loaded.first_row, loaded.first_row + loaded.rows), pa.int64())
            parsed = parsed.drop_columns(["text"]).append_column("row", rows)
            part = ds.scanned.paths.index(loaded.path)
            ds.scanned.keys = self.spill.append_parquet(
                f"keys:{ds.name}", keys.row_keys(db, ds, parsed, found, part, self.cfg.seed)
            )
            spilled = self.spill.append(parsed_spill(ds), parsed)
            ds.scanned.batches.append(
                Batch(loaded.path, part, loaded.first_row, loaded.rows, spilled, (name, index), raw)
            )


def _shared(
    shared: dict[tuple, pa.Table], columns: tuple, compute: Callable, db: duckdb.DuckDBPyConnection, values: pa.Array
) -> pa.Table:
    """``compute(db, values)``, once per batch for the datasets reading the same ``columns``."""
    if columns not in shared:
        shared[columns] = compute(db, values)
    return shared[columns]
