"""Scoring the new bundle and the live one on the same validation rows, for the retraining gate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from commerce_lm import names, storage
from commerce_lm.bundle.apply import head_scores
from commerce_lm.bundle.read import Bundle
from commerce_lm.config import PublishBundleSection
from commerce_lm.embedding import cached
from commerce_lm.embedding.checks import aligned_vectors
from commerce_lm.embedding.encoder import Embedder
from commerce_lm.embedding.store import EmbeddingSet
from commerce_lm.embedding.vector_store import VectorStore
from commerce_lm.metrics import roc_pr

CHUNK = 4096


def validation_rows(cfg: PublishBundleSection, prepared_dir: str) -> dict[str, pd.DataFrame]:
    """Each task's validation rows (``id``, ``text``, ``label``) of this run's prepared data."""
    rows = {}
    for task in cfg.tasks:
        table = pd.read_parquet(Path(prepared_dir, names.TASKS_DIR, f"{task.name}.parquet"))
        rows[task.name] = table[table["split"] == "validation"].reset_index(drop=True)
    return rows


def _metric(labels: np.ndarray, scores: np.ndarray, metric: str) -> float | None:
    if len(set(labels.tolist())) < 2:
        return None  # undefined on one class: the gate cannot compare this task
    roc, pr = roc_pr(labels, scores)
    return float(pr if metric == "pr_auc" else roc)


def new_metrics(rows: dict[str, pd.DataFrame], heads_dir: str, embeddings: EmbeddingSet, metric: str) -> dict:
    """The new heads on the new encoder's stored vectors of the validation rows."""
    out = {}
    for task, table in rows.items():
        head = storage.read_json(storage.join(heads_dir, names.HEADS_DIR, "finetuned", f"{task}.json"))
        vectors = aligned_vectors(embeddings, table["id"], f"task {task} validation")
        out[task] = _metric(table["label"].to_numpy(), head_scores(head, vectors), metric)
    return out


def live_metrics(rows: dict[str, pd.DataFrame], live: Bundle, cfg: PublishBundleSection, metric: str) -> dict:
    """The live bundle's heads on its own encoder's vectors of the same rows (through the store)."""
    tasks = {task: table for task, table in rows.items() if task in live.tasks}
    texts = sorted({text for table in tasks.values() for text in table["text"]})

    def chunks():  # noqa: ANN202 - an iterator of text lists
        return (texts[i : i + CHUNK] for i in range(0, len(texts), CHUNK))

    key = live.key
    plan = cached.plan(VectorStore(cfg.embed.store), key, chunks)
    settings = cached.settings_for(key, cfg.embed.token_budget)
    plan.fill(chunks, lambda: Embedder(live.encoder, settings), CHUNK, "embed validation rows (live encoder)")
    index = {text: row for row, text in enumerate(texts)}
    vectors = plan.rows(0, len(texts))
    out = {}
    for task, table in tasks.items():
        task_vectors = vectors[[index[t] for t in table["text"]]]
        out[task] = _metric(table["label"].to_numpy(), head_scores(live.head(task), task_vectors), metric)
    # A task without a live head counts as absent, as a task the live bundle never scored.
    return out
