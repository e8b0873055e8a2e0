"""Every step's command, prepare-data through build-report, with gs:// inputs and outputs.

The tiny config runs twice through the ``commerce-lm`` command line: once on local folders, once
with its data, its model and every step's folder on gs:// (the GCS emulator, real client). The
results agree: the same metrics in every step's metrics.json (timings aside), the same embeddings.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml

from commerce_lm import storage
from commerce_lm.cli import main
from commerce_lm.embedding import store
from commerce_lm.names import METRICS_JSON, MODEL_DIR

STEPS = ("prepared", "finetuned", "plm-part", "plm", "tuned-part", "tuned", "heads", "knn", "report")
TASKS = ("prohibited", "offplatform")
# Measured, not computed: how long things took and how fast they ran differ between any two runs.
TIMING = re.compile(r"seconds|per_second|time_ratio|route_to_e2e_ratio|elapsed|duration|per_process|timestamp")
# Where the inputs live (and so the config's fingerprint) is the one thing the two runs differ in.
LOCATION = {"run"}


# The test is about where steps read and write, not how well they learn: a few steps of training and
# a short bootstrap keep both runs quick, and both runs use the same settings.
QUICK = ["finetune.max_steps=2", "baseline.max_steps=2", "report.bootstrap_samples=10"]


def _run_all(config: str, loc: Callable[[str], str]) -> None:
    # Each run its own vector store, beside its folders: the second run must embed, not reuse.
    settings = [*QUICK, f"embed.store={loc('store')}"]
    overrides = [arg for setting in settings for arg in ("--set", setting)]

    def step(*args: str) -> None:
        assert main([args[0], "--config", config, *overrides, *args[1:]]) == 0, args

    step("prepare-data", "--output", loc("prepared"))
    data = ("--prepared", loc("prepared"))
    step("finetune-encoder", *data, "--output", loc("finetuned"))
    encoder = storage.join(loc("finetuned"), MODEL_DIR)
    step("extract-embeddings", *data, "--output", loc("plm-part"))
    step("gather-embeddings", *data, "--parts", loc("plm-part"), "--output", loc("plm"))
    step("extract-embeddings", *data, "--model", encoder, "--output", loc("tuned-part"))
    step("gather-embeddings", *data, "--parts", loc("tuned-part"), "--output", loc("tuned"))
    both = (*data, "--plm-embeddings", loc("plm"), "--finetuned-embeddings", loc("tuned"))
    step("train-heads", *both, "--finetuned-model", encoder, "--output", loc("heads"))
    step("evaluate-knn", *both, "--finetuned-model", encoder, "--output", loc("knn"))
    for task in TASKS:
        step("finetune-baseline", *data, "--task", task, "--output", loc(f"baseline-{task}"))
    baselines = [loc(f"baseline-{task}") for task in TASKS]
    step("build-report", *both, "--finetuned", loc("finetuned"), "--heads", loc("heads"), "--knn", loc("knn"),
         "--baselines", *baselines, "--output", loc("report"))  # fmt: skip


def _results(value):  # noqa: ANN001, ANN202
    """``value`` without timings, floats rounded (both runs compute on the same CPU, same seeds)."""
    if isinstance(value, dict):
        return {k: _results(v) for k, v in value.items() if not TIMING.search(k) and k not in LOCATION}
    if isinstance(value, list):
        return [_results(v) for v in value]
    if isinstance(value, float):
        return round(value, 5)
    return value


@pytest.fixture
def gcs_run_config(tiny_run_dir: Path, gcs_bucket: str, tmp_path: Path, monkeypatch) -> tuple[str, str]:
    """configs/tiny.yaml with its data and model on gs://; returns (config file, bucket root)."""
    root = f"gs://{gcs_bucket}/tiny"
    storage.write_bytes(storage.join(root, "listings.parquet"), (tiny_run_dir / "listings.parquet").read_bytes())
    storage.upload_dir(tiny_run_dir / "tiny-xlmr", storage.join(root, "tiny-xlmr"))
    raw = yaml.safe_load((tiny_run_dir / "tiny.yaml").read_text())
    raw["model"] = storage.join(root, "tiny-xlmr")
    for spec in [raw["domain"], *raw["tasks"], *raw["similarity"]]:
        spec["data"] = storage.join(root, "listings.parquet")
    config = tmp_path / "tiny-gcs.yaml"
    config.write_text(yaml.safe_dump(raw))
    # The gs:// model is downloaded into this cache: a fresh one, so nothing local is reused.
    monkeypatch.setenv("COMMERCE_LM_CACHE", str(tmp_path / "cache"))
    return str(config), root


@pytest.mark.slow
def test_every_step_reads_and_writes_gcs_and_matches_a_local_run(tiny_run_dir, gcs_run_config, tmp_path):
    local_root = tmp_path / "local"
    _run_all(str(tiny_run_dir / "tiny.yaml"), lambda name: str(local_root / name))
    config, gcs_root = gcs_run_config
    _run_all(config, lambda name: storage.join(gcs_root, "runs", name))

    def metrics(read_root: Callable[[str], str], name: str) -> dict:
        return _results(storage.read_json(storage.join(read_root(name), METRICS_JSON)))

    for name in (*STEPS, *(f"baseline-{t}" for t in TASKS)):
        local = metrics(lambda n: str(local_root / n), name)
        remote = metrics(lambda n: storage.join(gcs_root, "runs", n), name)
        assert remote == local, f"{name}: {json.dumps(remote, sort_keys=True)[:500]}"
    for name in ("plm", "tuned"):
        local_set = store.load(str(local_root / name))
        remote_set = store.load(storage.join(gcs_root, "runs", name))
        assert list(remote_set.ids) == list(local_set.ids)
        np.testing.assert_allclose(remote_set.vectors, local_set.vectors, atol=1e-5)
    report = storage.read_bytes(storage.join(gcs_root, "runs", "report", "report.md")).decode()
    assert "prohibited" in report and report.count("|") > 10
    shutil.rmtree(local_root)
