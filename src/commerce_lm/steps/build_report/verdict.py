"""The report's opening verdict: which embeddings to use for which task, and where the difference is noise.

It reads the paired bootstrap comparisons that ``build-report`` computes on the same test rows
(fine-tuned minus PLM, fine-tuned minus end-to-end; per task and per language) and on the same
test queries (each similarity set's F1), the end-to-end baseline's training budget, and the
retraining gate's decision on the run's bundle.
"""

from __future__ import annotations

from typing import Any

from commerce_lm.steps.build_report.tables import better_arm, diff_ci, earlier_origin

# A language is named only with this many test rows: on fewer its interval is too wide to act on.
MIN_VERDICT_ROWS = 50


def _versus_e2e(comparison: dict[str, Any], e2e: dict[str, Any]) -> str:
    """The clause on end-to-end fine-tuning; no claim against a baseline its step cap cut short."""
    if comparison["pr_auc_significant"] and comparison["pr_auc_diff"] < 0:
        return f"end-to-end fine-tuning is better ({diff_ci(comparison)}) at its higher cost"
    if e2e.get("capped"):
        return (
            f"end-to-end under-trained (capped at {e2e.get('global_steps')} steps while validation still "
            f"improved), so no verdict against it ({diff_ci(comparison)})"
        )
    if not comparison["pr_auc_significant"]:
        return f"frozen fine-tuned + head is at par with end-to-end fine-tuning ({diff_ci(comparison)})"
    return f"frozen fine-tuned + head is better than end-to-end fine-tuning ({diff_ci(comparison)})"


def task_verdict(task: str, comparisons: dict[str, Any], e2e: dict[str, Any] | None = None) -> str:
    """One sentence on one task, from its PR AUC comparisons (95% paired bootstrap intervals).

    Args:
        task: The task's name.
        comparisons: The task's ``comparisons`` (``finetuned_minus_plm``, ``finetuned_minus_e2e``).
        e2e: The end-to-end arm's metrics; with ``capped`` set, fine-tuned + head is not called
            better than (or at par with) a baseline whose step cap stopped it still improving.

    Returns:
        The sentence.
    """
    versus_plm = comparisons.get("finetuned_minus_plm")
    if versus_plm is None:
        return f"{task}: no comparison (an arm is missing)."
    if not versus_plm["pr_auc_significant"]:
        use = f"fine-tuned and PLM embeddings are not significantly different (PR AUC {diff_ci(versus_plm)})"
    elif versus_plm["pr_auc_diff"] > 0:
        use = f"use the fine-tuned embeddings (PR AUC {diff_ci(versus_plm)} over the PLM)"
    else:
        use = f"use the PLM embeddings: fine-tuning lost PR AUC {diff_ci(versus_plm)}"
    versus_e2e = comparisons.get("finetuned_minus_e2e")
    if versus_e2e is None:
        return f"{task}: {use}; no end-to-end baseline this run, and none measured before."
    return f"{task}: {use}; {_versus_e2e(versus_e2e, e2e or {})}{_origin_clause(e2e or {})}."


def _origin_clause(e2e: dict[str, Any]) -> str:
    """Where end-to-end figures measured by an earlier run come from (``""`` when measured now)."""
    origin = earlier_origin(e2e)
    return f"; end-to-end: {origin}" if origin else ""


def language_verdict(task: str, by_language: dict[str, Any]) -> str | None:
    """The languages where fine-tuning loses PR AUC to the PLM beyond its interval.

    Only languages with at least :data:`MIN_VERDICT_ROWS` test rows are judged; ``None`` when none has.
    """
    judged = {
        lang: entry["finetuned_minus_plm"]
        for lang, entry in by_language.items()
        if "finetuned_minus_plm" in entry and entry["finetuned_minus_plm"]["n"] >= MIN_VERDICT_ROWS
    }
    if not judged:
        return None
    lost = [
        f"{lang} {diff_ci(c)} (n {c['n']})"
        for lang, c in judged.items()
        if c["pr_auc_significant"] and c["pr_auc_diff"] < 0
    ]
    if not lost:
        return (
            f"{task}: no language loses PR AUC to the PLM beyond its interval "
            f"({len(judged)} with at least {MIN_VERDICT_ROWS} test rows)."
        )
    return f"{task}: fine-tuning loses PR AUC to the PLM in {', '.join(lost)}."


def similarity_verdict(name: str, entry: dict[str, Any]) -> str:
    """One sentence on one similarity set: F1 of both arms, the relative change and the paired difference.

    An arm is called better only when the difference's interval (bootstrap over test queries)
    excludes 0.
    """
    plm, tuned = entry.get("plm", {}).get("f1"), entry.get("finetuned", {}).get("f1")
    comparison = entry.get("comparisons", {}).get("finetuned_minus_plm")
    if plm is None or tuned is None or comparison is None:
        return f"{name}: no comparison (an arm is missing)."
    change = entry.get("relative_f1_change")
    relative = f" ({change:+.0%})" if change is not None else ""
    better = better_arm(comparison, "f1")
    judgement = better if better == "no clear difference" else f"better: {better}"
    return (
        f"{name} (KNN): F1 {tuned:.3f} fine-tuned vs {plm:.3f} PLM{relative}, difference "
        f"{diff_ci(comparison, 'f1')}; {judgement}."
    )


def bundle_verdict(bundle: dict[str, Any]) -> str:
    """One sentence on the run's bundle: published or not, which bundle is live, and why."""
    if bundle.get("published"):
        return f"Bundle {bundle['bundle']} is live at {bundle['live']}: {bundle['reason']}."
    live = f"the live bundle is {bundle['live']}" if bundle.get("live") else "no bundle is live"
    return f"Bundle {bundle['bundle']} was not published ({live}): {bundle['reason']}."


def verdict_lines(metrics: dict[str, Any]) -> list[str]:
    """The verdict: a line per task (and one on its languages), per similarity set, and on the bundle."""
    lines = []
    for task, entry in metrics.get("tasks", {}).items():
        lines.append(task_verdict(task, entry.get("comparisons", {}), entry.get("e2e")))
        languages = language_verdict(task, entry.get("comparisons_by_language", {}))
        lines += [languages] if languages else []
    lines += [similarity_verdict(name, entry) for name, entry in metrics.get("similarity", {}).items()]
    if metrics.get("bundle"):
        lines.append(bundle_verdict(metrics["bundle"]))
    return lines
