"""The pipeline compiles with all seven steps, and the whole DAG runs locally on configs/tiny.yaml."""

import json
import re
import subprocess
import sys

import pytest
import yaml

from commerce_lm import names
from commerce_lm.bundle import registry as bundle_registry

STEPS = {
    "prepare-data",
    "finetune-encoder",
    "extract-plm-embeddings",
    "extract-finetuned-embeddings",
    "train-heads",
    "finetune-baseline",
    "evaluate-knn",
    "publish-bundle",
    "build-report",
}
GATHERS = {"gather-embeddings", "gather-embeddings-2"}  # one per embedding set
PREPARED_PARTS = {"prepare-data-2", "prepare-data-3"}  # the domain, the datasets, each task


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    path = tmp_path_factory.mktemp("ir") / "pipeline.yaml"
    subprocess.run([sys.executable, "-m", "commerce_lm.cli", "compile", "--output", str(path)], check=True)
    return list(yaml.safe_load_all(path.read_text()))


def test_compiled_ir_holds_all_seven_steps(compiled):
    spec = compiled[0]
    executors = {name.removeprefix("exec-") for name in spec["deploymentSpec"]["executors"]}
    assert executors == STEPS | GATHERS | PREPARED_PARTS


def _loop_with(spec, step):
    """The root task of the ParallelFor whose body runs ``step``, and that body's task."""
    for name, task in spec["root"]["dag"]["tasks"].items():
        body = spec["components"].get(task["componentRef"]["name"], {}).get("dag", {}).get("tasks", {})
        if name.startswith("for-loop") and step in body:
            return task, body[step]
    raise AssertionError(f"no ParallelFor runs {step}")


def test_plm_embedding_does_not_wait_for_finetuning(compiled):
    spec = compiled[0]
    plm_loop, _ = _loop_with(spec, "extract-plm-embeddings")
    assert plm_loop["dependentTasks"] and all(t.startswith("prepare-data") for t in plm_loop["dependentTasks"])
    tuned_loop, _ = _loop_with(spec, "extract-finetuned-embeddings")
    assert "finetune-encoder" in tuned_loop["dependentTasks"]


def test_embedding_fans_out_over_shards_and_gathers(compiled):
    spec = compiled[0]
    for step in ("extract-plm-embeddings", "extract-finetuned-embeddings"):
        loop, _ = _loop_with(spec, step)
        assert loop["parameterIterator"]["items"]["inputParameter"].endswith("shards")
    gathers = [t for n, t in spec["root"]["dag"]["tasks"].items() if n.startswith("gather-embeddings")]
    assert len(gathers) == 2


def test_the_bundle_is_a_model_artifact_published_after_heads_and_knn_and_read_by_the_report(compiled):
    spec = compiled[0]
    outputs = spec["components"]["comp-publish-bundle"]["outputDefinitions"]["artifacts"]
    assert outputs["bundle"]["artifactType"]["schemaTitle"] == "system.Model"
    tasks = spec["root"]["dag"]["tasks"]
    assert {"train-heads", "evaluate-knn", "finetune-encoder"} <= set(tasks["publish-bundle"]["dependentTasks"])
    assert "publish-bundle" in tasks["build-report"]["dependentTasks"]
    assert tasks["publish-bundle"]["cachingOptions"].get("enableCache") is not True  # the gate reads LIVE.json


def test_baselines_fan_out_over_tasks(compiled):
    loop, _ = _loop_with(compiled[0], "finetune-baseline")
    assert loop["parameterIterator"]["items"]["inputParameter"].endswith("tasks")


def _task_yaml(name, *extra):
    """configs/tiny.yaml's entry for a task whose label column is ``is_<name>`` (and ``extra`` keys)."""
    columns = ", ".join(["text: [title, description], group_by: [relist_group, translation_group]", *extra])
    return f"{{name: {name}, data: listings.parquet, {columns}, label: is_{name}}}"


def _run(config, out, cache, *overrides):
    command = [sys.executable, "-m", "commerce_lm.cli", "run", "--config", str(config), "--output", str(out)]
    command += ["--cache-dir", str(cache), *overrides]
    return subprocess.run(command, capture_output=True, text=True, timeout=900)


