"""``prepare-data``: validate, normalise, de-duplicate and split every dataset a run names.

Modules: :mod:`.cells` (the canonical value rules of :mod:`commerce_lm.data.values` on whole Arrow
columns), :mod:`.frame` (a batch of a file to parsed columns), :mod:`.scan` (the first pass: each
file read once, a batch at a time, into :mod:`.spill`), :mod:`.keys` (digests and split hashes in
DuckDB), :mod:`.groups` (every dataset's groups joined into the corpus's, for one split),
:mod:`.decide` (duplicates, conflicts, the sample cap, the split, in DuckDB),
:mod:`.output` (the last pass) and :mod:`.write` (the Parquet tables), :mod:`.rules` (the order of
domain classes), :mod:`.step` (the passes) and :mod:`.checks` (the gate before training). Parsing
one record (:mod:`commerce_lm.data.parse`, canonical values in :mod:`commerce_lm.data.values`) and
keeping rejected rows (:mod:`commerce_lm.data.rejected`) live in ``data/``, shared with scoring.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from commerce_lm import names, storage
from commerce_lm.config import PrepareSection
from commerce_lm.data.values import normalize_text
from commerce_lm.steps.prepare_data.checks import DataError, check_trainable
from commerce_lm.steps.prepare_data.step import prepare_all

__all__ = ["DataError", "normalize_text", "prepare", "run"]
STEP = "prepare-data"


def run(cfg: PrepareSection, out_dir: str) -> dict[str, Any]:
    """Prepare every dataset of ``cfg`` into ``out_dir``.

    Args:
        cfg: The datasets to prepare: the domain, tasks and similarity sets, or any part of them
            (see :func:`commerce_lm.config.prepare_part`).
        out_dir: The prepared folder (local or ``gs://``), published atomically.

    Returns:
        The step's metrics: rows accepted and rejected per dataset.

    Raises:
        readers.InputError: For a file that cannot be read as a whole (names file and column).
        DataError: When the data must not reach training (names dataset, file and column).
        storage.OutputError: When ``out_dir`` holds anything but an earlier prepare-data output,
            or lies inside an input folder.
    """
    started = time.perf_counter()
    inputs = [spec.data for spec in [cfg.domain, *cfg.tasks, *cfg.similarity] if spec]
    with storage.staged_dir(out_dir, STEP, inputs) as stage:
        stats, labels, corpus_rows = prepare(cfg, stage)
        try:
            check_trainable(cfg, stage, stats, labels)
        except DataError:
            _keep_for_inspection(stage, out_dir)
            raise
        metrics = {
            "seconds": time.perf_counter() - started,
            "corpus_rows": corpus_rows,
            **{key: sum(s[key] for s in stats.values()) for key in ("accepted_rows", "rejected_rows", "input_rows")},
        }
        storage.write_json(stage / names.METRICS_JSON, metrics)
        storage.write_json(stage / names.CONFIG_JSON, cfg.model_dump(mode="json"))
    return metrics


def prepare(cfg: PrepareSection, folder: Path) -> tuple[dict[str, Any], list[str], int]:
    """The passes without the gate: every table, ``labels.json`` and ``stats.json`` into ``folder``.

    Returns:
        ``(stats, domain labels, corpus rows)``.
    """
    stats, labels, corpus_rows = prepare_all(cfg, folder)
    if cfg.domain:  # a run may prepare its parts apart
        storage.write_json(folder / names.LABELS_JSON, labels)
    storage.write_json(folder / names.STATS_JSON, stats)
    return stats, labels, corpus_rows


def _keep_for_inspection(stage: Path, out_dir: str) -> None:
    """A refused run still keeps its rejected rows and stats, beside (never as) the output."""
    target = f"{str(out_dir).rstrip('/')}.refused"
    with storage.staged_dir(target, f"{STEP} (refused)") as keep:
        for path in [stage / names.STATS_JSON, *sorted((stage / names.REJECTED_DIR).glob("*.parquet"))]:
            storage.write_bytes(keep / path.relative_to(stage), path.read_bytes())
