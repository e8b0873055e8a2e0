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
    cfg = config.parse_config(raw)
    preparer = step.Preparer(cfg, folder)
    out = {}
    for ds in step.datasets(cfg):
        preparer.scan(ds)
        if ds.kind == "domain":
            preparer.domain_labels = step.domain_labels(cfg, ds)
        stats = preparer.write(ds, folder / f"{ds.name}.parquet")
        assert stats["input_rows"] == stats["accepted_rows"] + stats["rejected_rows"] + stats["sampled_out_rows"]
        rejected = pd.read_parquet(folder / names.REJECTED_DIR / f"{ds.name}.parquet")
        out[ds.name] = (pd.read_parquet(folder / f"{ds.name}.parquet"), rejected, stats)
    out["labels"] = preparer.domain_labels
    return out
