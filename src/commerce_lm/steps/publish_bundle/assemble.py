"""Building a bundle folder from a finished run's outputs: encoder, heads, reference indexes, metrics."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from commerce_lm import models, names, storage
from commerce_lm.bundle import layout
from commerce_lm.bundle.card import model_card
from commerce_lm.bundle.layout import BundleError
from commerce_lm.config import PublishBundleSection
from commerce_lm.embedding.checks import aligned_vectors
from commerce_lm.embedding.store import EmbeddingSet

ARM = "finetuned"  # the bundle carries the fine-tuned encoder and the heads trained on its vectors
DOMAIN_KEYS = ("val_accuracy", "val_macro_f1", "train_seconds", "objective", "pooling")


def encoder_entry(model: str, embeddings: EmbeddingSet) -> dict[str, Any]:
    """The manifest's encoder: how the vectors the heads were trained on were made.

    Raises:
        BundleError: The embeddings were not made by ``model``, naming both checksums.
    """
    manifest = embeddings.manifest
    checksum = models.model_checksum(model)
    if manifest.get("encoder_checksum") != checksum:
        raise BundleError(
            f"{model}: the fine-tuned embeddings were made by encoder {manifest.get('encoder_checksum')}, "
            f"not by this encoder ({checksum})"
        )
    keys = ("pooling", "max_length", "dim", "prompt")
    return {"path": layout.ENCODER_DIR, "checksum": checksum, **{k: manifest[k] for k in keys}}


def _heads(stage: Path, heads_dir: str, checksum: str, cfg: PublishBundleSection) -> dict[str, Any]:
    """Copy each task's head with the checksum of the encoder whose vectors it was trained on."""
    metrics = storage.read_json(storage.join(heads_dir, names.METRICS_JSON))
    entries = {}
    for task in cfg.tasks:
        head = storage.read_json(storage.join(heads_dir, names.HEADS_DIR, ARM, f"{task.name}.json"))
        trained_on = metrics[task.name][ARM].get("encoder_checksum")
        if trained_on != checksum:
            raise BundleError(
                f"{heads_dir}: head {task.name!r} was trained on vectors of encoder {trained_on}, "
                f"but the bundle's encoder is {checksum}"
            )
        path = f"{layout.HEADS_DIR}/{task.name}.json"
        storage.write_json(stage / path, {**head, "task": task.name, "encoder_checksum": trained_on})
        entries[task.name] = {"path": path, "threshold": head["threshold"]}
    return entries


def _references(stage: Path, prepared_dir: str, embeddings: EmbeddingSet, knn: dict, cfg: PublishBundleSection) -> dict:
    """Each similarity set's reference index: its grouped listings, with their vectors."""
    entries = {}
    for spec in cfg.similarity:
        table = pd.read_parquet(Path(prepared_dir, names.SIMILARITY_DIR, f"{spec.name}.parquet"))
        table = table[table["group"].notna()]
        vectors = aligned_vectors(embeddings, table["id"], f"similarity {spec.name}")
        column = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1])
        path = f"{layout.KNN_DIR}/{spec.name}.parquet"
        (stage / path).parent.mkdir(parents=True, exist_ok=True)
        ids, groups = pa.array(table["id"].astype(str)), pa.array(table["group"].astype(str))
        pq.write_table(pa.table({"id": ids, "group": groups, "vector": column}), stage / path)
        threshold = knn[spec.name][ARM]["threshold"]
        entries[spec.name] = {"path": path, "threshold": threshold, "k": cfg.knn.k, "references": len(table)}
    return entries


def _run_metrics(
    cfg: PublishBundleSection, heads_dir: str, knn: dict, finetune_dir: str, heads: dict
) -> dict[str, Any]:
    head_metrics = storage.read_json(storage.join(heads_dir, names.METRICS_JSON))
    domain = storage.read_json(storage.join(finetune_dir, names.METRICS_JSON))
    return {
        "tasks": {
            t.name: {
                **{k: head_metrics[t.name][ARM].get(k) for k in ("roc_auc", "pr_auc", "n_test")},
                "threshold": heads[t.name]["threshold"],
            }
            for t in cfg.tasks
        },  # fmt: skip
        "similarity": {name: {k: v for k, v in arms[ARM].items() if k != "by_language"} for name, arms in knn.items()},
        "domain": {k: domain.get(k) for k in DOMAIN_KEYS},
    }


def assemble(
    stage: Path, cfg: PublishBundleSection, prepared_dir: str, finetune_dir: str, embeddings: EmbeddingSet,
    heads_dir: str, knn_dir: str,
) -> dict[str, Any]:  # fmt: skip
    """Write a bundle into the empty folder ``stage`` and return its manifest.

    The bundle id is a digest of its files, so rebuilding from the same outputs gives the same id.
    """
    model = storage.join(finetune_dir, names.MODEL_DIR)
    encoder = encoder_entry(model, embeddings)
    with storage.local_copy(model) as local:
        shutil.copytree(local, stage / layout.ENCODER_DIR)
    knn = storage.read_json(storage.join(knn_dir, names.METRICS_JSON))
    heads = _heads(stage, heads_dir, encoder["checksum"], cfg)
    similarity = _references(stage, prepared_dir, embeddings, knn, cfg)
    metrics = _run_metrics(cfg, heads_dir, knn, finetune_dir, heads)
    storage.write_json(stage / layout.METRICS_JSON, metrics)
    run = cfg.model_dump(mode="json")
    storage.write_json(stage / layout.RUN_CONFIG_JSON, run)
    stats = storage.read_json(storage.join(prepared_dir, names.STATS_JSON))
    card = model_card(run, stats, metrics, encoder)
    (stage / layout.ENCODER_DIR / layout.MODEL_CARD).write_text(card, encoding="utf-8")
    files = layout.checksums(stage)
    content = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:12]
    manifest = {
        "format": layout.FORMAT,
        "id": f"{cfg.name}-{content}",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "run": {"name": cfg.name, "model": cfg.model, "config_fingerprint": cfg.fingerprint()},
        "encoder": encoder,
        "tasks": heads,
        "similarity": similarity,
        "files": files,
    }
    storage.write_json(stage / layout.MANIFEST_JSON, manifest)
    return manifest
