"""Tiny prepared folders and models for the trainer tests (tests/test_training*, test_finetune*)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

LABELS = ["electronics", "fashion", "weapons"]
WORDS = {
    0: ["phone", "laptop", "charger", "cable", "tablet", "camera"],
    1: ["dress", "shirt", "jacket", "shoes", "scarf", "jeans"],
    2: ["knife", "rifle", "ammo", "blade", "scope", "holster"],
}
FILLER = ["new", "used", "cheap", "sale", "great", "fast", "shipping", "original", "box", "neu", "gebraucht"]


def _texts(rng: np.random.Generator, labels: np.ndarray) -> list[str]:
    out = []
    for label in labels:
        n = int(rng.integers(3, 14))
        words = [
            str(rng.choice(WORDS[int(label)])) if rng.random() < 0.4 else str(rng.choice(FILLER)) for _ in range(n)
        ]
        out.append(" ".join(words))
    return out


def _frame(rng: np.random.Generator, labels: np.ndarray, splits: list[str], prefix: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [f"{prefix}-{i}" for i in range(len(labels))],
            "text": _texts(rng, labels),
            "lang": rng.choice(["en", "de"], size=len(labels)),
            "split": splits,
            "label": labels.astype(np.int64),
        }
    )


def write_prepared(root: Path, n_train: int = 96, n_val: int = 24, n_test: int = 24, seed: int = 0) -> Path:
    """A prepare-data output folder per docs/contracts.md: domain table, labels, one task ``weapons``."""
    rng = np.random.default_rng(seed)
    n = n_train + n_val + n_test
    splits = ["train"] * n_train + ["validation"] * n_val + ["test"] * n_test
    domain = _frame(rng, rng.integers(0, len(LABELS), size=n), splits, "d")
    # Half the documents in pairs, as prepare-data writes a split group (pairs never cross a split).
    domain.insert(4, "group", [f"pair:{i // 2}" if i % 4 < 2 else None for i in range(n)])
    (root / "tasks").mkdir(parents=True, exist_ok=True)
    domain.to_parquet(root / "domain.parquet", index=False)
    (root / "labels.json").write_text(json.dumps(LABELS))
    task_labels = rng.integers(0, 3, size=n)
    task = _frame(rng, task_labels, splits, "t")
    task["label"] = (task_labels == 2).astype(np.int64)
    task.to_parquet(root / "tasks" / "weapons.parquet", index=False)
    return root


def corpus_texts() -> list[str]:
    rng = np.random.default_rng(1)
    return _texts(rng, rng.integers(0, 3, size=400))


def tiny_model(root: Path, dropout: float | None = None) -> Path:
    """A tiny XLM-R (hidden 32, 2 layers); ``dropout`` overrides its dropout probabilities."""
    from commerce_lm.demo.tiny_model import build_tiny_xlmr

    path = build_tiny_xlmr(root, corpus_texts(), vocab_size=500)
    if dropout is not None:
        config_file = path / "config.json"
        config = json.loads(config_file.read_text())
        config["hidden_dropout_prob"] = dropout
        config["attention_probs_dropout_prob"] = dropout
        config_file.write_text(json.dumps(config))
    return path


def run_config(model: Path, **train: object):
    """A RunConfig for the tiny model; ``train`` overrides both trainer sections."""
    from commerce_lm.config import parse_config

    section = {
        "max_length": 32,
        "epochs": 1,
        "per_device_batch_size": 8,
        "learning_rate": 1e-3,
        "warmup_ratio": 0.1,
        **train,
    }
    return parse_config(
        {
            "model": str(model),
            "seed": 5,
            "domain": {"data": "unused", "label": "label"},
            "tasks": [{"name": "weapons", "data": "unused", "label": "label"}],
            "finetune": section,
            "baseline": section,
        }
    )


def trained_with_lowest_layer_frozen(name: str, adapters: bool = False) -> bool:
    """Whether training with frozen word embeddings and layer 0 changes encoder weight ``name``.

    With low-rank adapters only the weights of the adapted linear maps change (their updates are
    merged into them); biases, layer norms and position embeddings stay the PLM's.
    """
    trained = not (name == "embeddings.word_embeddings.weight" or name.startswith("encoder.layer.0."))
    if adapters:
        trained &= name.startswith("encoder.layer.") and name.endswith(".weight") and "LayerNorm" not in name
    return trained
