"""Binary-classification metrics with bootstrap confidence intervals."""

from __future__ import annotations

from typing import Any

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
    """The score threshold with the best F1 on (validation) data, and that F1.

    Only thresholds a comparison ``score >= threshold`` can make are candidates: one per distinct
    score, so a run of tied scores is either all predicted positive or all negative.
    """
    from sklearn.metrics import precision_recall_curve

    labels, scores = np.asarray(labels), np.asarray(scores)
    if not labels.any():
        return float(np.max(scores)) if len(scores) else 0.0, 0.0
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    # The curve's last point (precision 1, recall 0) has no threshold.
    precision, recall = precision[:-1], recall[:-1]
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros_like(denominator), where=denominator > 0)
    best = int(np.argmax(f1))
    return float(thresholds[best]), float(f1[best])


def paired_bootstrap_diff(
    labels: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray, samples: int, seed: int = 0, level: float = 0.95
) -> dict[str, Any]:
    """ROC AUC and PR AUC of ``a`` minus ``b`` on the same rows, with paired percentile bootstrap intervals.

    Each resample draws the same rows for both arms, so the interval reflects the difference
    between the arms rather than the noise of the test set they share.

    Args:
        labels: 0/1 labels of the shared test rows.
        scores_a: Arm a's scores on those rows.
        scores_b: Arm b's scores on the same rows, in the same order.
        samples: Bootstrap resamples (0: differences without intervals).
        seed: Resampling seed.
        level: Coverage of the intervals.

    Returns:
        ``roc_auc_diff``, ``pr_auc_diff``, their ``*_ci`` ``[lo, hi]`` and ``significant`` per metric
        (the interval excludes 0).
    """
    labels, scores_a, scores_b = np.asarray(labels), np.asarray(scores_a), np.asarray(scores_b)
    (roc_a, pr_a), (roc_b, pr_b) = roc_pr(labels, scores_a), roc_pr(labels, scores_b)
    out: dict[str, Any] = {"roc_auc_diff": roc_a - roc_b, "pr_auc_diff": pr_a - pr_b}
    rng = np.random.default_rng(seed)
    diffs: list[tuple[float, float]] = []
    for _ in range(samples if _both_classes(labels) else 0):
        pick = rng.integers(0, len(labels), len(labels))
        if _both_classes(labels[pick]):
            (ra, pa), (rb, pb) = roc_pr(labels[pick], scores_a[pick]), roc_pr(labels[pick], scores_b[pick])
            diffs.append((ra - rb, pa - pb))
    tail = (1 - level) / 2 * 100
    for column, key in enumerate(("roc_auc", "pr_auc")):
        if diffs:
            lo, hi = (float(v) for v in np.percentile([d[column] for d in diffs], [tail, 100 - tail]))
            out[f"{key}_diff_ci"], out[f"{key}_significant"] = [lo, hi], bool(lo > 0 or hi < 0)
        else:
            out[f"{key}_diff_ci"], out[f"{key}_significant"] = [], False
    return out
