"""Binary-classification and pair-counting metrics with (paired) bootstrap confidence intervals."""

from __future__ import annotations

from typing import Any

import numpy as np


def _both_classes(labels: np.ndarray) -> bool:
    return 0 < labels.sum() < len(labels)


def roc_pr(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """ROC AUC and PR AUC (average precision); NaN when only one class is present.

    The values of scikit-learn's ``roc_auc_score`` and ``average_precision_score``, ties included,
    computed directly: the bootstraps call this thousands of times per report, and scikit-learn's
    input checks cost some twenty times the arithmetic.
    """
    positive, scores = np.asarray(labels).astype(bool), np.asarray(scores, dtype=np.float64)
    n_pos = int(positive.sum())
    if not 0 < n_pos < len(positive):
        return float("nan"), float("nan")
    # One threshold per distinct score, highest first: the positives and negatives at or above each.
    order = np.argsort(-scores, kind="stable")
    last_of_tie = np.append(np.flatnonzero(np.diff(scores[order])), len(scores) - 1)
    tp = np.cumsum(positive[order])[last_of_tie].astype(np.float64)
    fp = last_of_tie + 1 - tp
    # ROC AUC: trapezoids under the curve through those points (a run of ties is one diagonal step).
    roc = np.sum(np.diff(fp, prepend=0) * (tp + np.append(0, tp[:-1]))) / (2 * n_pos * fp[-1])
    # Average precision: the precision at each threshold, weighted by the recall it adds.
    average_precision = np.sum(np.diff(tp, prepend=0) / n_pos * tp / (tp + fp))
    return float(roc), float(average_precision)


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
    for column, key in enumerate(("roc_auc", "pr_auc")):
        out.update(_diff_interval(key, [d[column] for d in diffs], level))
    return out


def _diff_interval(key: str, diffs: Any, level: float) -> dict[str, Any]:
    """``<key>_diff_ci`` (percentile interval of resampled differences) and ``<key>_significant`` (it excludes 0)."""
    if len(diffs) == 0:
        return {f"{key}_diff_ci": [], f"{key}_significant": False}
    tail = (1 - level) / 2 * 100
    lo, hi = (float(v) for v in np.percentile(diffs, [tail, 100 - tail]))
    return {f"{key}_diff_ci": [lo, hi], f"{key}_significant": bool(lo > 0 or hi < 0)}


def _f1(counts: np.ndarray) -> np.ndarray:
    """F1 from summed ``[tp, predicted, relevant]`` counts (last axis): 2 tp / (predicted + relevant), 0 when empty."""
    tp, predicted, relevant = counts[..., 0], counts[..., 1], counts[..., 2]
    denominator = predicted + relevant
    return np.divide(2.0 * tp, denominator, out=np.zeros(np.shape(tp)), where=denominator > 0)


# Queries drawn per batch of resamples: bounds the gathered counts (x 3 columns x 8 bytes) to ~24 MB.
_F1_DRAWS = 1_000_000


def paired_bootstrap_f1(
    counts_a: np.ndarray, counts_b: np.ndarray, samples: int, seed: int = 0, level: float = 0.95
) -> dict[str, Any]:
    """F1 of ``a`` minus ``b`` over the same queries, with a paired percentile bootstrap interval over queries.

    Pair-counting F1 (similarity search) is not a mean over queries, so each resample sums the
    drawn queries' counts and takes F1 of the sums; the same queries are drawn for both arms.

    Args:
        counts_a: Arm a's ``[tp, predicted, relevant]`` pair counts per query, shape ``(queries, 3)``.
        counts_b: Arm b's counts for the same queries, in the same order.
        samples: Bootstrap resamples (0: the difference without an interval).
        seed: Resampling seed.
        level: Coverage of the interval.

    Returns:
        ``f1_diff``, ``f1_diff_ci`` ``[lo, hi]`` and ``f1_significant`` (the interval excludes 0).
    """
    counts_a, counts_b = np.asarray(counts_a, dtype=np.float64), np.asarray(counts_b, dtype=np.float64)
    if counts_a.shape != counts_b.shape:
        raise ValueError(f"the arms must count the same queries: shapes {counts_a.shape} and {counts_b.shape}")
    n = len(counts_a)
    rng = np.random.default_rng(seed)
    diffs: list[np.ndarray] = []
    batch = max(1, _F1_DRAWS // max(n, 1))
    for start in range(0, samples if n else 0, batch):
        drawn = rng.integers(0, n, (min(batch, samples - start), n))  # one resample of the queries per row
        diffs.append(_f1(counts_a[drawn].sum(axis=1)) - _f1(counts_b[drawn].sum(axis=1)))
    return {
        "f1_diff": float(_f1(counts_a.sum(axis=0)) - _f1(counts_b.sum(axis=0))),
        **_diff_interval("f1", np.concatenate(diffs) if diffs else [], level),
    }
