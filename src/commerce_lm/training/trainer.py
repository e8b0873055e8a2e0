"""The training loop shared by finetune-encoder and finetune-baseline, on a DeepSpeed engine.

:func:`train` runs a model through the planned steps (:mod:`.data`), minimising an objective
(:mod:`.objectives`: cross-entropy alone, or a weighted mix), evaluating every ``eval_every`` steps
(unset with early stopping: once an epoch) and at the end, keeping the best weights by
``best_metric``, stopping early after ``early_stopping_patience`` evaluations without improvement,
and checkpointing every ``checkpoint_every`` steps (:mod:`.checkpoint`). A rerun with the same
arguments continues from the last complete checkpoint at the same step, data position, optimizer,
scheduler and RNG state, so it ends where an uninterrupted run would.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from commerce_lm.config import FinetuneConfig, TrainConfig
from commerce_lm.training import data, dist, objectives
from commerce_lm.training.session import Session

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a finished training run hands back.

    Attributes:
        metrics: Best validation metrics, timings, throughput and step counts (identical on every
            rank).
        best_state: The best weights, consolidated (rank 0 only; ``None`` elsewhere).
        log_records: Per-step and per-evaluation records (``train_log.jsonl``).
        ds_config: The DeepSpeed config used.
    """

    metrics: dict[str, Any]
    best_state: dict[str, Any] | None
    log_records: list[dict[str, Any]] = field(default_factory=list)
    ds_config: dict[str, Any] = field(default_factory=dict)


def run_fingerprint(tcfg: TrainConfig, seed: int, model: str, splits: list[data.Split], extra: str = "") -> str:
    """A hash of everything that determines the trajectory, so a checkpoint of another run is never resumed.

    Launch and bookkeeping settings (processes, GPUs, checkpoint cadence) are left out: the world
    size is checked on its own, with a clear message (:func:`checkpoint.check_resumable`).
    """
    settings = tcfg.model_dump(mode="json", exclude={"launch"})
    digest = hashlib.sha256(json.dumps([settings, seed, model, extra], sort_keys=True).encode())
    for split in splits:
        for doc_id, label, ids in zip(split.ids, split.labels.tolist(), split.input_ids, strict=True):
            digest.update(f"{doc_id}\t{label}\t".encode())
            digest.update(ids.tobytes())
        if split.groups.size:  # group_contrastive's positives; absent before groups were read
            digest.update(split.groups.tobytes())
    return digest.hexdigest()[:16]


def train(
    model: Any,
    train_split: data.Split,
    val_split: data.Split,
    tcfg: TrainConfig,
    *,
    seed: int,
    pad_id: int,
    checkpoint_root: str,
    fingerprint: str,
    info: dist.DistInfo,
    objective: objectives.Objective | None = None,
) -> TrainResult:
    """Train ``model`` with DeepSpeed on ``objective``; resume from a checkpoint if one fits.

    Every rank must call it with the same arguments.

    Args:
        model: A classifier whose forward pass returns ``logits`` (and ``pooled`` vectors for the
            objectives that need them), freshly loaded (same weights on every rank).
        train_split: Tokenised training documents.
        val_split: Tokenised validation documents.
        tcfg: Trainer settings.
        seed: Run seed (data order).
        pad_id: The tokenizer's padding id.
        checkpoint_root: Where checkpoints go (local or ``gs://``).
        fingerprint: Identity of this run (:func:`run_fingerprint`).
        info: This process's place in the job.
        objective: What to minimise; cross-entropy over the labels when ``None``.

    Returns:
        Metrics, best weights (rank 0) and the log.

    Raises:
        checkpoint.ResumeError: A checkpoint of this run written with another world size exists.
    """
    from tqdm.auto import tqdm

    objective = objective or objectives.build(objectives.Context(FinetuneConfig(objective={"cross_entropy": 1.0})))
    session = Session.start(model, train_split, tcfg, seed, info, checkpoint_root, fingerprint)
    progress = tqdm(
        total=session.total_steps, initial=session.state.step, disable=not info.is_main, desc="train", unit="step",
        mininterval=5,
    )  # fmt: skip
    while session.state.step < session.total_steps and not session.state.stopped_early:
        session.step(objective, train_split, pad_id)
        progress.update(1)
        if session.eval_every and session.state.step % session.eval_every == 0:
            session.evaluate(val_split, pad_id)
        if tcfg.launch.checkpoint_every and session.state.step % tcfg.launch.checkpoint_every == 0 and not session.done:
            session.checkpoint()
    progress.close()
    if session.state.last_eval_step != session.state.step:
        session.evaluate(val_split, pad_id)
    metrics, best_state = session.finish()
    return TrainResult(metrics=metrics, best_state=best_state, log_records=session.records, ds_config=session.config)
