"""The last pass: a dataset's accepted rows, its new corpus documents and its rejected rows, batch by batch.

Each batch of parsed rows is read back from the spill with its texts, joined with the rules'
:class:`.decide.Decisions` by position, and written; the raw columns are read back only for a
batch that holds rejected rows.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from commerce_lm import names
from commerce_lm.data.parse import Dataset, Row
from commerce_lm.data.readers import LoadedFile
from commerce_lm.data.rejected import REJECTED_SCHEMA, rejected_record
from commerce_lm.steps.prepare_data import frame, keys
from commerce_lm.steps.prepare_data.decide import RULE_REASONS, Decisions, rule_column
from commerce_lm.steps.prepare_data.scan import Batch, Scanner, parsed_spill, raw_spill
from commerce_lm.steps.prepare_data.write import ACCEPTED_SCHEMA, CORPUS_SCHEMA, Writer


class Output:
    """Writes every dataset's tables into the staging folder, and the corpus across them."""

    def __init__(self, stage: Path, scanner: Scanner) -> None:
        """Write into ``stage`` what ``scanner`` spilled."""
        self.stage, self.scanner, self.spill = stage, scanner, scanner.spill
        self.corpus = Writer(stage / names.CORPUS_TABLE, CORPUS_SCHEMA)
        self.corpus_rows = 0

    def write(self, ds: Dataset, decisions: Decisions, table_path: Path, labels: list[str]) -> dict[str, Any]:
        """Write the tables of ``ds`` and return its counts for ``stats.json``."""
        accepted = Writer(table_path, ACCEPTED_SCHEMA[ds.kind])
        rejected = Writer(self.stage / names.REJECTED_DIR / f"{ds.name}.parquet", REJECTED_SCHEMA)
        reasons: Counter = Counter()
        by_split: dict[str, int] = {}  # in order of first appearance
        start = 0
        for batch in ds.scanned.batches:
            parsed = self.spill.batch(parsed_spill(ds), batch.parsed)
            rows = slice(start, start + batch.rows)
            start += batch.rows
            split = decisions.split[rows]
            taken = split >= 0
            text = self.spill.batch(*batch.text).column("text")
            table = pa.table({"id": parsed["id"], "text": text, "lang": parsed["lang"]}).filter(pa.array(taken))
            table = table.append_column("split", keys.SPLITS.take(pa.array(split[taken])))
            target = parsed["target"].filter(pa.array(taken))
            if ds.kind == "domain":
                table = table.append_column("group", parsed["group_key"].filter(pa.array(taken)))
                target = pc.index_in(target, pa.array(labels, pa.string())).cast(pa.int64())
            accepted.add_table(table.append_column(ACCEPTED_SCHEMA[ds.kind].names[-1], target).cast(accepted.schema))
            if ds.kind != "domain":
                new = table.filter(pa.array(decisions.new[rows][taken]))
                self.corpus.add_table(new.cast(CORPUS_SCHEMA))
                self.corpus_rows += new.num_rows
            values, first, counts = np.unique(split[taken], return_index=True, return_counts=True)
            for i in np.argsort(first):
                name = keys.SPLITS[values[i]].as_py()
                by_split[name] = by_split.get(name, 0) + int(counts[i])
            reasons.update(self._rejected(ds, batch, parsed, decisions.rule[rows], rejected))
        accepted.close()
        rejected.close()
        accepted_rows = int((decisions.split >= 0).sum())
        return {
            "input_rows": ds.scanned.input_rows,
            "accepted_rows": accepted_rows,
            "rejected_rows": sum(reasons.values()),
            "sampled_out_rows": decisions.kept - accepted_rows,
            "rejected_by_reason": dict(sorted(reasons.items())),
            "accepted_by_split": by_split,
            "source": ds.spec.data,
        }

    def _rejected(self, ds: Dataset, batch: Batch, parsed: pa.Table, rule: np.ndarray, writer: Writer) -> Counter:
        """Write the batch's rejected rows as they were read, with reason and column; count them by reason."""
        found = parsed["reason"].to_numpy(zero_copy_only=False)
        rows = np.flatnonzero((found != None) | (rule > 0))  # noqa: E711 (an element-wise test)
        if not rows.size:
            return Counter()
        loaded = self._raw(batch)
        where = parsed.select(["column"]).take(pa.array(rows)).column("column").to_pylist()
        counted: Counter = Counter()
        for row, column in zip(rows.tolist(), where, strict=True):
            reason = found[row]
            if reason is None:  # found by the rules, not while parsing
                reason = RULE_REASONS[rule[row] - 1]
                column = rule_column(ds, reason)
            record = frame.record(ds, loaded, row)  # a held file is one batch: its rows are the batch's
            writer.add(rejected_record(record, Row("", reason=reason, column=column), batch.path))
            counted[reason] += 1
        return counted

    def _raw(self, batch: Batch) -> LoadedFile:
        """The batch's raw columns (a Parquet file's, from the spill), or the whole held CSV/JSONL file."""
        if batch.raw is None:
            return self.scanner.records[batch.path]
        table = self.spill.batch(raw_spill(batch.path), batch.raw)
        return LoadedFile(batch.path, table.column_names, table=table, first_row=batch.first_row)

    def close(self) -> None:
        """Close the corpus table."""
        self.corpus.close()
