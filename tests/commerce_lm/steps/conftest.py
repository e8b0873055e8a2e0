"""A finished tiny run and its bundle, published to a registry: for the bundle and score tests."""

import json
import shutil

import pytest

from commerce_lm import models, names
from commerce_lm.config import section_for
from commerce_lm.modelfiles.st_files import write_sentence_transformers_files
from commerce_lm.steps import evaluate_knn, extract_embeddings, train_heads
from tests.helpers.bundle import publish


@pytest.fixture(scope="module")
def run_outputs(tmp_path_factory, tiny_cfg, tiny_prepared, tiny_run_dir):
    """What a finished run leaves: an encoder, its embeddings, heads and KNN thresholds."""
    root = tmp_path_factory.mktemp("run")
    model = root / "finetune" / names.MODEL_DIR
    shutil.copytree(tiny_run_dir / "tiny-xlmr", model)
    dim = json.loads((model / "config.json").read_text())["hidden_size"]
    write_sentence_transformers_files(str(model), "cls", dim, tiny_cfg.embed.max_length)
    (root / "finetune" / names.METRICS_JSON).write_text(json.dumps({"val_accuracy": 0.5, "val_macro_f1": 0.4}))
    extract_embeddings.run(
        section_for("extract-embeddings", tiny_cfg), str(model), str(tiny_prepared), str(root / "emb")
    )
    arms = {"finetuned": str(root / "emb")}
    expected = {"finetuned": models.model_checksum(str(model))}
    train_heads.run(section_for("train-heads", tiny_cfg), str(tiny_prepared), arms, str(root / "heads"), expected)
    evaluate_knn.run(section_for("evaluate-knn", tiny_cfg), str(tiny_prepared), arms, str(root / "knn"), expected)
    return root


@pytest.fixture(scope="module")
def registry_cfg(tiny_cfg, tmp_path_factory):
    cfg = tiny_cfg.model_copy(deep=True)
    cfg.publish.location = str(tmp_path_factory.mktemp("registry"))
    cfg.publish.metric = "roc_auc"
    return cfg


@pytest.fixture(scope="module")
def published(registry_cfg, tiny_prepared, run_outputs, tmp_path_factory) -> dict:
    return publish(registry_cfg, tiny_prepared, run_outputs, tmp_path_factory.mktemp("pub") / "out")
