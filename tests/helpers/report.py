"""Synthetic outputs of every step build-report reads, so the report runs without training anything."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from commerce_lm import names

LANGS = ["en", "de", "fr", "pt"]


def _write(folder: Path, metrics: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / names.METRICS_JSON).write_text(json.dumps(metrics))
    return folder


def predictions(n: int, seed: int, signal: float) -> pd.DataFrame:
    """``n`` test rows (``id``, ``label``, ``score``, ``lang``); larger ``signal``, better scores."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.3).astype("int64")
    scores = 1 / (1 + np.exp(-(signal * (labels - 0.5) + rng.normal(size=n))))
    ids = [f"doc-{i}" for i in range(n)]
    return pd.DataFrame({"id": ids, "label": labels, "score": scores, "lang": [LANGS[i % 4] for i in range(n)]})


def baseline_output(folder: Path, task: str, n: int, seed: int = 0) -> Path:
    """A finetune-baseline output of ``task``."""
    _write(folder, {"task": task, "train_seconds": 30.0, "cpu_seconds": 60.0, "global_steps": 10, "capped": False})
    predictions(n, seed, 3.0).to_parquet(folder / names.PREDICTIONS_TABLE)
    return folder


def report_inputs(root: Path, tasks: list[str], n: int = 400, queries: int = 200) -> dict:
    """Keyword arguments of ``build_report.run`` (but ``cfg`` and ``out_dir``), with a baseline per task."""
    prepared = root / "prepared"
    (prepared / names.TASKS_DIR).mkdir(parents=True)
    stats = {
        "task": {
            "input_rows": n,
            "accepted_rows": n,
            "rejected_rows": 0,
            "sampled_out_rows": 0,
            "accepted_by_split": {"test": n},
        }
    }
    (prepared / names.STATS_JSON).write_text(json.dumps(stats))
    heads_metrics = {}
    for i, task in enumerate(tasks):
        for arm, signal in (("plm", 1.0), ("finetuned", 2.5)):
            table = predictions(n, 10 * i + len(arm), signal)
            (root / "heads" / names.HEADS_DIR / arm).mkdir(parents=True, exist_ok=True)
            table.to_parquet(root / "heads" / names.HEADS_DIR / arm / f"{task}.parquet")
        table[["id"]].assign(text="a listing").to_parquet(prepared / names.TASKS_DIR / f"{task}.parquet")
        heads_metrics[task] = {"plm": {"train_seconds": 0.5}, "finetuned": {"train_seconds": 0.5}}
    _write(root / "heads", heads_metrics)
    rng = np.random.default_rng(0)
    rows = [
        {"set": "relisted", "arm": arm, "slice": "all", "query": f"q{q}", "tp": int(rng.integers(0, 3)),
         "predicted": 3, "relevant": 3}
        for arm in ("plm", "finetuned") for q in range(queries)
    ]  # fmt: skip
    knn = _write(
        root / "knn", {"relisted": {arm: {"f1": 0.5, "precision": 0.5, "recall": 0.5} for arm in ("plm", "finetuned")}}
    )
    pd.DataFrame(rows).to_parquet(knn / names.KNN_QUERIES)
    manifest = {"docs_per_second": 100.0, "seconds": 10.0, "count": n, "dim": 8, "pooling": "mean"}
    embeddings = {}
    for arm in ("plm", "finetuned"):
        embeddings[arm] = str(_write(root / f"{arm}-embeddings", {}))
        (root / f"{arm}-embeddings" / names.MANIFEST_JSON).write_text(json.dumps(manifest))
    return {
        "prepared_dir": str(prepared),
        "finetune_dir": str(_write(root / "encoder", {"train_seconds": 100.0, "val_accuracy": 0.9})),
        "embeddings": embeddings,
        "heads_dir": str(root / "heads"),
        "baseline_dirs": [str(baseline_output(root / f"baseline-{t}", t, n)) for t in tasks],
        "knn_dir": str(knn),
    }
