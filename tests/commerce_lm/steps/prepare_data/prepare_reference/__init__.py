"""Today's per-row prepare-data (before the Arrow-native rewrite), kept as the peer.

A snapshot of main's per-row ``steps/prepare_data/rules`` and ``steps/prepare_data/step``
(per-step sections: any part of the datasets; rejected rows kept by ``data/rejected``): every row
goes through Python, once per dataset. It shares the library's row parsing and cell rules
(``data/parse``, ``data/values``, which the score step still uses row by row) and readers, so it
follows their rules (a CSV fragment left by a broken quote is a malformed row). It is the oracle
of ``test_prepare_equality.py`` beside it, which checks that the new step accepts, rejects and splits
exactly the same rows; ``benchmarks/prepare_scale.py`` measures it beside the new step (its child
process has the repository root on ``PYTHONPATH``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from commerce_lm import names, storage
from commerce_lm.config import PrepareSection
from commerce_lm.steps.prepare_data.step import domain_labels, table_path
from tests.commerce_lm.steps.prepare_data.prepare_reference.step import Preparer, datasets


def run(cfg: PrepareSection, out_dir: Path) -> dict[str, Any]:
    """Prepare every dataset of ``cfg`` into the plain folder ``out_dir`` (no gate, no staging).

    Returns:
        ``stats.json``'s content, plus ``labels`` (the domain classes) and ``corpus_rows``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    preparer = Preparer(cfg, out_dir)
    stats: dict[str, Any] = {}
    for ds in datasets(cfg):
        preparer.scan(ds)
        if ds.kind == "domain":
            preparer.domain_labels = domain_labels(cfg, ds)
        stats[ds.name] = preparer.write(ds, table_path(out_dir, ds))
    preparer.corpus_writer.close()
    if cfg.domain:  # a run may prepare its parts apart
        storage.write_json(out_dir / names.LABELS_JSON, preparer.domain_labels)
    storage.write_json(out_dir / names.STATS_JSON, stats)
    return {"stats": stats, "labels": preparer.domain_labels, "corpus_rows": len(preparer.corpus_keys)}
