"""Both training steps, in-process, on a tiny XLM-R and a tiny prepared folder."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest_training import run_config, tiny_model, write_prepared

from commerce_lm.config import section_for
from commerce_lm.steps import finetune_baseline, finetune_encoder


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("steps")
    return write_prepared(root / "prepared"), tiny_model(root / "model"), root


def test_finetune_encoder_exports_a_loadable_encoder(setup):
    from transformers import AutoModel, AutoTokenizer

    prepared, model, root = setup
    cfg = run_config(model, eval_every=4, best_metric="val_accuracy")
    out = root / "encoder"
    metrics = finetune_encoder.run(section_for("finetune-encoder", cfg), str(prepared), str(out))

    saved = json.loads((out / "metrics.json").read_text())
    for key in (
        "val_loss",
        "val_accuracy",
        "val_macro_f1",
        "train_seconds",
        "cpu_seconds",
        "samples_per_second",
        "tokens_per_second",
        "global_steps",
    ):
        assert key in saved, key
    assert saved["global_steps"] == 96 // 8 == metrics["global_steps"]
    assert 0.0 <= saved["val_accuracy"] <= 1.0 and saved["tokens_per_second"] > 0
    ds = json.loads((out / "deepspeed_config.json").read_text())
    assert ds["train_batch_size"] == 8 and ds["zero_optimization"]["stage"] == 0
    assert json.loads((out / "config.json").read_text())["model"] == str(model)
    assert list((out / "model").glob("*.safetensors"))
    encoder = AutoModel.from_pretrained(out / "model")
    tokenizer = AutoTokenizer.from_pretrained(out / "model")
    hidden = encoder(**tokenizer(["new phone"], return_tensors="pt")).last_hidden_state
    assert hidden.shape[-1] == 32
    # Checkpoints are gone once the outputs are published.
    assert not (root / ".encoder.checkpoints").exists()


def test_finetune_baseline_scores_the_test_split(setup):
    prepared, model, root = setup
    cfg = run_config(model, epochs=3, eval_every=3, early_stopping_patience=2, best_metric="val_roc_auc")
    out = root / "baseline"
    metrics = finetune_baseline.run(section_for("finetune-baseline", cfg), str(prepared), "weapons", str(out))

    predictions = pd.read_parquet(out / "predictions.parquet")
    assert list(predictions.columns) == ["id", "label", "score", "lang"]
    test = pd.read_parquet(prepared / "tasks" / "weapons.parquet").query("split == 'test'")
    assert sorted(predictions["id"]) == sorted(test["id"])
    assert predictions["score"].between(0, 1).all()
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == metrics
    assert saved["task"] == "weapons" and 0 <= saved["roc_auc"] <= 1 and 0 <= saved["pr_auc"] <= 1
    assert saved["global_steps"] <= 3 * (96 // 8)
    if saved["stopped_early"]:
        assert saved["global_steps"] < 36
    assert not (out / "model").exists()
