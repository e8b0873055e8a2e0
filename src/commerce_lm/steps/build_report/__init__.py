"""Step ``build-report``: collect every step's metrics (:mod:`.collect`) and render them (:mod:`.render`)."""

from commerce_lm.steps.build_report.collect import CURVES_JSON, run, scalar_metrics
from commerce_lm.steps.build_report.ui import UiCurves, ui_curves

__all__ = ["CURVES_JSON", "UiCurves", "run", "scalar_metrics", "ui_curves"]
