"""The report's tables as plain text cells: one builder per section, shared by the Markdown and HTML pages.

Titles, headers and number formats live here, once; the templates (``templates/``) only lay the
cells out, so the two pages cannot drift apart.
"""

from __future__ import annotations

from typing import Any, NamedTuple

ARMS = (("plm", "PLM frozen + head"), ("finetuned", "Fine-tuned frozen + head"), ("e2e", "End-to-end"))
VERDICT_TITLE = "Verdict (95% paired bootstrap intervals on the same test rows)"
EXAMPLES_TITLE = "Listings the fine-tuned head gets most wrong"
EXAMPLES_HEADER = ["id", "label", "score", "text"]


class Section(NamedTuple):
    """One titled table of the report; ``key`` names the plots the HTML page shows under it."""

    key: str
    title: str
    header: list[str]
    rows: list[list[str]]


def fmt(value: Any, digits: int = 3) -> str:
    """A number as report text: ``-`` when missing, ``nan`` kept visible, floats to ``digits`` places."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.{digits}f}"
    return str(value)


def earlier_origin(arm: dict[str, Any]) -> str | None:
    """``from run X, bundle Y, not re-run`` for an arm scored on an earlier run's record, else None."""
    origin = arm.get("origin")
    return f"from run {origin.get('run')}, bundle {origin.get('bundle')}, not re-run" if origin else None


def _ci(arm: dict[str, Any], key: str) -> str:
    interval = arm.get(f"{key}_ci") or []
    return f"{fmt(arm.get(key))} [{fmt(interval[0])}, {fmt(interval[1])}]" if interval else fmt(arm.get(key))


REFERENCE_HEADER = [
    "Task / Model",
    "ROC AUC [95% CI]",
    "PR AUC [95% CI]",
    "Train s",
    "Reference ROC AUC",
    "Reference PR AUC",
]


def reference_rows(metrics: dict[str, Any]) -> list[list[str]]:
    """Task/Model, ROC AUC, PR AUC (with 95% CIs), train seconds, and the reference numbers."""
    reference = metrics.get("reference", {})
    rows = []
    for task, entry in metrics["tasks"].items():
        for arm, label in ARMS:
            if arm in entry:
                ref = reference.get(arm, {})
                rows.append(
                    [
                        f"{task} / {label}" + (f" ({o})" if (o := earlier_origin(entry[arm])) else ""),
                        _ci(entry[arm], "roc_auc"),
                        _ci(entry[arm], "pr_auc"),
                        fmt(entry[arm].get("train_seconds"), 1),
                        ref.get("roc_auc", "-"),
                        ref.get("pr_auc", "-"),
                    ]
                )
    return rows


KNN_HEADER = [
    "Similarity task",
    "Embeddings",
    "F1",
    "Precision",
    "Recall",
    "Recall@10",
    "MRR",
    "F1 same-language",
    "F1 cross-language",
    "Relative F1 change",
]


def knn_rows(metrics: dict[str, Any]) -> list[list[str]]:
    """One row per similarity task and arm."""
    rows = []
    for task, entry in metrics.get("similarity", {}).items():
        for arm in ("plm", "finetuned"):
            if arm in entry:
                m = entry[arm]
                by_lang = m.get("by_language", {})
                rows.append(
                    [
                        task,
                        arm,
                        fmt(m["f1"]),
                        fmt(m["precision"]),
                        fmt(m["recall"]),
                        fmt(m.get("recall_at_10")),
                        fmt(m.get("mrr")),
                        fmt((by_lang.get("same_language") or {}).get("f1")),
                        fmt((by_lang.get("cross_language") or {}).get("f1")),
                        fmt(entry.get("relative_f1_change")) if arm == "finetuned" else "",
                    ]
                )
    return rows


def diff_ci(comparison: dict[str, Any] | None, key: str = "pr_auc") -> str:
    """A paired difference with its interval, ``+0.012 [-0.004, +0.030]``; ``-`` without a comparison."""
    if not comparison:
        return "-"
    interval = comparison.get(f"{key}_diff_ci") or []
    span = f" [{interval[0]:+.3f}, {interval[1]:+.3f}]" if interval else ""
    return f"{comparison[f'{key}_diff']:+.3f}{span}"


def better_arm(comparison: dict[str, Any], key: str) -> str:
    """Which arm of a fine-tuned minus PLM comparison is better: only when the interval excludes 0."""
    if not comparison[f"{key}_significant"]:
        return "no clear difference"
    return "fine-tuned" if comparison[f"{key}_diff"] > 0 else "PLM"


LANGUAGE_HEADER = [
    "Task",
    "Language",
    "n test",
    "PLM PR AUC",
    "Fine-tuned PR AUC",
    "Fine-tuned - PLM PR AUC [95% CI]",
    "PLM ROC AUC",
    "Fine-tuned ROC AUC",
    "End-to-end ROC AUC",
]


def language_rows(metrics: dict[str, Any]) -> list[list[str]]:
    """Per task and language: PLM and fine-tuned PR AUC, their paired difference, every arm's ROC AUC."""
    rows = []
    for task, entry in metrics["tasks"].items():
        slices = {arm: entry[arm].get("by_language", {}) for arm, _ in ARMS if arm in entry}
        for lang in sorted({lang for by_language in slices.values() for lang in by_language}):
            cell = {arm: by_language.get(lang, {}) for arm, by_language in slices.items()}
            n = next((c["n"] for c in cell.values() if "n" in c), 0)
            comparison = entry.get("comparisons_by_language", {}).get(lang, {}).get("finetuned_minus_plm")
            rows.append(
                [
                    task,
                    lang,
                    str(n),
                    fmt(cell.get("plm", {}).get("pr_auc")),
                    fmt(cell.get("finetuned", {}).get("pr_auc")),
                    diff_ci(comparison, "pr_auc"),
                    *(fmt(cell.get(arm, {}).get("roc_auc")) for arm, _ in ARMS),
                ]
            )
    return rows


