"""Rendering the metrics document as Markdown and as a self-contained HTML page, from Jinja2 templates.

The page (``templates/report.html``) is autoescaped: listing text is untrusted input, and with
autoescaping every value reaches the page as text, so no forgotten ``escape()`` call can let markup
through. The HTML inlines its plots (base64 PNG) so the Kubeflow UI renders it without other files.
"""

from __future__ import annotations

from typing import Any

import jinja2

from commerce_lm.config import ReportSection
from commerce_lm.steps.build_report import cache, plots, tables
from commerce_lm.steps.build_report.verdict import verdict_lines

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("commerce_lm.steps.build_report", "templates"),
    # On for report.html; the Markdown is no HTML page and holds no listing text.
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
# A Markdown table cell: a literal pipe would end the cell early.
_TEMPLATES.filters["md_cell"] = lambda cell: str(cell).replace("|", "\\|")


def _context(cfg: ReportSection, metrics: dict[str, Any]) -> dict[str, Any]:
    """What both pages show: the title, the run, the verdict, the domain line and the tables."""
    return {
        "title": cfg.report.title,
        "name": cfg.name,
        "model": cfg.model,
        "verdict_title": tables.VERDICT_TITLE,
        "verdict": verdict_lines(metrics),
        "domain_line": tables.domain_line(metrics),
        "sections": tables.sections(metrics),
    }


def render_markdown(cfg: ReportSection, metrics: dict[str, Any]) -> str:
    """The report as Markdown."""
    return _TEMPLATES.get_template("report.md").render(_context(cfg, metrics))


def _plots(metrics: dict[str, Any], curves: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """Section key -> (alt text, base64 PNG) of the plots shown under that section."""
    shown = {"binary": [(f"ROC and PR curves of {task}", _curve_plot(task, c, metrics)) for task, c in curves.items()]}
    similarity = {
        name: {arm: e.get(arm, {}).get("f1") for arm in ("plm", "finetuned")}
        for name, e in metrics.get("similarity", {}).items()
    }
    if knn := cache.cached("plots", cache.key("knn", similarity), lambda: plots.knn_plot(metrics)):
        shown["similarity"] = [("KNN F1", knn)]
    return shown


def _curve_plot(task: str, curves: dict[str, Any], metrics: dict[str, Any]) -> str:
    """:func:`plots.curve_plot`, from the cache when the task's curves and AUCs are those drawn before."""
    aucs = {arm: [m.get("roc_auc"), m.get("pr_auc")] for arm, m in metrics["tasks"][task].items() if arm in curves}
    return cache.cached(
        "plots", cache.key("curves", task, curves, aucs), lambda: plots.curve_plot(task, curves, metrics["tasks"][task])
    )


def render_html(
    cfg: ReportSection, metrics: dict[str, Any], curves: dict[str, Any], examples: dict[str, list[dict[str, Any]]]
) -> str:
    """The report as one self-contained HTML page (inline CSS and images, no scripts).

    Args:
        cfg: The step's section.
        metrics: The metrics document.
        curves: ROC/PR curves per task and arm.
        examples: Per task, listings the fine-tuned head gets most wrong (untrusted text).

    Returns:
        The page, every value in it escaped by the template.
    """
    return _TEMPLATES.get_template("report.html").render(
        _context(cfg, metrics),
        plots=_plots(metrics, curves),
        examples_title=tables.EXAMPLES_TITLE,
        examples_header=tables.EXAMPLES_HEADER,
        examples={task: tables.example_rows(rows) for task, rows in examples.items()},
    )
