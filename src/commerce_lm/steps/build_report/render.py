"""Rendering the metrics document as Markdown and as a self-contained HTML page.

The HTML inlines its plots (base64 PNG) so the Kubeflow UI renders it without other files, and
escapes every piece of text it shows: listing text is untrusted input.
"""

from __future__ import annotations

import base64
import io
from html import escape
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: reports are rendered in pods and CI

import matplotlib.pyplot as plt  # noqa: E402

from commerce_lm.config import ReportSection  # noqa: E402
from commerce_lm.steps.build_report.verdict import verdict_lines  # noqa: E402

ARMS = (("plm", "PLM frozen + head"), ("finetuned", "Fine-tuned frozen + head"), ("e2e", "End-to-end"))


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.{digits}f}"
    return str(value)


def _ci(arm: dict[str, Any], key: str) -> str:
    interval = arm.get(f"{key}_ci") or []
    return f"{_fmt(arm.get(key))} [{_fmt(interval[0])}, {_fmt(interval[1])}]" if interval else _fmt(arm.get(key))


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
                        f"{task} / {label}",
                        _ci(entry[arm], "roc_auc"),
                        _ci(entry[arm], "pr_auc"),
                        _fmt(entry[arm].get("train_seconds"), 1),
                        ref.get("roc_auc", "-"),
                        ref.get("pr_auc", "-"),
                    ]
                )
    return rows