SIMILARITY_DIFF_HEADER = [
    "Similarity task",
    "Pairs",
    "Test queries",
    "PLM F1",
    "Fine-tuned F1",
    "Fine-tuned - PLM F1 [95% CI]",
    "Better",
]
# The slices of the test pairs as evaluate-knn names them, and as the table reads them.
_PAIR_SLICES = {"all": "all", "same_language": "same-language", "cross_language": "cross-language"}


def similarity_diff_rows(metrics: dict[str, Any]) -> list[list[str]]:
    """Per similarity set and slice of its pairs: both arms' F1 and the paired difference over queries."""
    rows = []
    for task, entry in metrics.get("similarity", {}).items():
        by_slice = {"all": entry.get("comparisons", {}), **entry.get("comparisons_by_language", {})}
        for part, label in _PAIR_SLICES.items():
            comparison = by_slice.get(part, {}).get("finetuned_minus_plm")
            if not comparison:
                continue
            f1 = {
                arm: entry[arm]["f1"] if part == "all" else (entry[arm]["by_language"].get(part) or {}).get("f1")
                for arm in ("plm", "finetuned")
            }
            rows.append(
                [
                    task,
                    label,
                    str(comparison["n"]),
                    fmt(f1["plm"]),
                    fmt(f1["finetuned"]),
                    diff_ci(comparison, "f1"),
                    better_arm(comparison, "f1"),
                ]
            )
    return rows


COST_HEADER = ["Task", "Head / embedding route s", "End-to-end s", "Ratio"]


def cost_rows(metrics: dict[str, Any]) -> list[list[str]]:
    """Head vs end-to-end training time per task, then the route totals."""
    cost = metrics.get("cost", {})
    rows = [
        [task, fmt(c["head_seconds"], 2), fmt(c["e2e_seconds"], 1), fmt(c["head_to_e2e_time_ratio"], 4)]
        for task, c in cost.get("per_task", {}).items()
    ]
    if cost:
        rows.append(
            [
                f"all {cost['num_tasks']} tasks: extract once + heads vs end-to-end",
                fmt(cost["embedding_route_seconds"], 1),
                fmt(cost["e2e_route_seconds"], 1),
                fmt(cost.get("embedding_route_to_e2e_ratio"), 4),
            ]
        )
    return rows


DATA_HEADER = ["Dataset", "Input rows", "Accepted", "Rejected", "Sampled out", "Sample cap"]


def data_rows(metrics: dict[str, Any]) -> list[list[str]]:
    """Row counts per dataset, with the sample cap the config set."""
    return [
        [
            name,
            str(d["input_rows"]),
            str(d["accepted_rows"]),
            str(d["rejected_rows"]),
            str(d.get("sampled_out_rows", 0)),
            fmt(metrics.get("data_sampling", {}).get(name)),
        ]
        for name, d in metrics.get("data", {}).items()
    ]


def sections(metrics: dict[str, Any]) -> list[Section]:
    """The report's tables with rows, in page order (after the verdict and the domain line).

    A table without rows is left out: a run without similarity sets (or languages) shows no empty
    KNN (or per-language) table.
    """
    every = [
        Section("binary", "Binary integrity tasks (test split)", REFERENCE_HEADER, reference_rows(metrics)),
        Section(
            "language",
            "Per language (95% paired bootstrap over the language's test rows)",
            LANGUAGE_HEADER,
            language_rows(metrics),
        ),
        Section("similarity", "Similarity detection (KNN)", KNN_HEADER, knn_rows(metrics)),
        Section(
            "similarity_diff",
            "Similarity: fine-tuned minus PLM (95% paired bootstrap over test queries)",
            SIMILARITY_DIFF_HEADER,
            similarity_diff_rows(metrics),
        ),
        Section("cost", "Training cost", COST_HEADER, cost_rows(metrics)),
        Section("data", "Data", DATA_HEADER, data_rows(metrics)),
    ]
    return [section for section in every if section.rows]


def example_rows(examples: list[dict[str, Any]]) -> list[list[str]]:
    """The hardest listings of one task as cells (``EXAMPLES_HEADER``); their text is untrusted."""
    return [[str(r["id"]), str(r["label"]), fmt(r["score"]), str(r["text"])] for r in examples]


def domain_line(metrics: dict[str, Any]) -> str:
    """One sentence on the domain fine-tune: objective, validation scores, time and pooling."""
    domain = metrics.get("domain", {})
    objective = ", ".join(f"{name} {weight:g}" for name, weight in (domain.get("objective") or {}).items())
    pooling = {arm: e.get("pooling") for arm, e in metrics.get("embedding", {}).items()}
    # Without a cross-entropy term the domain head is never trained: its accuracy means nothing.
    head = (
        f"validation accuracy {fmt(domain.get('val_accuracy'))}, macro-F1 {fmt(domain.get('val_macro_f1'))}"
        if "cross_entropy" in (domain.get("objective") or {"cross_entropy": 1})
        else "no domain classifier (no cross-entropy term)"
    )
    return (
        f"Domain fine-tuning ({objective or 'objective not recorded'}): {head}, linear-probe macro-F1 "
        f"{fmt(domain.get('val_probe_macro_f1'))}, {fmt(domain.get('train_seconds'), 1)} s. Pooling: PLM "
        f"{pooling.get('plm') or '-'}, fine-tuned {pooling.get('finetuned') or '-'}."
    )
