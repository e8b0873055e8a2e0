"""build-report redoes only what changed: intervals, curves and plots of unchanged inputs come from its cache."""

import pytest

from commerce_lm import names
from commerce_lm.config import parse_config, section_for
from commerce_lm.steps import build_report
from commerce_lm.steps.build_report import collect, plots, scoring, similarity
from tests.helpers.report import predictions, report_inputs

TASKS = ["prohibited", "counterfeit"]
OUTPUTS = (names.METRICS_JSON, build_report.CURVES_JSON, names.REPORT_MD, names.REPORT_HTML)


@pytest.fixture
def report(tmp_path, monkeypatch):
    """A report builder over fixed synthetic inputs, with its own empty cache."""
    monkeypatch.setenv("COMMERCE_LM_CACHE", str(tmp_path / "cache"))
    tasks = [{"name": t, "data": "x.parquet", "label": "y"} for t in TASKS]
    similarity_set = [{"name": "relisted", "data": "x.parquet", "group": "g"}]
    raw = {"name": "r", "model": "m", "domain": {"data": "x.parquet", "label": "l"}, "tasks": tasks,
           "similarity": similarity_set, "report": {"bootstrap_samples": 50, "min_slice_rows": 5}}  # fmt: skip
    section = section_for("build-report", parse_config(raw))
    inputs = report_inputs(tmp_path / "run", TASKS, n=120, queries=30)

    def build(name):
        out = tmp_path / name
        build_report.run(section, out_dir=str(out), **inputs)
        return {f: (out / f).read_bytes() for f in OUTPUTS}

    return build, inputs


def _fail(*args, **kwargs):
    raise AssertionError("recomputed a part the cache holds")


def test_a_second_report_on_unchanged_inputs_reads_the_cache_and_is_identical(report, monkeypatch):
    build, _ = report
    first = build("first")
    for module, name in ((scoring, "bootstrap_ci"), (scoring, "paired_bootstrap_diff"),
                         (similarity, "paired_bootstrap_f1"), (plots, "curve_plot"), (plots, "knn_plot")):  # fmt: skip
        monkeypatch.setattr(module, name, _fail)
    assert build("second") == first


def test_a_changed_task_is_recomputed_and_only_that_task(report, monkeypatch):
    build, inputs = report
    first = build("first")
    scored = []
    real = collect._score_task
    monkeypatch.setattr(collect, "_score_task", lambda cfg, arms: scored.append(arms) or real(cfg, arms))
    # counterfeit's fine-tuned head now scores its test rows differently.
    predictions(120, 99, 0.5).to_parquet(f"{inputs['heads_dir']}/{names.HEADS_DIR}/finetuned/counterfeit.parquet")
    second = build("second")
    assert len(scored) == 1 and scored[0]["finetuned"][0]["score"].equals(predictions(120, 99, 0.5)["score"])
    assert second[names.METRICS_JSON] != first[names.METRICS_JSON]
