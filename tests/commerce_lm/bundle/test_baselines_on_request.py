"""End-to-end baselines on request: the plan per task, the record in the registry, the report's origin."""

import json

import pytest

from commerce_lm import names
from commerce_lm.bundle import baselines
from commerce_lm.config import parse_config, section_for
from commerce_lm.steps import build_report
from commerce_lm_pipelines.pipeline import build_pipeline, pipeline_arguments
from tests.helpers.report import baseline_output, report_inputs

TASKS = ["prohibited", "counterfeit"]


def _config(registry, **task_e2e):
    """A run config of :data:`TASKS` with the given ``e2e`` per task, publishing to ``registry``."""
    tasks = [
        {"name": t, "data": "x.parquet", "label": "y", **({"e2e": task_e2e[t]} if t in task_e2e else {})} for t in TASKS
    ]
    raw = {"name": "first", "model": "m", "domain": {"data": "x.parquet", "label": "l"}, "tasks": tasks,
           "publish": {"location": str(registry)}}  # fmt: skip
    return parse_config(raw)


def _record_every_planned_baseline(cfg, tmp_path):
    """What publish-bundle does at the end of a run: record each planned baseline under its key."""
    for task, key in pipeline_arguments(cfg)["baseline_keys"].items():
        baselines.record(
            cfg.publish.location,
            task,
            key,
            str(baseline_output(tmp_path / task, task, 40)),
            {"run": "first", "bundle": "b-1"},
        )


def test_never_leaves_the_task_out_of_the_baseline_loop_and_changes_no_section(tmp_path):
    default, never = _config(tmp_path / "reg"), _config(tmp_path / "reg", counterfeit="never")
    arguments = pipeline_arguments(never)
    assert [t["spec_name"] for t in arguments["tasks"]] == ["prohibited"]
    assert set(arguments["baseline_keys"]) == {"prohibited"} and arguments["earlier_baselines"] == {}
    # The plan is no step's setting: every section, and so every cache key, stays as it was.
    for step in ("prepare-data", "finetune-baseline", "train-heads", "build-report"):
        assert section_for(step, never).to_json() == section_for(step, default).to_json()


def test_auto_runs_a_baseline_once_then_reads_the_earlier_record(tmp_path):
    cfg = _config(tmp_path / "reg")
    assert [t["spec_name"] for t in pipeline_arguments(cfg)["tasks"]] == TASKS  # first run: both measured
    _record_every_planned_baseline(cfg, tmp_path)
    second = pipeline_arguments(cfg)
    assert second["tasks"] == [] and second["baseline_keys"] == {}
    assert set(second["earlier_baselines"]) == set(TASKS)
    # `always` measures again; other baseline settings are another baseline; `enabled: false` runs none.
    assert [t["spec_name"] for t in pipeline_arguments(_config(tmp_path / "reg", counterfeit="always"))["tasks"]] == [
        "counterfeit"
    ]
    longer = cfg.model_copy(deep=True)
    longer.baseline.epochs = 7
    assert len(pipeline_arguments(longer)["tasks"]) == 2
    off = longer.model_copy(deep=True)
    off.baseline.enabled = False
    assert pipeline_arguments(off)["tasks"] == []


def test_a_run_without_baselines_has_no_baseline_step(tmp_path):
    """With every baseline recorded, the DAG is built without the loop (kfp.local cannot collect an empty one)."""
    without = set(build_pipeline(cluster=False, baselines=False).pipeline_spec.components)
    assert "comp-finetune-baseline" in set(build_pipeline(cluster=False).pipeline_spec.components)
    assert not any("baseline" in name for name in without)


@pytest.fixture
def report_section():
    tasks = [{"name": t, "data": "x.parquet", "label": "y"} for t in TASKS]
    raw = {"name": "second", "model": "m", "domain": {"data": "x.parquet", "label": "l"}, "tasks": tasks}
    return section_for("build-report", parse_config(raw))


def test_report_shows_an_earlier_baseline_with_its_origin(tmp_path, report_section):
    inputs = report_inputs(tmp_path / "run", TASKS, n=120, queries=20)
    earlier = inputs["baseline_dirs"].pop()  # counterfeit's baseline did not run this time ...
    uri = baselines.record(str(tmp_path / "reg"), "counterfeit", "k", earlier, {"run": "first", "bundle": "b-1"})
    out = tmp_path / "report"
    metrics = build_report.run(report_section, out_dir=str(out), earlier_baselines={"counterfeit": uri}, **inputs)
    assert metrics["tasks"]["counterfeit"]["e2e"]["origin"]["run"] == "first"  # ... its record did
    assert "origin" not in metrics["tasks"]["prohibited"]["e2e"]
    page = (out / names.REPORT_MD).read_text()
    assert "counterfeit / End-to-end (from run first, bundle b-1, not re-run)" in page
    assert "end-to-end: from run first, bundle b-1, not re-run." in page  # the verdict says so too
    assert json.loads((out / names.METRICS_JSON).read_text())["tasks"]["counterfeit"]["e2e"]["roc_auc"] > 0.5

    # Without a record the report says there is no end-to-end figure for the task.
    none = build_report.run(report_section, out_dir=str(tmp_path / "none"), **inputs)
    assert "e2e" not in none["tasks"]["counterfeit"]
    assert "counterfeit: " in (md := (tmp_path / "none" / names.REPORT_MD).read_text())
    assert "no end-to-end baseline this run, and none measured before" in md
