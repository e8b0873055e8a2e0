"""``prepare-data``: validate, normalise, de-duplicate and split every dataset a run names.

Each dataset is streamed in record batches (memory does not grow with the corpus). The first pass
learns what needs the whole file (label sets, texts with conflicting labels, whether the file has a
validation split); with a ``sample`` cap, a second pass finds the seeded cutoff; the last writes
accepted rows and rejected rows with their reason and column. Every input row ends up accepted,
rejected or (for budgeted runs) sampled out, and ``stats.json`` counts all three.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from commerce_lm import names
from commerce_lm.config import PrepareSection
from commerce_lm.data import readers
from commerce_lm.data.rejected import REJECTED_SCHEMA, rejected_record
from commerce_lm.steps.prepare_data import step as library_step
from commerce_lm.steps.prepare_data.write import ACCEPTED_SCHEMA, CORPUS_SCHEMA, Writer
from tests.commerce_lm.steps.prepare_data.prepare_reference import rules
from tests.commerce_lm.steps.prepare_data.prepare_reference.parse import Dataset, Row, parse


class Preparer:
    """Runs the passes over each dataset and writes the prepared folder."""

    def __init__(self, cfg: PrepareSection, stage: Path) -> None:
        """Prepare into the staging folder ``stage``."""
        self.cfg = cfg
        self.stage = stage
        self.corpus_keys: dict[int, int] = {}  # id digest -> text digest of every corpus document
        self.corpus_writer = Writer(stage / names.CORPUS_TABLE, CORPUS_SCHEMA)
        self.domain_labels: list[str] = []
        self.corpus_splits = rules.CorpusSplits()
        for view, ds in enumerate(library_step.views(cfg)):
            for _, _, row in self._rows(ds):
                if row.reason is None:
                    self.corpus_splits.add(view, row)

    def _rows(self, ds: Dataset) -> Iterator[tuple[str, dict[str, Any], Row]]:
        named, optional = ds.columns()
        spec = ds.spec
        for path, record in readers.iter_records(
            spec.data, named, optional, self.cfg.prepare.batch_rows, spec.encoding
        ):
            yield path, record, parse(ds, record, self.cfg.prepare)

    def scan(self, ds: Dataset) -> None:
        """First pass: label sets per text, label counts, the splits the file uses."""
        ds.input_rows = 0
        for _, _, row in tqdm(self._rows(ds), desc=f"scan {ds.name}", unit=" rows", mininterval=5, leave=False):
            ds.input_rows += 1
            if row.reason is None:
                rules.learn(ds, row)

    def _decided(self, ds: Dataset) -> Iterator[tuple[str, dict[str, Any], Row, tuple[int, int]]]:
        """Every row with the duplicate and conflict rules applied, in file order."""
        dedup = rules.Deduplicator(ds, self.corpus_keys, self.corpus_splits)
        for path, record, row in self._rows(ds):
            keys = dedup.check(row) if row.reason is None else (0, 0)
            yield path, record, row, keys

    def _cutoff(self, ds: Dataset) -> tuple[float, str] | None:
        sample = ds.spec.sample
        if not sample:
            return None
        passing = (row for _, _, row, _ in self._decided(ds) if row.reason is None)
        return rules.sample_cutoff(passing, sample, self.cfg.seed)

    def write(self, ds: Dataset, table_path: Path) -> dict[str, Any]:
        """Last pass: decide every row, write accepted and rejected rows, count them."""
        cutoff = self._cutoff(ds)
        accepted = Writer(table_path, ACCEPTED_SCHEMA[ds.kind])
        rejected = Writer(self.stage / names.REJECTED_DIR / f"{ds.name}.parquet", REJECTED_SCHEMA)
        reasons: Counter = Counter()
        by_split: Counter = Counter()
        sampled_out = 0
        for path, record, row, (id_key, key) in self._decided(ds):
            if row.reason is not None:
                reasons[row.reason] += 1
                rejected.add(rejected_record(record, row, path))
            elif cutoff is not None and (rules.sample_key(self.cfg.seed, row.id), row.id) > cutoff:
                sampled_out += 1
            else:
                row.split = rules.assign(ds, row, self.cfg.prepare, self.corpus_splits)
                by_split[row.split] += 1
                self._accept(ds, row, accepted, id_key, key)
        accepted.close()
        rejected.close()
        return {
            "input_rows": ds.input_rows,
            "accepted_rows": sum(by_split.values()),
            "rejected_rows": sum(reasons.values()),
            "sampled_out_rows": sampled_out,
            "rejected_by_reason": dict(sorted(reasons.items())),
            "accepted_by_split": dict(by_split),
            "source": ds.spec.data,
        }

    def _accept(self, ds: Dataset, row: Row, accepted: Writer, id_key: int, key: int) -> None:
        target = self.domain_labels.index(row.target) if ds.kind == "domain" else row.target
        common = {"id": row.id, "text": row.text, "lang": row.lang, "split": row.split}
        grouped = {"group": row.group_key} if ds.kind == "domain" else {}
        accepted.add({**common, **grouped, ("group" if ds.kind == "similarity" else "label"): target})
        if ds.kind != "domain" and id_key not in self.corpus_keys:
            self.corpus_keys[id_key] = key
            self.corpus_writer.add(common)


def datasets(cfg: PrepareSection) -> list[Dataset]:
    """The library's datasets of ``cfg``, as this step's :class:`Dataset` (which adds its bookkeeping)."""
    return [Dataset(ds.name, ds.kind, ds.spec, allowed_labels=ds.allowed_labels) for ds in library_step.datasets(cfg)]
