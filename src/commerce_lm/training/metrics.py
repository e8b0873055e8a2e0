"""Validation metrics of a classifier, from gathered logits."""

from __future__ import annotations

import math

import numpy as np

# Which way is better for each selectable metric.
HIGHER_IS_BETTER = {
    "val_loss": False,
    "val_accuracy": True,
    "val_macro_f1": True,
    "val_roc_auc": True,
    "val_probe_macro_f1": True,
}
# Folds of the validation split in the linear probe: each fold is scored by a probe fit on the others.
PROBE_FOLDS = 2


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (stable)."""
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def classification(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Loss, accuracy, macro-F1 and ROC AUC of ``logits`` against ``labels``.

    ROC AUC is binary for two classes and one-vs-rest macro for more; it is NaN when a class is
    missing from ``labels`` (it is then undefined).

    Returns:
        ``val_loss``, ``val_accuracy``, ``val_macro_f1``, ``val_roc_auc``.
    """
    from sklearn.metrics import f1_score, roc_auc_score

    probs = softmax(logits)
    num_labels = logits.shape[1]
    loss = float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None))))
    preds = probs.argmax(axis=1)
    roc = math.nan
    if len(np.unique(labels)) == num_labels:
        if num_labels == 2:
            roc = float(roc_auc_score(labels, probs[:, 1]))
        else:
            roc = float(roc_auc_score(labels, probs, multi_class="ovr", labels=list(range(num_labels))))
    return {
        "val_loss": loss,
        "val_accuracy": float(np.mean(preds == labels)),
        "val_macro_f1": float(f1_score(labels, preds, average="macro", zero_division=0)),
        "val_roc_auc": roc,
    }


def improved(metric: str, value: float, best: float | None) -> bool:
    """Whether ``value`` beats ``best`` for ``metric`` (a NaN never does)."""
    if math.isnan(value):
        return False
    if best is None or math.isnan(best):
        return True
    return value > best if HIGHER_IS_BETTER[metric] else value < best


def linear_probe(vectors: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """How well a linear layer on the pooled ``vectors`` recovers ``labels``: cross-validated macro-F1.

    It judges the *vectors* (what frozen heads and KNN get), not the model's own classifier, so a
    checkpoint can be chosen by how well its embeddings work. Folds are stratified and seeded.

    Returns:
        ``{"val_probe_macro_f1": f1}`` (NaN when a class has fewer members than folds).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    _, counts = np.unique(labels, return_counts=True)
    if len(counts) < 2 or counts.min() < PROBE_FOLDS:
        return {"val_probe_macro_f1": math.nan}
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    folds = StratifiedKFold(PROBE_FOLDS, shuffle=True, random_state=0)
    predicted = cross_val_predict(probe, vectors, labels, cv=folds)
    return {"val_probe_macro_f1": float(f1_score(labels, predicted, average="macro", zero_division=0))}
