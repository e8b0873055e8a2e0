"""Run every pass of prepare-data on one file, without the trainability gate, and read it back."""

import pandas as pd

from commerce_lm import config, names
from commerce_lm.steps.prepare_data import step


def prepare_tables(folder, data, *, domain=None, task=None, similarity=None, **prepare):
    """``{dataset: (accepted, rejected, stats)}`` plus ``labels``; counts are checked to balance."""
    raw = {
        "model": "m",
        "domain": {"data": str(data), "label": "label", **(domain or {})},
        "tasks": [{"name": "t", "data": str(data), "label": "label", **(task or {})}],
        "prepare": {"max_rejected_fraction": 1.0, **prepare},
    }
    if similarity is not None:
        raw["similarity"] = [{"name": "s", "data": str(data), **similarity}]
    cfg = config.section_for("prepare-data", config.parse_config(raw))
    every, labels, _ = step.prepare_all(cfg, folder)
    out = {}
    for ds in step.datasets(cfg):
        stats = every[ds.name]
        assert stats["input_rows"] == stats["accepted_rows"] + stats["rejected_rows"] + stats["sampled_out_rows"]
        rejected = pd.read_parquet(folder / names.REJECTED_DIR / f"{ds.name}.parquet")
        out[ds.name] = (pd.read_parquet(step.table_path(folder, ds)), rejected, stats)
    out["labels"] = labels
    return out
