"""The passes of prepare-data over every dataset a run names, in memory that does not grow with the corpus.

The first pass (:mod:`.scan`) reads each input file once, a batch at a time, for every dataset
that names it (and for every way the whole run groups rows, :func:`views`), and spills what the
last pass needs. The groups of every dataset are joined into the corpus's (:mod:`.groups`). Then,
dataset by dataset, DuckDB learns what
needs the whole dataset and applies the duplicate rules, the ``sample`` cap and the split
(:mod:`.decide`), spilling to disk past ``prepare.memory_mb``; the last pass (:mod:`.output`) writes
accepted rows and rejected rows with their reason and column. Every input row ends up accepted,
rejected or (for budgeted runs) sampled out, and ``stats.json`` counts all three.
"""

from __future__ import annotations

import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb

from commerce_lm import names
from commerce_lm.config import PrepareSection
from commerce_lm.cores import usable as usable_cores
from commerce_lm.data import values
from commerce_lm.data.parse import Dataset
from commerce_lm.progress import progress_bar
from commerce_lm.steps.prepare_data import decide, groups, keys, rules
from commerce_lm.steps.prepare_data.output import Output
from commerce_lm.steps.prepare_data.scan import Scanner
from commerce_lm.steps.prepare_data.spill import Spill


def prepare_all(cfg: PrepareSection, stage: Path) -> tuple[dict[str, Any], list[str], int]:
    """Every dataset of ``cfg`` into the staging folder ``stage``.

    Returns:
        ``(stats per dataset, domain labels, corpus rows)``.
    """
    sets, grouped = datasets(cfg), views(cfg)
    cores = usable_cores()
    with tempfile.TemporaryDirectory(prefix="prepare-data-") as scratch:  # never inside the output
        spill = Spill(Path(scratch))
        db = keys.connect(Path(scratch), cfg.prepare.memory_mb, cores)
        try:
            scanner = Scanner(cfg, [*sets, *grouped], spill, db)
            scanner.run()
            groups.resolve(db, grouped)
            output = Output(stage, scanner)
            stats, labels = _decide_and_write(cfg, db, sets, output)
            output.close()
        finally:
            db.close()
            spill.close()
    return stats, labels, output.corpus_rows


def _decide_and_write(
    cfg: PrepareSection, db: duckdb.DuckDBPyConnection, sets: list[Dataset], output: Output
) -> tuple[dict[str, Any], list[str]]:
    """Decide each dataset in order and write it while the next one is decided; its stats and the domain labels."""
    stats: dict[str, Any] = {}
    labels: list[str] = []
    decide.start(db)
    with ThreadPoolExecutor(1) as pool, progress_bar(len(sets), "prepare-data: decide and write", "dataset") as bar:
        writing = None  # one dataset's decisions in flight at a time
        for ds in sets:
            decide.learn(db, ds)
            decisions = decide.decide(db, ds, cfg.prepare)
            labels = domain_labels(cfg, ds) if ds.kind == "domain" else labels
            _written(writing, stats, bar)
            writing = ds.name, pool.submit(output.write, ds, decisions, table_path(output.stage, ds), labels)
        _written(writing, stats, bar)
    return stats, labels


def _written(writing: tuple[str, Future] | None, stats: dict[str, Any], bar: Any) -> None:
    """Wait for the dataset being written (if any) and keep its stats."""
    if writing:
        stats[writing[0]] = writing[1].result()
        bar.update()


def datasets(cfg: PrepareSection) -> list[Dataset]:
    """Every dataset ``cfg`` names, the domain corpus (when there is one) first."""
    labels = cfg.domain.labels if cfg.domain else None
    allowed = {values.canonical(label) for label in labels} if labels else None
    return [
        *([Dataset("domain", "domain", cfg.domain, allowed_labels=allowed)] if cfg.domain else []),
        *(Dataset(f"task-{t.name}", "task", t) for t in cfg.tasks),
        *(Dataset(f"similarity-{s.name}", "similarity", s) for s in cfg.similarity),
    ]


def views(cfg: PrepareSection) -> list[Dataset]:
    """Every way the whole run ties rows together for the split (``cfg.split_groups``), as datasets of kind ``view``.

    A view's valid rows are those with an id and a text; it has no label, and is never written.
    """
    return [Dataset(f"view-{i}", "view", spec) for i, spec in enumerate(cfg.split_groups)]


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
