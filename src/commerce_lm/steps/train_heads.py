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
from threadpoolctl import threadpool_limits

from commerce_lm import metrics, names, part_cache, storage
from commerce_lm.config import HeadsConfig, HeadsSection
from commerce_lm.embedding.checks import aligned_vectors, load_checked
from commerce_lm.metrics import best_f1_threshold, roc_pr

# What a head reads of a task's table, and what its test predictions hold.
TASK_COLUMNS = ["id", "label", "split", "lang"]
PREDICTION_COLUMNS = ["id", "label", "score", "lang"]


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
    # A head's products are a few thousand rows by a few hundred columns: a second BLAS thread only
    # waits on the first. On the demo's counterfeit head (1,373 x 384), with another process busy on
    # this 2-core machine, each fit took 0.4 to 3.1 s on two threads and 0.012 to 0.018 s on one.
    with threadpool_limits(limits=1, user_api="blas"):
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


def _head_json(head: dict[str, Any]) -> dict[str, Any]:
    """What ``heads/<arm>/<task>.json`` holds: the chosen C, threshold, scaler and weights."""
    return {
        "c": head["c"],
        "val_pr_auc": head["val_pr_auc"],
        "threshold": head["threshold"],
        "scaler_mean": head["scaler"].mean_.tolist(),
        "scaler_scale": head["scaler"].scale_.tolist(),
        "weight": head["model"].coef_[0].tolist(),
        "bias": float(head["model"].intercept_[0]),
    }


def train_task(settings: HeadsConfig, table: pd.DataFrame, vectors: np.ndarray) -> dict[str, Any]:
    """Fit one task's head and score its test rows.

    Args:
        settings: The ``heads`` settings.
        table: The task's rows (``id``, ``label``, ``split``, ``lang``).
        vectors: The rows' embeddings, in the table's order.

    Returns:
        JSON-able ``head`` (:func:`_head_json`), ``predictions`` (the test rows' id, label, score
        and lang, column by column) and ``metrics`` (test ROC and PR AUC, the head's wall and CPU
        seconds, its C and validation PR AUC, the number of test rows).
    """
    parts = {s: table["split"].to_numpy() == s for s in names.SPLITS}
    labels = table["label"].to_numpy()
    wall, cpu = time.perf_counter(), time.process_time()
    head = fit_head(
        settings,
        (vectors[parts["train"]], labels[parts["train"]]),
        (vectors[parts["validation"]], labels[parts["validation"]]),
    )
    train_seconds, cpu_seconds = time.perf_counter() - wall, time.process_time() - cpu
    test = table[parts["test"]]
    scores = head["model"].predict_proba(head["scaler"].transform(vectors[parts["test"]]))[:, 1]
    roc, pr = roc_pr(test["label"].to_numpy(), scores)
    predictions = {column: test[column].tolist() for column in PREDICTION_COLUMNS if column != "score"}
    return {
        "head": _head_json(head),
        "predictions": {**predictions, "score": scores.tolist()},
        "metrics": {
            "roc_auc": roc,
            "pr_auc": pr,
            "train_seconds": train_seconds,
            "cpu_seconds": cpu_seconds,
            "c": head["c"],
            "val_pr_auc": head["val_pr_auc"],
            "n_test": int(len(test)),
        },
    }


def _code_version() -> str:
    """A digest of the code a head's figures come from: this module and the metrics."""
    return part_cache.code_digest([Path(__file__), Path(metrics.__file__)])


def run(
    section: HeadsSection,
    prepared_dir: str,
    embeddings: dict[str, str],
    out_dir: str,
    expected_checksums: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Train one head per task on each embedding set.

    A head whose inputs (the task's rows, their vectors, the ``heads`` settings) and code are those
    of an earlier run is read from the local part cache (:mod:`commerce_lm.part_cache`) instead of
    trained again, so a run that adds a task trains only that task's heads. Its figures, training
    cost included, are those measured when it was trained.

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
    results: dict[str, Any] = {}
    code = _code_version()
    settings = section.heads.model_dump(mode="json")
    tables = {
        task.name: storage.read_parquet(storage.join(prepared_dir, names.TASKS_DIR, f"{task.name}.parquet")).to_pandas()
        for task in section.tasks
    }
    with storage.staged_dir(out_dir, "train-heads") as stage:
        for arm, location in embeddings.items():
            emb = load_checked(location, arm, (expected_checksums or {}).get(arm))
            for task, table in tables.items():
                vectors = aligned_vectors(emb, table["id"], f"task {task}")
                part_key = part_cache.key(
                    code, settings, part_cache.frame_digest(table, TASK_COLUMNS), part_cache.array_digest(vectors)
                )
                trained = part_cache.cached(
                    "heads", part_key, lambda table=table, vectors=vectors: train_task(section.heads, table, vectors)
                )
                storage.write_json(stage / names.HEADS_DIR / arm / f"{task}.json", trained["head"])
                predictions = pd.DataFrame(trained["predictions"], columns=PREDICTION_COLUMNS)
                predictions.to_parquet(stage / names.HEADS_DIR / arm / f"{task}.parquet", index=False)
                encoder = {"encoder_checksum": emb.manifest.get("encoder_checksum")}
                results.setdefault(task, {})[arm] = {**trained["metrics"], **encoder}
        storage.write_json(stage / names.METRICS_JSON, results)
        storage.write_json(stage / names.CONFIG_JSON, section.model_dump(mode="json"))
    return results
