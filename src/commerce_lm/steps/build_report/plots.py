"""The report's plots, as base64 PNG the HTML page inlines (the Kubeflow UI shows it without other files)."""

from __future__ import annotations

import base64
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: reports are rendered in pods and CI

import matplotlib.pyplot as plt  # noqa: E402

from commerce_lm.steps.build_report.tables import ARMS, fmt  # noqa: E402


def _png(fig: plt.Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def curve_plot(task: str, curves: dict[str, Any], metrics: dict[str, Any]) -> str:
    """ROC and precision-recall curves of every arm of one task, side by side."""
    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for arm, label in ARMS:
        curve = curves.get(arm, {}).get("roc")
        if curve:
            roc_ax.plot(curve["fpr"], curve["tpr"], label=f"{label} ({fmt(metrics[arm]['roc_auc'])})")
        pr = curves.get(arm, {}).get("pr")
        if pr:
            pr_ax.plot(pr["recall"], pr["precision"], label=f"{label} ({fmt(metrics[arm]['pr_auc'])})")
    roc_ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    roc_ax.set(title=f"{task}: ROC", xlabel="False positive rate", ylabel="True positive rate")
    pr_ax.set(title=f"{task}: precision-recall", xlabel="Recall", ylabel="Precision", ylim=(0, 1.02))
    roc_ax.legend(fontsize=8)
    pr_ax.legend(fontsize=8)
    return _png(fig)


def knn_plot(metrics: dict[str, Any]) -> str | None:
    """KNN F1 per similarity set, PLM beside fine-tuned; ``None`` when there is no similarity set."""
    similarity = metrics.get("similarity", {})
    if not similarity:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5))
    tasks = list(similarity)
    width = 0.38
    for offset, arm in ((-width / 2, "plm"), (width / 2, "finetuned")):
        ax.bar(
            [i + offset for i in range(len(tasks))],
            [similarity[t].get(arm, {}).get("f1", 0) for t in tasks],
            width,
            label=arm,
        )
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set(title="KNN similarity F1", ylim=(0, 1))
    ax.legend()
    return _png(fig)