REFERENCE_HEADER = [
    "Task / Model",
    "ROC AUC [95% CI]",
    "PR AUC [95% CI]",
    "Train s",
    "Reference ROC AUC",
    "Reference PR AUC",
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
                        _fmt(m["f1"]),
                        _fmt(m["precision"]),
                        _fmt(m["recall"]),
                        _fmt(m.get("recall_at_10")),
                        _fmt(m.get("mrr")),
                        _fmt((by_lang.get("same_language") or {}).get("f1")),
                        _fmt((by_lang.get("cross_language") or {}).get("f1")),
                        _fmt(entry.get("relative_f1_change")) if arm == "finetuned" else "",
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


def language_rows(metrics: dict[str, Any]) -> list[list[str]]:
    """ROC AUC per task, language and arm."""
    rows = []
    for task, entry in metrics["tasks"].items():
        langs = sorted({lang for arm, _ in ARMS if arm in entry for lang in entry[arm].get("by_language", {})})
        for lang in langs:
            cells = [
                _fmt(entry[arm].get("by_language", {}).get(lang, {}).get("roc_auc")) if arm in entry else "-"
                for arm, _ in ARMS
            ]
            n = next(
                (
                    entry[a]["by_language"][lang]["n"]
                    for a, _ in ARMS
                    if a in entry and lang in entry[a].get("by_language", {})
                ),
                0,
            )
            rows.append([task, lang, str(n), *cells])
    return rows


LANGUAGE_HEADER = ["Task", "Language", "n test", "PLM ROC AUC", "Fine-tuned ROC AUC", "End-to-end ROC AUC"]


def cost_rows(metrics: dict[str, Any]) -> list[list[str]]:
    """Head vs end-to-end training time per task, then the route totals."""
    cost = metrics.get("cost", {})
    rows = [
        [task, _fmt(c["head_seconds"], 2), _fmt(c["e2e_seconds"], 1), _fmt(c["head_to_e2e_time_ratio"], 4)]
        for task, c in cost.get("per_task", {}).items()
    ]
    if cost:
        rows.append(
            [
                f"all {cost['num_tasks']} tasks: extract once + heads vs end-to-end",
                _fmt(cost["embedding_route_seconds"], 1),
                _fmt(cost["e2e_route_seconds"], 1),
                _fmt(cost.get("embedding_route_to_e2e_ratio"), 4),
            ]
        )
    return rows


COST_HEADER = ["Task", "Head / embedding route s", "End-to-end s", "Ratio"]


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _sections(metrics: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    return [
        ("Binary integrity tasks (test split)", REFERENCE_HEADER, reference_rows(metrics)),
        ("Per language", LANGUAGE_HEADER, language_rows(metrics)),
        ("Similarity detection (KNN)", KNN_HEADER, knn_rows(metrics)),
        ("Training cost", COST_HEADER, cost_rows(metrics)),
        (
            "Data",
            ["Dataset", "Input rows", "Accepted", "Rejected", "Sampled out", "Sample cap"],
            [
                [
                    name,
                    str(d["input_rows"]),
                    str(d["accepted_rows"]),
                    str(d["rejected_rows"]),
                    str(d.get("sampled_out_rows", 0)),
                    _fmt(metrics.get("data_sampling", {}).get(name)),
                ]
                for name, d in metrics.get("data", {}).items()
            ],
        ),
    ]


def _domain_line(metrics: dict[str, Any]) -> str:
    domain = metrics.get("domain", {})
    objective = ", ".join(f"{name} {weight:g}" for name, weight in (domain.get("objective") or {}).items())
    pooling = {arm: e.get("pooling") for arm, e in metrics.get("embedding", {}).items()}
    # Without a cross-entropy term the domain head is never trained: its accuracy means nothing.
    head = (
        f"validation accuracy {_fmt(domain.get('val_accuracy'))}, macro-F1 {_fmt(domain.get('val_macro_f1'))}"
        if "cross_entropy" in (domain.get("objective") or {"cross_entropy": 1})
        else "no domain classifier (no cross-entropy term)"
    )
    return (
        f"Domain fine-tuning ({objective or 'objective not recorded'}): {head}, linear-probe macro-F1 "
        f"{_fmt(domain.get('val_probe_macro_f1'))}, {_fmt(domain.get('train_seconds'), 1)} s. Pooling: PLM "
        f"{pooling.get('plm') or '-'}, fine-tuned {pooling.get('finetuned') or '-'}."
    )


VERDICT_TITLE = "Verdict (95% paired bootstrap intervals on the same test rows)"


def render_markdown(cfg: ReportSection, metrics: dict[str, Any]) -> str:
    """The report as Markdown."""
    parts = [f"# {cfg.report.title}", "", f"Run `{cfg.name}`, model `{cfg.model}`.", "", f"## {VERDICT_TITLE}", ""]
    parts += [f"- {line}" for line in verdict_lines(metrics)]
    parts += ["", _domain_line(metrics)]
    for title, header, rows in _sections(metrics):
        parts += ["", f"## {title}", "", _markdown_table(header, rows)]
    return "\n".join(parts) + "\n"


def _png(fig: plt.Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _curve_plot(task: str, curves: dict[str, Any], metrics: dict[str, Any]) -> str:
    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for arm, label in ARMS:
        curve = curves.get(arm, {}).get("roc")
        if curve:
            roc_ax.plot(curve["fpr"], curve["tpr"], label=f"{label} ({_fmt(metrics[arm]['roc_auc'])})")
        pr = curves.get(arm, {}).get("pr")
        if pr:
            pr_ax.plot(pr["recall"], pr["precision"], label=f"{label} ({_fmt(metrics[arm]['pr_auc'])})")
    roc_ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    roc_ax.set(title=f"{task}: ROC", xlabel="False positive rate", ylabel="True positive rate")
    pr_ax.set(title=f"{task}: precision-recall", xlabel="Recall", ylabel="Precision", ylim=(0, 1.02))
    roc_ax.legend(fontsize=8)
    pr_ax.legend(fontsize=8)
    return _png(fig)


def _knn_plot(metrics: dict[str, Any]) -> str | None:
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


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f3f3f3}img{max-width:100%}.example{font-family:monospace;white-space:pre-wrap;font-size:12px}"""


def render_html(
    cfg: ReportSection, metrics: dict[str, Any], curves: dict[str, Any], examples: dict[str, list[dict[str, Any]]]
) -> str:
    """The report as one self-contained HTML page (inline CSS and images, no scripts).

    Args:
        cfg: The run config.
        metrics: The metrics document.
        curves: ROC/PR curves per task and arm.
        examples: Per task, listings the fine-tuned head gets most wrong (untrusted text).
    """
    body = [
        f"<h1>{escape(cfg.report.title)}</h1>",
        f"<p>Run <code>{escape(cfg.name)}</code>, model <code>{escape(cfg.model)}</code>.</p>",
        f"<h2>{escape(VERDICT_TITLE)}</h2>",
        "<ul>" + "".join(f"<li>{escape(line)}</li>" for line in verdict_lines(metrics)) + "</ul>",
        f"<p>{escape(_domain_line(metrics))}</p>",
    ]
    for title, header, rows in _sections(metrics):
        body += [f"<h2>{escape(title)}</h2>", _html_table(header, rows)]
        if title.startswith("Binary"):
            for task, task_curves in curves.items():
                body.append(
                    f'<img alt="ROC and PR curves of {escape(task)}" '
                    f'src="data:image/png;base64,{_curve_plot(task, task_curves, metrics["tasks"][task])}">'
                )
        if title.startswith("Similarity") and (knn := _knn_plot(metrics)):
            body.append(f'<img alt="KNN F1" src="data:image/png;base64,{knn}">')
    if examples:
        body.append("<h2>Listings the fine-tuned head gets most wrong</h2>")
        for task, rows in examples.items():
            body.append(f"<h3>{escape(task)}</h3>")
            body.append(
                _html_table(
                    ["id", "label", "score", "text"],
                    [[str(r["id"]), str(r["label"]), _fmt(r["score"]), str(r["text"])] for r in rows],
                )
            )
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{escape(cfg.report.title)}</title>'
        f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n"
    )
