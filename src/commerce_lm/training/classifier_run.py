"""One classifier's training run from a prepared table to a step's outputs: what both training steps share.

It reads the prepared table and its splits, trains a classifier with the shared trainer
(:func:`train_classifier`), writes the outputs both training steps write (:func:`write_common`) and
drops the checkpoints once they are published (:func:`finish`). It knows the step contract (the
prepared table's columns, the fixed output names) and the training steps' config section, but no step
by name: each step passes its own.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from commerce_lm import models, storage
from commerce_lm.config import TrainConfig, TrainingSection
from commerce_lm.names import CONFIG_JSON, DEEPSPEED_JSON, METRICS_JSON, TRAIN_LOG
from commerce_lm.training import checkpoint, data, dist, trainer

TABLE_COLUMNS = ["id", "text", "lang", "split", "group", "label"]
# Only the domain table has ``group`` (group_contrastive's positives); a table may lack ``lang``.
OPTIONAL_COLUMNS = {"lang", "group"}


def read_table(location: str):  # noqa: ANN201 - a pandas DataFrame
    """Read a prepared Parquet table (local or ``gs://``) with the columns the trainer needs.

    Raises:
        ValueError: A required column is missing, naming the file.
    """
    import pyarrow.parquet as pq

    with storage.local_copy(location) as path:
        table = pq.read_table(path)
    required = [c for c in TABLE_COLUMNS if c not in OPTIONAL_COLUMNS]
    missing = [c for c in required if c not in table.column_names]
    if missing:
        raise ValueError(f"{location}: missing column(s) {missing}; expected {required}")
    return table.select([c for c in TABLE_COLUMNS if c in table.column_names]).to_pandas()


def split_frame(frame, name: str, location: str, *, required: bool = True):  # noqa: ANN001, ANN201
    """Rows of one split; an empty required split fails naming the file."""
    part = frame[frame["split"] == name].reset_index(drop=True)
    if required and part.empty:
        raise ValueError(f"{location}: no rows in split {name!r}")
    return part


def json_safe(value: Any) -> Any:
    """``value`` with NaN/inf floats replaced by ``None`` (strict JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.floating | np.integer):
        return json_safe(value.item())
    return value


@dataclass
class Trained:
    """A finished run of the trainer on one step's data."""

    result: trainer.TrainResult
    tokenizer: Any
    config: Any  # the model's transformers config
    info: dist.DistInfo
    checkpoint_root: str


def _classifier(model: str, num_labels: int, tcfg: TrainConfig) -> Any:
    """``model`` with a fresh ``num_labels``-class head; its word embeddings frozen when ``tcfg`` says so."""
    from commerce_lm.training import adapt  # imports torch: only a run that trains needs it

    classifier = models.load_classifier(model, num_labels)
    # Before the engine is built: the optimizer (and DeepSpeed's state) then never holds them.
    adapt.freeze(classifier.base_model, embeddings=tcfg.freeze_embeddings, layers=0)
    return classifier


def train_classifier(
    cfg: TrainingSection,
    tcfg: TrainConfig,
    train_frame: Any,
    val_frame: Any,
    num_labels: int,
    out_dir: str,
    *,
    step_name: str,
    id2label: dict[int, str] | None = None,
    checkpoint_dir: str | None = None,
    build: Callable[[Any], tuple[Any, Any]] | None = None,
    prompt: str = "",
) -> Trained:
    """Tokenise, build the classifier and train it with the shared DeepSpeed trainer.

    Args:
        cfg: The step's section (model, seed).
        tcfg: The trainer settings of this step.
        train_frame: Training rows (``id``, ``text``, ``label``, ``lang``).
        val_frame: Validation rows.
        num_labels: Number of classes.
        out_dir: The step's output folder (checkpoints go beside it unless ``checkpoint_dir``).
        step_name: Part of the run identity, so two steps never share checkpoints.
        id2label: Class names for the model config.
        checkpoint_dir: Where to keep checkpoints instead of :func:`checkpoint.default_root`.
        build: ``build(tokenizer) -> (model, objective)``; by default a sequence classifier of
            ``cfg.model`` trained with cross-entropy, its word embeddings frozen when
            ``tcfg.freeze_embeddings``.
        prompt: Text put before every document (the encoder's declared prompt); ``""`` for none.

    Returns:
        The training result, tokenizer and model config.
    """
    import torch

    info = dist.init()
    tokenizer = models.load_tokenizer(cfg.model)
    train_split = data.make_split(tokenizer, train_frame, tcfg.max_length, prompt)
    val_split = data.make_split(tokenizer, val_frame, tcfg.max_length, prompt)
    # The fresh head's initialisation (and dropout) draw from torch's RNG: same seed, same run.
    torch.manual_seed(cfg.seed)
    model, objective = build(tokenizer) if build else (_classifier(cfg.model, num_labels, tcfg), None)
    if id2label:
        model.config.id2label = dict(id2label)
        model.config.label2id = {v: k for k, v in id2label.items()}
    fingerprint = trainer.run_fingerprint(
        tcfg, cfg.seed, models.model_checksum(cfg.model), [train_split, val_split], extra=step_name
    )
    root = checkpoint_dir or checkpoint.default_root(out_dir)
    result = trainer.train(
        model,
        train_split,
        val_split,
        tcfg,
        seed=cfg.seed,
        pad_id=tokenizer.pad_token_id,
        checkpoint_root=root,
        fingerprint=fingerprint,
        info=info,
        objective=objective,
    )
    return Trained(result=result, tokenizer=tokenizer, config=model.config, info=info, checkpoint_root=root)


def fresh_model(config: Any, state: dict[str, Any]):  # noqa: ANN201 - a PreTrainedModel
    """A plain (non-DeepSpeed) classifier holding ``state``: for export and scoring on one process."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_config(config)
    model.load_state_dict(state)
    return model.float().eval()


def write_common(stage: Any, cfg: TrainingSection, trained: Trained, metrics: dict[str, Any]) -> None:
    """Write ``metrics.json``, ``config.json`` (the step's section), the DeepSpeed config and train log."""
    storage.write_json(stage / METRICS_JSON, json_safe(metrics))
    storage.write_json(stage / CONFIG_JSON, cfg.model_dump(mode="json"))
    storage.write_json(stage / DEEPSPEED_JSON, trained.result.ds_config)
    lines = "".join(json.dumps(json_safe(r), sort_keys=True) + "\n" for r in trained.result.log_records)
    storage.write_bytes(stage / TRAIN_LOG, lines.encode())


def finish(trained: Trained) -> None:
    """After the outputs are published: drop the checkpoints (rank 0) and wait for every rank."""
    if trained.info.is_main:
        checkpoint.CheckpointStore(trained.checkpoint_root, 1, trained.info).clear()
    dist.barrier()
