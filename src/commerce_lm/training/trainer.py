"""The training loop shared by finetune-encoder and finetune-baseline, on a DeepSpeed engine.

:func:`train` runs a sequence classifier through the planned steps (:mod:`.data`), evaluating
every ``eval_every`` steps and at the end, keeping the best weights by ``best_metric``, stopping
early after ``early_stopping_patience`` evaluations without improvement, and checkpointing every
``checkpoint_every`` steps (:mod:`.checkpoint`). A rerun with the same arguments continues from the
last complete checkpoint at the same step, data position, optimizer, scheduler and RNG state, so it
ends where an uninterrupted run would.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from commerce_lm.config import TrainConfig
from commerce_lm.training import checkpoint, data, dist, ds_config, metrics

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


def _optimizer(model, tcfg: TrainConfig, total_steps: int):  # noqa: ANN001, ANN202
    """AdamW without decay on biases and norms, and linear warm-up then linear decay to zero."""
    import torch

    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "norm" in name.lower() else decay).append(param)
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": tcfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=tcfg.learning_rate,
    )
    warmup = int(math.ceil(tcfg.warmup_ratio * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def consolidated_state(engine) -> dict[str, Any] | None:  # noqa: ANN001
    """Full fp32-or-training-dtype weights on rank 0 (gathered from ZeRO-3 partitions); ``None`` elsewhere."""
    import deepspeed
    import torch

    module = engine.module
    params = list(module.parameters())
    zero3 = engine.zero_optimization_stage() == 3
    context = deepspeed.zero.GatheredParameters(params, modifier_rank=None) if zero3 else _null()
    with context, torch.no_grad():
        if not dist.all_gather_objects(None) or engine.global_rank != 0:
            return None
        return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in module.state_dict().items()}


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def predict(engine, split: data.Split, batch_size: int, pad_id: int, info: dist.DistInfo) -> np.ndarray:  # noqa: ANN001
    """Logits of every document of ``split`` in order (collective: every rank runs its share)."""
    import torch

    indices, valid = data.eval_shard(len(split), info.rank, info.world_size)
    was_training = engine.module.training
    engine.module.eval()
    rows: list[np.ndarray] = []
    positions: list[np.ndarray] = []
    with torch.no_grad():
        for batch_pos in data.eval_batches(split, indices, batch_size):
            batch = data.collate(split, indices[batch_pos], pad_id)
            out = engine(
                input_ids=batch["input_ids"].to(info.device), attention_mask=batch["attention_mask"].to(info.device)
            )
            rows.append(out.logits.float().cpu().numpy())
            positions.append(batch_pos)
    engine.module.train(was_training)
    order = np.concatenate(positions) if positions else np.zeros(0, dtype=np.int64)
    logits = np.concatenate(rows) if rows else np.zeros((0, 0), dtype=np.float32)
    local = (indices[order][valid[order]], logits[valid[order]])
    gathered = dist.all_gather_objects(local)
    out = None
    for idx, values in gathered:  # type: ignore[misc]
        if out is None:
            out = np.zeros((len(split), values.shape[1]), dtype=np.float32)
        out[idx] = values
    return out


def _fingerprint_state(**parts: Any) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_fingerprint(tcfg: TrainConfig, seed: int, model: str, train: data.Split, val: data.Split, extra: str) -> str:
    """A hash of everything that determines the trajectory, so a checkpoint of another run is never resumed.

    Launch and bookkeeping settings (processes, GPUs, checkpoint cadence) are left out: the world
    size is checked on its own, with a clear message (:func:`checkpoint.check_resumable`).
    """
    settings = tcfg.model_dump(mode="json")
    for key in ("num_procs", "num_gpus", "checkpoint_every", "keep_checkpoints"):
        settings.pop(key, None)
    digest = np.zeros(1, dtype=np.uint64)
    for split in (train, val):
        digest ^= np.uint64(hash((tuple(split.ids), split.labels.tobytes())) & 0x7FFFFFFFFFFFFFFF)
    return _fingerprint_state(settings=settings, seed=seed, model=model, data=int(digest[0]), extra=extra,
                              n=(len(train), len(val)), ids=_ids_digest(train, val))


def _ids_digest(*splits: data.Split) -> str:
    import hashlib

    h = hashlib.sha256()
    for split in splits:
        for doc_id, label, ids in zip(split.ids, split.labels.tolist(), split.input_ids, strict=True):
            h.update(f"{doc_id}\t{label}\t".encode())
            h.update(ids.tobytes())
    return h.hexdigest()[:16]
