"""``train-heads``: one linear layer (logistic regression) per binary task, per embedding set.

Heads train on the frozen embeddings: standardisation fitted on train, class weights against
imbalance, the regularisation strength chosen on validation. Each head's weights, its test
predictions and its wall and CPU time are saved, so the report can compare the cost with
end-to-end fine-tuning.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from commerce_lm import names, storage
from commerce_lm.config import HeadsConfig, HeadsSection
from commerce_lm.embedding.checks import aligned_vectors, load_checked
from commerce_lm.metrics import best_f1_threshold, roc_pr


def fit_head(
    settings: HeadsConfig, train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray]
) -> dict[str, Any]:
    """Fit scaler + logistic regression, choosing C by validation PR AUC.

    Returns:
        The fitted ``scaler`` and ``model``, the chosen ``c``, its validation PR AUC and the
        validation-F1 decision threshold.
    """
    scaler = StandardScaler().fit(train[0])
    x_train, x_val = scaler.transform(train[0]), scaler.transform(val[0])
    best: dict[str, Any] | None = None
    for c in settings.c_grid:
        model = LogisticRegression(C=c, class_weight="balanced", max_iter=settings.max_iter)
        model.fit(x_train, train[1])
        val_scores = model.predict_proba(x_val)[:, 1]
        _, val_pr = roc_pr(val[1], val_scores)
        if best is None or val_pr > best["val_pr_auc"]:
            threshold, _ = best_f1_threshold(val[1], val_scores)
            best = {"scaler": scaler, "model": model, "c": c, "val_pr_auc": val_pr, "threshold": threshold}
    assert best is not None  # c_grid is never empty: pydantic default and YAML both give values
    return best


def _save_head(head: dict[str, Any], path: Path) -> None:
    storage.write_json(
        path,
        {
            "c": head["c"],
            "val_pr_auc": head["val_pr_auc"],
            "threshold": head["threshold"],
            "scaler_mean": head["scaler"].mean_.tolist(),
            "scaler_scale": head["scaler"].scale_.tolist(),
            "weight": head["model"].coef_[0].tolist(),
            "bias": float(head["model"].intercept_[0]),
        },
    )


def run(
    section: HeadsSection,
    prepared_dir: str,
    embeddings: dict[str, str],
    out_dir: str,
    expected_checksums: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Train one head per task on each embedding set.

    Args:
        section: The step's section (tasks, the PLM, ``heads``).
        prepared_dir: ``prepare-data`` output.
        embeddings: Arm name (``plm``, ``finetuned``) -> ``extract-embeddings`` output.
        out_dir: Output folder: ``heads/<arm>/<task>.json``, ``heads/<arm>/<task>.parquet``
            (test predictions: id, label, score, lang) and ``metrics.json``.
        expected_checksums: Arm -> checksum of the encoder the embeddings must come from.

    Returns:
        ``{task: {arm: {roc_auc, pr_auc, train_seconds, cpu_seconds, c, ...}}}``.
    """
    metrics: dict[str, Any] = {}
    with storage.staged_dir(out_dir, "train-heads") as stage:
        for arm, location in embeddings.items():
            emb = load_checked(location, arm, (expected_checksums or {}).get(arm))
            for task in section.tasks:
                location = storage.join(prepared_dir, names.TASKS_DIR, f"{task.name}.parquet")
                table = storage.read_parquet(location).to_pandas()
                vectors = aligned_vectors(emb, table["id"], f"task {task.name}")
                parts = {s: table["split"].to_numpy() == s for s in names.SPLITS}
                labels = table["label"].to_numpy()
                wall, cpu = time.perf_counter(), time.process_time()
                head = fit_head(
                    section.heads,
                    (vectors[parts["train"]], labels[parts["train"]]),
                    (vectors[parts["validation"]], labels[parts["validation"]]),
                )
                train_seconds, cpu_seconds = time.perf_counter() - wall, time.process_time() - cpu
                test = table[parts["test"]]
                scores = head["model"].predict_proba(head["scaler"].transform(vectors[parts["test"]]))[:, 1]
                roc, pr = roc_pr(test["label"].to_numpy(), scores)
                _save_head(head, stage / names.HEADS_DIR / arm / f"{task.name}.json")
                predictions = pd.DataFrame(
                    {"id": test["id"], "label": test["label"], "score": scores, "lang": test["lang"]}
                )
                path = stage / names.HEADS_DIR / arm / f"{task.name}.parquet"
                predictions.to_parquet(path, index=False)
                metrics.setdefault(task.name, {})[arm] = {
                    "roc_auc": roc,
                    "pr_auc": pr,
                    "train_seconds": train_seconds,
                    "cpu_seconds": cpu_seconds,
                    "c": head["c"],
                    "val_pr_auc": head["val_pr_auc"],
                    "n_test": int(len(test)),
                    "encoder_checksum": emb.manifest.get("encoder_checksum"),
                }
        storage.write_json(stage / names.METRICS_JSON, metrics)
        storage.write_json(stage / names.CONFIG_JSON, section.model_dump(mode="json"))
    return metrics
