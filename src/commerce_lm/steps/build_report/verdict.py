"""The report's opening verdict: which embeddings to use for which task, and where the difference is noise.

It reads the paired bootstrap comparisons that ``build-report`` computes on the same test rows
(fine-tuned minus PLM, fine-tuned minus end-to-end), each similarity set's F1 change, and the
retraining gate's decision on the run's bundle.
"""

from __future__ import annotations

from typing import Any


def _diff(comparison: dict[str, Any]) -> str:
    interval = comparison.get("pr_auc_diff_ci") or []
    span = f" [{interval[0]:+.3f}, {interval[1]:+.3f}]" if interval else ""
    return f"{comparison['pr_auc_diff']:+.3f}{span}"


def task_verdict(task: str, comparisons: dict[str, Any]) -> str:
    """One sentence on one task, from its PR AUC comparisons (95% paired bootstrap intervals)."""
    versus_plm = comparisons.get("finetuned_minus_plm")
    if versus_plm is None:
        return f"{task}: no comparison (an arm is missing)."
    if not versus_plm["pr_auc_significant"]:
        use = f"fine-tuned and PLM embeddings are not significantly different (PR AUC {_diff(versus_plm)})"
    elif versus_plm["pr_auc_diff"] > 0:
        use = f"use the fine-tuned embeddings (PR AUC {_diff(versus_plm)} over the PLM)"
    else:
        use = f"use the PLM embeddings: fine-tuning lost PR AUC {_diff(versus_plm)}"
    versus_e2e = comparisons.get("finetuned_minus_e2e")
    if versus_e2e is None:
        return f"{task}: {use}."
    if not versus_e2e["pr_auc_significant"]:
        e2e = f"at par with end-to-end fine-tuning ({_diff(versus_e2e)})"
    elif versus_e2e["pr_auc_diff"] > 0:
        e2e = f"better than end-to-end fine-tuning ({_diff(versus_e2e)})"
    else:
        e2e = f"end-to-end fine-tuning is better ({_diff(versus_e2e)}) at its higher cost"
    return f"{task}: {use}; frozen fine-tuned + head is {e2e}."


def similarity_verdict(name: str, entry: dict[str, Any]) -> str:
    """One sentence on one similarity set: F1 of both arms and the relative change."""
    plm, tuned = entry.get("plm", {}).get("f1"), entry.get("finetuned", {}).get("f1")
    if plm is None or tuned is None:
        return f"{name}: no comparison (an arm is missing)."
    change = entry.get("relative_f1_change")
    relative = f" ({change:+.0%})" if change is not None else ""
    better = "fine-tuned" if tuned > plm else "PLM" if plm > tuned else "neither"
    return f"{name} (KNN): F1 {tuned:.3f} fine-tuned vs {plm:.3f} PLM{relative}; better: {better}."


def bundle_verdict(bundle: dict[str, Any]) -> str:
    """One sentence on the run's bundle: published or not, which bundle is live, and why."""
    if bundle.get("published"):
        return f"Bundle {bundle['bundle']} is live at {bundle['live']}: {bundle['reason']}."
    live = f"the live bundle is {bundle['live']}" if bundle.get("live") else "no bundle is live"
    return f"Bundle {bundle['bundle']} was not published ({live}): {bundle['reason']}."


def verdict_lines(metrics: dict[str, Any]) -> list[str]:
    """The verdict, one line per task and similarity set, and one on the bundle when there is one."""
    lines = [task_verdict(task, entry.get("comparisons", {})) for task, entry in metrics.get("tasks", {}).items()]
    lines += [similarity_verdict(name, entry) for name, entry in metrics.get("similarity", {}).items()]
    if metrics.get("bundle"):
        lines.append(bundle_verdict(metrics["bundle"]))
    return lines
