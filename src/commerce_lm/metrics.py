"""Binary-classification metrics with bootstrap confidence intervals."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score


def _both_classes(labels: np.ndarray) -> bool:
    return 0 < labels.sum() < len(labels)


def roc_pr(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """ROC AUC and PR AUC (average precision); NaN when only one class is present."""
    labels = np.asarray(labels)
    if not _both_classes(labels):
        return float("nan"), float("nan")
    return float(roc_auc_score(labels, scores)), float(average_precision_score(labels, scores))


def bootstrap_ci(
    labels: np.ndarray, scores: np.ndarray, samples: int, seed: int = 0, level: float = 0.95
) -> dict[str, list[float]]:
    """Percentile bootstrap confidence intervals of ROC AUC and PR AUC.

    Args:
        labels: 0/1 labels.
        scores: Scores, higher = more likely positive.
        samples: Number of bootstrap resamples (0 disables: empty intervals).
        seed: Resampling seed, so reports are reproducible.
        level: Coverage of the interval.

    Returns:
        ``{"roc_auc_ci": [lo, hi], "pr_auc_ci": [lo, hi]}``.
    """
    labels, scores = np.asarray(labels), np.asarray(scores)
    if samples <= 0 or not _both_classes(labels):
        return {"roc_auc_ci": [], "pr_auc_ci": []}
    rng = np.random.default_rng(seed)
    roc, pr = [], []
    for _ in range(samples):
        pick = rng.integers(0, len(labels), len(labels))
        if _both_classes(labels[pick]):
            r, p = roc_pr(labels[pick], scores[pick])
            roc.append(r)
            pr.append(p)
    tail = (1 - level) / 2 * 100
    return {
        "roc_auc_ci": [float(v) for v in np.percentile(roc, [tail, 100 - tail])],
        "pr_auc_ci": [float(v) for v in np.percentile(pr, [tail, 100 - tail])],
    }


def best_f1_threshold(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """The score threshold with the best F1 on (validation) data, and that F1."""
    order = np.argsort(-scores)
    sorted_labels = np.asarray(labels)[order]
    tp = np.cumsum(sorted_labels)
    predicted = np.arange(1, len(scores) + 1)
    positives = max(int(sorted_labels.sum()), 1)
    f1 = 2 * tp / (predicted + positives)
    best = int(np.argmax(f1))
    return float(scores[order][best]), float(f1[best])
