"""Building the DeepSpeed engine, predicting with it, and reading its weights back."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from commerce_lm.config import TrainConfig
from commerce_lm.training import data, dist, ds_config


def optimizer(model: Any, tcfg: TrainConfig, total_steps: int) -> tuple[Any, Any]:
    """AdamW without decay on biases and norms, and linear warm-up then linear decay to zero.

    The parameters outside the pre-trained encoder (``model.base_model``: the fresh heads) learn at
    ``tcfg.head_learning_rate`` when it is set, the encoder at ``tcfg.learning_rate``.
    """
    import torch

    encoder = {id(param) for param in getattr(model, "base_model", model).parameters()}
    head_lr = tcfg.head_learning_rate or tcfg.learning_rate
    groups: dict[tuple[float, float], list] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        decay = 0.0 if param.ndim < 2 or "norm" in name.lower() else tcfg.weight_decay
        lr = tcfg.learning_rate if id(param) in encoder else head_lr
        groups.setdefault((lr, decay), []).append(param)
    adamw = torch.optim.AdamW(
        [{"params": params, "lr": lr, "weight_decay": decay} for (lr, decay), params in groups.items()],
        lr=tcfg.learning_rate,
        # One fused kernel for all parameters (CPU and GPU): the default per-tensor loop is several
        # times slower on CPU, and the HF Trainer defaults to the fused kernel too.
        fused=True,
    )
    warmup = int(math.ceil(tcfg.warmup_ratio * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return adamw, torch.optim.lr_scheduler.LambdaLR(adamw, factor)


def initialize(model: Any, tcfg: TrainConfig, total_steps: int, info: dist.DistInfo) -> tuple[Any, Any, dict, str]:
    """The DeepSpeed engine around ``model``, its scheduler, its config and the precision used."""
    import deepspeed
    import torch

    bf16_ok = info.on_gpu and torch.cuda.is_bf16_supported()
    precision = ds_config.resolve_precision(tcfg.precision, info.on_gpu, bf16_ok)
    config = ds_config.build(tcfg, info.world_size, precision)
    adamw, scheduler = optimizer(model, tcfg, total_steps)
    engine, _, _, _ = deepspeed.initialize(model=model, optimizer=adamw, lr_scheduler=scheduler, config=config)
    if info.world_size == 1 and tcfg.zero_stage == 0:
        # Without ZeRO the engine flattens every gradient into buckets to all-reduce them after each
        # backward pass; with no other rank that is pure copying (about a tenth of a CPU step).
        engine.enable_backward_allreduce = False
    return engine, scheduler, config, precision


def consolidated_state(engine: Any) -> dict[str, Any] | None:
    """Full weights on rank 0 (gathered from ZeRO-3 partitions); ``None`` elsewhere."""
    import deepspeed
    import torch

    module = engine.module
    zero3 = engine.zero_optimization_stage() == 3
    context = (
        deepspeed.zero.GatheredParameters(list(module.parameters()), modifier_rank=None)
        if zero3
        else contextlib.nullcontext()
    )
    with context, torch.no_grad():
        if engine.global_rank != 0:
            return None
        return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in module.state_dict().items()}


@dataclass
class Predictions:
    """Model outputs on every document of a split, in order: logits, and pooled vectors when the model has them."""

    logits: np.ndarray
    pooled: np.ndarray | None


def predict(engine: Any, split: data.Split, batch_size: int, pad_id: int, info: dist.DistInfo) -> Predictions:
    """Outputs on every document of ``split`` (collective: every rank runs its share)."""
    import torch

    indices, valid = data.eval_shard(len(split), info.rank, info.world_size)
    was_training = engine.module.training
    engine.module.eval()
    logits, pooled, positions = [], [], []
    with torch.no_grad():
        for batch_pos in data.eval_batches(split, indices, batch_size):
            batch = data.collate(split, indices[batch_pos], pad_id)
            out = engine(
                input_ids=batch["input_ids"].to(info.device), attention_mask=batch["attention_mask"].to(info.device)
            )
            logits.append(out.logits.float().cpu().numpy())
            if getattr(out, "pooled", None) is not None:
                pooled.append(out.pooled.float().cpu().numpy())
            positions.append(batch_pos)
    engine.module.train(was_training)
    order = np.concatenate(positions) if positions else np.zeros(0, dtype=np.int64)
    keep = order[valid[order]]
    local = (
        indices[keep],
        np.concatenate(logits)[valid[order]],
        np.concatenate(pooled)[valid[order]] if pooled else None,
    )
    out_logits = out_pooled = None
    for idx, part_logits, part_pooled in dist.all_gather_objects(local):  # type: ignore[misc]
        if out_logits is None:
            out_logits = np.zeros((len(split), part_logits.shape[1]), dtype=np.float32)
            if part_pooled is not None:
                out_pooled = np.zeros((len(split), part_pooled.shape[1]), dtype=np.float32)
        out_logits[idx] = part_logits
        if out_pooled is not None:
            out_pooled[idx] = part_pooled
    return Predictions(out_logits, out_pooled)
