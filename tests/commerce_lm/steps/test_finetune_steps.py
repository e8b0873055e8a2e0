"""Both training steps, in-process, on a tiny XLM-R and a tiny prepared folder."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from commerce_lm.config import section_for
from commerce_lm.steps import finetune_baseline, finetune_encoder
from tests.helpers.training import run_config, tiny_model, write_prepared


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
    assert saved["steps_per_epoch"] == 96 // 8 and saved["epochs_run"] == saved["global_steps"] / 12
    assert saved["capped"] is not saved["stopped_early"]  # with patience on, the cap is what else stops it


def _eval_steps(out) -> list[int]:
    lines = (out / "train_log.jsonl").read_text().splitlines()
    return [r["step"] for r in map(json.loads, lines) if r["event"] == "eval"]


def test_a_baseline_the_cap_stops_while_improving_is_capped(setup):
    """Two epochs, early stopping on, no eval_every: validation is scored once an epoch, the last is
    the best or patience would have had to run out, and the cap ends the run: ``capped``."""
    prepared, model, root = setup
    cfg = run_config(model, epochs=2, early_stopping_patience=2)
    assert cfg.baseline.eval_every is None
    out = root / "capped"
    metrics = finetune_baseline.run(section_for("finetune-baseline", cfg), str(prepared), "weapons", str(out))
    assert _eval_steps(out) == [12, 24]
    assert metrics["global_steps"] == metrics["total_steps"] == 24 and metrics["epochs_run"] == 2.0
    assert metrics["capped"] is True and metrics["stopped_early"] is False


def test_a_baseline_patience_stops_is_not_capped(setup, tmp_path):
    """A validation split of one class leaves ROC AUC undefined: no evaluation improves on the first,
    so patience stops the run long before its cap of three epochs."""
    prepared, model, root = setup
    flat = tmp_path / "prepared"
    shutil.copytree(prepared, flat)
    table = pd.read_parquet(flat / "tasks" / "weapons.parquet")
    table.loc[table["split"] == "validation", "label"] = 0
    table.to_parquet(flat / "tasks" / "weapons.parquet", index=False)
    cfg = run_config(model, epochs=3, eval_every=2, early_stopping_patience=1, best_metric="val_roc_auc")
    out = root / "patient"
    metrics = finetune_baseline.run(section_for("finetune-baseline", cfg), str(flat), "weapons", str(out))
    assert _eval_steps(out) == [2, 4]
    assert metrics["stopped_early"] is True and metrics["capped"] is False
    assert (metrics["global_steps"], metrics["best_step"], metrics["total_steps"]) == (4, 2, 36)
    assert metrics["epochs_run"] == 4 / 12


def test_a_baseline_with_frozen_word_embeddings_trains_the_rest(setup):
    prepared, model, root = setup
    cfg = run_config(model, max_steps=2)
    whole = finetune_baseline.run(section_for("finetune-baseline", cfg), str(prepared), "weapons", str(root / "whole"))
    cfg.baseline.freeze_embeddings = True
    frozen = finetune_baseline.run(
        section_for("finetune-baseline", cfg), str(prepared), "weapons", str(root / "frozen-embeddings")
    )
    # The tiny XLM-R's word embeddings (its vocabulary x 32 dimensions) are left out of the optimizer.
    vocabulary = json.loads((model / "config.json").read_text())["vocab_size"]
    assert whole["trainable_parameters"] - frozen["trainable_parameters"] == vocabulary * 32
    assert frozen["parameters"] == whole["parameters"] and frozen["global_steps"] == 2


def test_baseline_defaults_cap_five_epochs_with_patience_two():
    from commerce_lm.config import BaselineConfig, FinetuneConfig

    assert (BaselineConfig().epochs, BaselineConfig().early_stopping_patience) == (5.0, 2)
    assert (FinetuneConfig().epochs, FinetuneConfig().early_stopping_patience) == (1.0, None)  # unchanged
