"""What the Kubeflow UI shows of a report: the first task's fine-tuned head, and every language slice."""

import json

from commerce_lm.steps.build_report import CURVES_JSON, ui_curves


def _curve(n: int) -> dict:
    return {"fpr": [0.0, 1.0], "tpr": [0.0, 1.0], "thresholds": [float(n), 0.0]}


def test_headline_is_the_first_tasks_finetuned_head_and_slices_cover_every_language(tmp_path):
    curves = {
        task: {
            arm: {"roc": _curve(i), "confusion": [[i, 0], [0, i]], "by_language": {"de": _curve(i), "en": _curve(i)}}
            for i, arm in enumerate(("plm", "finetuned", "e2e"))
        }
        for task in ("counterfeit", "prohibited")
    }
    (tmp_path / CURVES_JSON).write_text(json.dumps(curves))
    ui = ui_curves(str(tmp_path), "prohibited")
    assert ui.headline == curves["prohibited"]["finetuned"]
    assert [name for name, _ in ui.slices][:3] == [
        "counterfeit/plm/de",
        "counterfeit/plm/en",
        "counterfeit/finetuned/de",
    ]
    assert len(ui.slices) == 2 * 3 * 2 and ui.slices[-1] == ("prohibited/e2e/en", _curve(2))
