"""The gate before training: refuse data that cannot give a meaningful result."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from commerce_lm import names
from commerce_lm.config import PrepareSection


class DataError(ValueError):
    """Data that must not reach training; the message names the dataset, file and what is wrong."""


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
        domain = pd.read_parquet(stage / names.DOMAIN_TABLE, columns=["split", "label"])
        train_counts.update(domain.loc[domain.split == "train", "label"])
    empty = [labels[i] for i in range(len(labels)) if train_counts[i] == 0]
    if empty:
        problems.append(
            f"domain ({cfg.domain.data}), column {cfg.domain.label!r}: label(s) {empty} have no training examples"
        )
    for task in cfg.tasks:
        table = pd.read_parquet(stage / names.TASKS_DIR / f"{task.name}.parquet", columns=["split", "label"])
        for split in ("train", "test"):
            classes = sorted(set(table.loc[table.split == split, "label"]))
            if len(classes) < 2:
                problems.append(
                    f"task {task.name} ({task.data}), column {task.label!r}: the {split} split has "
                    f"{'no rows' if not classes else f'a single class {classes[0]}'}; need both 0 and 1"
                )
    if problems:
        raise DataError("prepare-data refused the input:\n  " + "\n  ".join(problems))
