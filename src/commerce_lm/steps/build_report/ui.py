"""What the Kubeflow UI shows of a report: one headline ROC curve, and ROC slices per language.

Plain data read from the report's ``curves.json``, so the component only hands it to kfp's artifact
types and the choice of what to show is tested with the library.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from commerce_lm import storage
from commerce_lm.steps.build_report.collect import CURVES_JSON


@dataclass(frozen=True)
class UiCurves:
    """The curves the UI shows.

    Attributes:
        headline: The first task's fine-tuned head: ``roc`` (``fpr``, ``tpr``, ``thresholds``; None
            when the test split has one class) and ``confusion`` (a 2x2 matrix).
        slices: ``(task/arm/language, roc)`` for every task, arm and language.
    """

    headline: dict[str, Any]
    slices: list[tuple[str, dict[str, list[float]]]]


def ui_curves(report_dir: str, first_task: str) -> UiCurves:
    """The headline curve and the per-language slices of the report in ``report_dir``.

    Args:
        report_dir: A ``build-report`` output folder.
        first_task: The task whose fine-tuned head is the headline (the config's first).

    Returns:
        The curves, in the report's order of tasks, arms and languages.
    """
    curves = storage.read_json(storage.join(report_dir, CURVES_JSON))
    slices = [
        (f"{task}/{arm}/{lang}", lang_curve)
        for task, arms in curves.items()
        for arm, curve in arms.items()
        for lang, lang_curve in curve["by_language"].items()
    ]
    return UiCurves(headline=curves[first_task]["finetuned"], slices=slices)