def test_local_run_of_the_whole_dag(tmp_path, tiny_run_dir):
    out, cache = tmp_path / "run", tmp_path / "cache"
    result = _run(tiny_run_dir / "tiny.yaml", out, cache)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "hits none" in result.stdout
    ran = next(line for line in result.stdout.splitlines() if line.startswith("steps run: "))
    assert re.search(r"finetune-encoder \d+\.\d s", ran) and re.search(r"build-report \d+\.\d s", ran), ran
    metrics = json.loads((out / names.METRICS_JSON).read_text())
    assert set(metrics["tasks"]) == {"prohibited", "offplatform"}
    for task in metrics["tasks"].values():
        for arm in ("plm", "finetuned", "e2e"):
            assert {"roc_auc", "pr_auc", "train_seconds"} <= set(task[arm])
            assert 0 <= task[arm]["roc_auc"] <= 1 and task[arm]["train_seconds"] > 0
    for similarity in metrics["similarity"].values():
        assert {"f1", "recall_at_10"} <= set(similarity["plm"]) and "f1" in similarity["finetuned"]
    assert {"val_accuracy", "val_macro_f1", "train_seconds"} <= set(metrics["domain"])
    assert "docs_per_second" in metrics["embedding"]["plm"]
    # Non-empty language slices: build-report logged them as SlicedClassificationMetrics.
    assert any(task["finetuned"]["by_language"] for task in metrics["tasks"].values())
    html = (out / names.REPORT_HTML).read_text()
    assert "ROC AUC" in html and "data:image/png;base64," in html
    assert "| prohibited / PLM frozen + head" in (out / names.REPORT_MD).read_text()
    # The run published its bundle to the config's registry, made it live, and the report says so.
    registry = tiny_run_dir / "bundles"
    live = bundle_registry.live(str(registry))
    assert metrics["bundle"]["published"] and metrics["bundle"]["live"] == live["uri"]
    assert f"Bundle {live['bundle']} is live at {live['uri']}" in (out / names.REPORT_MD).read_text()
    _score_pipeline_runs_locally(tmp_path, registry, tiny_run_dir / "listings.parquet")

    # One more task without an end-to-end baseline, a new run folder, the same cache: the domain
    # fine-tune comes from the cache, the earlier tasks' baselines are not run at all (the registry
    # holds their figures), so the DAG has no baseline step, and the domain metrics stay the same.
    tasks = [_task_yaml(t) for t in ("prohibited", "offplatform")] + [_task_yaml("counterfeit", "e2e: never")]
    second = _run(tiny_run_dir / "tiny.yaml", tmp_path / "more", cache, "--set", f"tasks=[{', '.join(tasks)}]")
    assert second.returncode == 0, second.stderr[-3000:]
    hits = next(line for line in second.stdout.splitlines() if " hits " in line)
    assert "finetune-encoder" in hits and "finetune-baseline" not in hits, hits
    ran = next(line for line in second.stdout.splitlines() if line.startswith("steps run: "))
    assert "finetune-encoder" not in ran and "train-heads" in ran, ran
    assert not list((tmp_path / "more" / "kfp-root").rglob("finetune-baseline*"))  # nor run
    more_metrics = json.loads((tmp_path / "more" / names.METRICS_JSON).read_text())
    assert set(more_metrics["tasks"]) == {"prohibited", "offplatform", "counterfeit"}
    assert more_metrics["domain"] == metrics["domain"]
    assert more_metrics["tasks"]["prohibited"]["e2e"]["pr_auc"] == metrics["tasks"]["prohibited"]["e2e"]["pr_auc"]
    assert more_metrics["tasks"]["prohibited"]["e2e"]["origin"]["bundle"] == metrics["bundle"]["bundle"]
    page = (tmp_path / "more" / names.REPORT_MD).read_text()
    assert f"prohibited / End-to-end (from run tiny, bundle {metrics['bundle']['bundle']}, not re-run)" in page
    assert "e2e" not in more_metrics["tasks"]["counterfeit"] and "none measured before" in page

    # The same folder with another config is refused unless asked to overwrite.
    refused = _run(tiny_run_dir / "tiny.yaml", out, cache, "--set", "seed=4")
    assert refused.returncode == 2 and "--overwrite" in refused.stderr


def _score_pipeline_runs_locally(tmp_path, registry, listings):
    """The scoring pipeline, sharded with ParallelFor, scores every listing with the live bundle."""
    code = f"""
import os, sys
from kfp import local
from commerce_lm_pipelines.score import build_score_pipeline, score_arguments
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]
local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root={str(tmp_path / "score-root")!r})
arguments = score_arguments({str(registry)!r}, {str(listings)!r}, {str(tmp_path / "scores")!r}, num_shards=2)
build_score_pipeline(cluster=False)(**arguments)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (tmp_path / "scores").iterdir()
    metrics = json.loads((run / names.METRICS_JSON).read_text())
    assert metrics["shards"] == 2 and metrics["input_rows"] == metrics["scored_rows"] + metrics["rejected_rows"] > 0
