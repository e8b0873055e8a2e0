"""The passes of prepare-data over every dataset a run names, on Arrow columns.

Each input file is read once (:class:`.files.Files`), however many datasets name it, and its
normalised text is shared by them. The first pass parses a dataset into a frame (:mod:`.frame`)
and learns what needs the whole dataset (label sets, conflicting texts, whether the file has a
validation split); the last applies the duplicate rules, the ``sample`` cap and the split
(:mod:`.decide`) and writes accepted rows and rejected rows with their reason and column. Every
input row ends up accepted, rejected or (for budgeted runs) sampled out, and ``stats.json`` counts
all three.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from commerce_lm import names
from commerce_lm.config import PrepareSection
from commerce_lm.data import values
from commerce_lm.data.parse import Dataset, Row
from commerce_lm.data.rejected import REJECTED_SCHEMA, rejected_record
from commerce_lm.steps.prepare_data import decide, rules
from commerce_lm.steps.prepare_data.files import Files
from commerce_lm.steps.prepare_data.frame import record
from commerce_lm.steps.prepare_data.write import ACCEPTED_SCHEMA, CORPUS_SCHEMA, Writer


class Preparer:
    """Runs the passes over each dataset and writes the prepared folder."""

    def __init__(self, cfg: PrepareSection, stage: Path) -> None:
        """Prepare into the staging folder ``stage``."""
        self.cfg = cfg
        self.stage = stage
        self.files = Files(cfg, datasets(cfg))
        self.corpus = CORPUS_SCHEMA.empty_table().select(["id", "text"])  # every corpus document so far
        self.corpus_writer = Writer(stage / names.CORPUS_TABLE, CORPUS_SCHEMA)
        self.domain_labels: list[str] = []
        self.split_memo: dict[str, float] = {}  # split key -> its hash, shared by datasets

    @property
    def corpus_rows(self) -> int:
        """Documents in the corpus table."""
        return self.corpus.num_rows

    def scan(self, ds: Dataset) -> None:
        """First pass: parse ``ds`` into its frame; label sets per text, label counts, the file's splits."""
        ds.frame, texts = self.files.frame(ds)
        ds.input_rows = ds.frame.num_rows
        decide.learn(ds, ds.frame, texts)

    def write(self, ds: Dataset, table_path: Path) -> dict[str, Any]:
        """Last pass: decide every row, write accepted and rejected rows, count them."""
        frame = ds.frame
        reasons, kept = decide.duplicates(ds, frame, self.corpus)
        chosen = decide.sampled(ds, frame, kept, self.cfg.seed)
        accepted = frame.filter(pa.array(chosen))
        split = decide.assign(ds, accepted, np.flatnonzero(chosen), self.cfg.prepare, self.split_memo)
        accepted = accepted.set_column(3, "split", split)
        self._write_accepted(ds, accepted, table_path)
        rejected = [i for i, reason in enumerate(reasons) if reason is not None]
        self._write_rejected(ds, frame, rejected, reasons)
        self.files.done(ds)
        ds.frame = ds.codes = None
        by_split = pc.value_counts(accepted["split"].combine_chunks())  # in order of first appearance
        counted = np.unique(np.array([reasons[i] for i in rejected], dtype=str), return_counts=True)
        return {
            "input_rows": ds.input_rows,
            "accepted_rows": accepted.num_rows,
            "rejected_rows": len(rejected),
            "sampled_out_rows": int(kept.sum() - chosen.sum()),
            "rejected_by_reason": {str(k): int(v) for k, v in zip(*counted, strict=True)},
            "accepted_by_split": dict(
                zip(by_split.field("values").to_pylist(), by_split.field("counts").to_pylist(), strict=True)
            ),
            "source": ds.spec.data,
        }

    def _write_accepted(self, ds: Dataset, accepted: pa.Table, table_path: Path) -> None:
        target = accepted["target"]
        if ds.kind == "domain":
            target = pc.index_in(target, pa.array(self.domain_labels, pa.string())).cast(pa.int64())
        common = accepted.select(["id", "text", "lang", "split"])
        table = common.append_column("group" if ds.kind == "similarity" else "label", target)
        writer = Writer(table_path, ACCEPTED_SCHEMA[ds.kind])
        writer.add_table(table.cast(ACCEPTED_SCHEMA[ds.kind]))
        writer.close()
        if ds.kind != "domain":
            new = common.filter(pc.invert(pc.is_in(common["id"], self.corpus["id"])))
            self.corpus = pa.concat_tables([self.corpus, new.select(["id", "text"])])
            self.corpus_writer.add_table(new.cast(CORPUS_SCHEMA))

    def _write_rejected(self, ds: Dataset, frame: pa.Table, rows: list[int], reasons: list[Any]) -> None:
        writer = Writer(self.stage / names.REJECTED_DIR / f"{ds.name}.parquet", REJECTED_SCHEMA)
        where = frame.select(["file", "row", "column"]).take(pa.array(rows, pa.int64())).to_pydict()
        spec = ds.spec
        for i, row, file, column in zip(rows, where["row"], where["file"], where["column"], strict=True):
            reason = reasons[i]
            if reason in decide.RULE_REASONS:  # found by the rules, not while parsing
                column = spec.id if "id" in reason else spec.text[0]
            loaded = self.files.loaded(file)
            writer.add(rejected_record(record(ds, loaded, row), Row("", reason=reason, column=column), file))
        writer.close()


def datasets(cfg: PrepareSection) -> list[Dataset]:
    """Every dataset ``cfg`` names, the domain corpus (when there is one) first."""
    labels = cfg.domain.labels if cfg.domain else None
    allowed = {values.canonical(label) for label in labels} if labels else None
    return [
        *([Dataset("domain", "domain", cfg.domain, allowed_labels=allowed)] if cfg.domain else []),
        *(Dataset(f"task-{t.name}", "task", t) for t in cfg.tasks),
        *(Dataset(f"similarity-{s.name}", "similarity", s) for s in cfg.similarity),
    ]


def domain_labels(cfg: PrepareSection, ds: Dataset) -> list[str]:
    """The domain classes in class-id order: the config's, or those found, numbers first."""
    if cfg.domain.labels:
        return [values.canonical(label) for label in cfg.domain.labels]
    return sorted(ds.label_counts, key=rules.domain_label_order)


def table_path(stage: Path, ds: Dataset) -> Path:
    """Where the accepted rows of ``ds`` go."""
    if ds.kind == "domain":
        return stage / names.DOMAIN_TABLE
    folder = names.TASKS_DIR if ds.kind == "task" else names.SIMILARITY_DIR
    return stage / folder / f"{ds.spec.name}.parquet"
