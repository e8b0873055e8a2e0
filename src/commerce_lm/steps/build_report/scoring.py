"""Scoring one arm's test predictions, and comparing two arms on the same test rows.

Every arm (PLM head, fine-tuned head, end-to-end model) is scored here by one piece of code, with
bootstrap confidence intervals, a per-language breakdown, and the curves the report plots.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

from commerce_lm.config import ReportSection
from commerce_lm.metrics import bootstrap_ci, paired_bootstrap_diff, roc_pr

# Curves are thinned to about this many points: enough to plot, small enough for curves.json.
MAX_CURVE_POINTS = 200


def _thin(values: np.ndarray) -> list[float]:
    step = max(1, len(values) // MAX_CURVE_POINTS)
    return [float(v) for v in values[::step]]


def _roc_curve(labels: np.ndarray, scores: np.ndarray) -> dict[str, list[float]]:
    fpr, tpr, thresholds = roc_curve(labels, scores)
    thresholds = np.where(np.isfinite(thresholds), thresholds, 1.0)
    return {"fpr": _thin(fpr), "tpr": _thin(tpr), "thresholds": _thin(thresholds)}


def _pr_curve(labels: np.ndarray, scores: np.ndarray) -> dict[str, list[float]]:
    precision, recall, _ = precision_recall_curve(labels, scores)
    return {"precision": _thin(precision), "recall": _thin(recall)}


def _sliceable(labels: np.ndarray, min_rows: int) -> bool:
    """Whether a language's test rows get their own figures: ``min_rows`` of them, both classes."""
    return len(labels) >= min_rows and 0 < labels.sum() < len(labels)


def score_arm(predictions: pd.DataFrame, cfg: ReportSection, train_cost: dict[str, Any]) -> tuple[dict, dict]:
    """Metrics (with CIs and language slices) and curves of one arm's test predictions."""
    labels, scores = predictions["label"].to_numpy(), predictions["score"].to_numpy()
    roc, pr = roc_pr(labels, scores)
    result = {
        "roc_auc": roc,
        "pr_auc": pr,
        **bootstrap_ci(labels, scores, cfg.report.bootstrap_samples, cfg.seed),
        "train_seconds": float(train_cost.get("train_seconds", float("nan"))),
        "cpu_seconds": float(train_cost.get("cpu_seconds", float("nan"))),
        "by_language": {},
    }
    both = 0 < labels.sum() < len(labels)
    curves = {
        "roc": _roc_curve(labels, scores) if both else None,
        "pr": _pr_curve(labels, scores) if both else None,
        "confusion": confusion_matrix(labels, (scores >= 0.5).astype(int), labels=[0, 1]).tolist(),
        "by_language": {},
    }
    for lang, part in predictions.groupby("lang"):
        part_labels = part["label"].to_numpy()
        if not _sliceable(part_labels, cfg.report.min_slice_rows):
            continue
        lang_roc, lang_pr = roc_pr(part_labels, part["score"].to_numpy())
        result["by_language"][lang] = {
            "roc_auc": lang_roc,
            "pr_auc": lang_pr,
            "n": int(len(part)),
            "positive_rate": float(part_labels.mean()),
        }
        curves["by_language"][lang] = _roc_curve(part_labels, part["score"].to_numpy())
    return result, curves


# Paired comparisons on the same test rows: name -> (arm a, arm b), reported as a minus b.
COMPARISONS = {"finetuned_minus_plm": ("finetuned", "plm"), "finetuned_minus_e2e": ("finetuned", "e2e")}
# Per language only the comparison the method claims everywhere: the fine-tuned encoder against the PLM.
LANGUAGE_COMPARISONS = {"finetuned_minus_plm": COMPARISONS["finetuned_minus_plm"]}


def _paired(arms: dict[str, tuple[pd.DataFrame, dict]], a: str, b: str) -> pd.DataFrame:
    """The test rows both arms scored: ``id``, ``label``, ``lang``, ``score_a``, ``score_b``."""
    return arms[a][0][["id", "label", "lang", "score"]].merge(
        arms[b][0][["id", "score"]], on="id", suffixes=("_a", "_b"), validate="one_to_one"
    )


def _diff(joined: pd.DataFrame, samples: int, seed: int) -> dict[str, Any]:
    labels, a, b = (joined[c].to_numpy() for c in ("label", "score_a", "score_b"))
    return {**paired_bootstrap_diff(labels, a, b, samples, seed), "n": int(len(joined))}


def compare_arms(arms: dict[str, tuple[pd.DataFrame, dict]], samples: int, seed: int) -> dict[str, Any]:
    """Paired bootstrap differences (PR AUC, ROC AUC) between arms, on the test rows both scored."""
    return {
        name: _diff(_paired(arms, a, b), samples, seed)
        for name, (a, b) in COMPARISONS.items()
        if a in arms and b in arms
    }


def compare_by_language(
    arms: dict[str, tuple[pd.DataFrame, dict]], samples: int, seed: int, min_rows: int
) -> dict[str, dict[str, Any]]:
    """:data:`LANGUAGE_COMPARISONS` on each language's test rows, resampled within the language.

    Languages are those :func:`score_arm` slices (:func:`_sliceable`).

    Returns:
        ``{lang: {comparison: {pr_auc_diff, pr_auc_diff_ci, pr_auc_significant, ..., n}}}``.
    """
    out: dict[str, dict[str, Any]] = {}
    for name, (a, b) in LANGUAGE_COMPARISONS.items():
        if a not in arms or b not in arms:
            continue
        for lang, part in _paired(arms, a, b).groupby("lang"):
            if _sliceable(part["label"].to_numpy(), min_rows):
                out.setdefault(str(lang), {})[name] = _diff(part, samples, seed)
    return dict(sorted(out.items()))
