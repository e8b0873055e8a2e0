"""The gate before training: refuse data that cannot give a meaningful result."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from commerce_lm import names
from commerce_lm.config import PrepareSection


class DataError(ValueError):
    """Data that must not reach training; the message names the dataset, file and what is wrong."""


def _labels_by_split(path: Path) -> dict[str, Counter]:
    """Rows per label in each split of a prepared table, read a row group at a time."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for batch in pq.ParquetFile(path).iter_batches(columns=["split", "label"]):
        pairs = pa.Table.from_batches([batch]).group_by(["split", "label"]).aggregate([([], "count_all")])
        for split, label, n in zip(
            *(pairs.column(c).to_pylist() for c in ("split", "label", "count_all")), strict=True
        ):
            counts[split][label] += n
    return counts


def _rejected_share(cfg: PrepareSection, stats: dict[str, Any]) -> list[str]:
    problems = []
    limit = cfg.prepare.max_rejected_fraction
    for name, counts in stats.items():
        if counts["input_rows"] and counts["rejected_rows"] / counts["input_rows"] > limit:
            problems.append(
                f"{name} ({counts['source']}): {counts['rejected_rows']} of {counts['input_rows']} rows "
                f"rejected, over max_rejected_fraction={limit}: {counts['rejected_by_reason']}"
            )
    return problems


def check_trainable(cfg: PrepareSection, stage: Path, stats: dict[str, Any], labels: list[str]) -> None:
    """Fail before anything trains on data that cannot give a meaningful result.

    Raises:
        DataError: Too many rejected rows, a domain class without training rows, or a task split
            with a single class; each problem names the dataset, file and column.
    """
    problems = _rejected_share(cfg, stats)
    train_counts: Counter = Counter()
    if cfg.domain:  # a part prepared without the domain has none to check
        train_counts = _labels_by_split(stage / names.DOMAIN_TABLE)["train"]
    empty = [labels[i] for i in range(len(labels)) if train_counts[i] == 0]
    if empty:
        problems.append(
            f"domain ({cfg.domain.data}), column {cfg.domain.label!r}: label(s) {empty} have no training examples"
        )
    for task in cfg.tasks:
        by_split = _labels_by_split(stage / names.TASKS_DIR / f"{task.name}.parquet")
        for split in ("train", "test"):
            classes = sorted(by_split[split])
            if len(classes) < 2:
                problems.append(
                    f"task {task.name} ({task.data}), column {task.label!r}: the {split} split has "
                    f"{'no rows' if not classes else f'a single class {classes[0]}'}; need both 0 and 1"
                )
    if problems:
        raise DataError("prepare-data refused the input:\n  " + "\n  ".join(problems))
