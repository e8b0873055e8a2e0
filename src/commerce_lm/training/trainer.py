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
        # One fused kernel for all parameters (CPU and GPU): the default per-tensor loop is several
        # times slower on CPU, and the HF Trainer defaults to the fused kernel too.
        fused=True,
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
        if engine.global_rank != 0:
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


def run_fingerprint(tcfg: TrainConfig, seed: int, model: str, splits: list[data.Split], extra: str = "") -> str:
    """A hash of everything that determines the trajectory, so a checkpoint of another run is never resumed.

    Launch and bookkeeping settings (processes, GPUs, checkpoint cadence) are left out: the world
    size is checked on its own, with a clear message (:func:`checkpoint.check_resumable`).
    """
    import hashlib
    import json

    settings = tcfg.model_dump(mode="json", exclude=set(tcfg.LAUNCH_SETTINGS))
    digest = hashlib.sha256(json.dumps([settings, seed, model, extra], sort_keys=True).encode())
    for split in splits:
        for doc_id, label, ids in zip(split.ids, split.labels.tolist(), split.input_ids, strict=True):
            digest.update(f"{doc_id}\t{label}\t".encode())
            digest.update(ids.tobytes())
    return digest.hexdigest()[:16]


@dataclass
class _State:
    """Trainer state that survives a restart (stored in each checkpoint's completion marker)."""

    step: int = 0
    best_value: float | None = None
    best_step: int | None = None
    best_metrics: dict[str, float] | None = None
    best_file: str | None = None
    stale_evals: int = 0
    stopped_early: bool = False
    last_eval_step: int | None = None
    train_seconds: float = 0.0
    step_seconds: float = 0.0
    cpu_seconds: float = 0.0
    samples: int = 0
    tokens: int = 0

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


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
) -> TrainResult:
    """Train ``model`` (a sequence classifier) with DeepSpeed; resume from a checkpoint if one fits.

    Every rank must call it with the same arguments.

    Args:
        model: A ``*ForSequenceClassification`` model, freshly loaded (same weights on every rank).
        train_split: Tokenised training documents.
        val_split: Tokenised validation documents.
        tcfg: Trainer settings.
        seed: Run seed (data order).
        pad_id: The tokenizer's padding id.
        checkpoint_root: Where checkpoints go (local or ``gs://``).
        fingerprint: Identity of this run (:func:`run_fingerprint`).
        info: This process's place in the job.

    Returns:
        Metrics, best weights (rank 0) and the log.

    Raises:
        checkpoint.ResumeError: A checkpoint of this run written with another world size exists.
    """
    import deepspeed
    import torch
    from tqdm.auto import tqdm

    plan = data.Plan(
        lengths=train_split.lengths,
        seed=seed,
        micro_batch=tcfg.per_device_batch_size,
        accumulation=tcfg.gradient_accumulation_steps,
        world_size=info.world_size,
    )
    total_steps = plan.total_steps(tcfg.epochs, tcfg.max_steps)
    bf16_ok = info.on_gpu and torch.cuda.is_bf16_supported()
    precision = ds_config.resolve_precision(tcfg.precision, info.on_gpu, bf16_ok)
    config = ds_config.build(tcfg, info.world_size, precision)
    optimizer, scheduler = _optimizer(model, tcfg, total_steps)
    engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, lr_scheduler=scheduler, config=config)
    if info.world_size == 1 and tcfg.zero_stage == 0:
        # Without ZeRO the engine flattens every gradient into buckets to all-reduce them after each
        # backward pass; with no other rank that is pure copying (about a tenth of a CPU step).
        engine.enable_backward_allreduce = False

    store = checkpoint.CheckpointStore(checkpoint_root, tcfg.keep_checkpoints, info)
    state = _State()
    records: list[dict[str, Any]] = []
    latest = dist.broadcast_object(store.latest() if info.is_main else None)
    if latest is not None:
        if checkpoint.check_resumable(latest, fingerprint, info.world_size, checkpoint_root):
            records = store.load(engine, latest["step"])
            state = _State(**{k: latest[k] for k in _State().__dict__})
            records.append({"event": "resumed", "step": state.step})
            log.info("resumed from %s at step %d", checkpoint_root, state.step)
        else:
            log.warning("%s holds checkpoints of a different run; starting over", checkpoint_root)
            if info.is_main:
                store.clear()
            dist.barrier()

    eval_batch = tcfg.per_device_batch_size * 2
    loss_fn = torch.nn.CrossEntropyLoss()
    engine.train()

    def evaluate() -> None:
        logits = predict(engine, val_split, eval_batch, pad_id, info)
        result = metrics.classification(logits, val_split.labels)
        state.last_eval_step = state.step
        record: dict[str, Any] = {"event": "eval", "step": state.step, **result}
        # The first evaluation is always kept, so there are weights to export even when the metric
        # is undefined (NaN: e.g. ROC AUC with a class missing from the validation split).
        if state.best_step is None or metrics.improved(tcfg.best_metric, result[tcfg.best_metric], state.best_value):
            state.best_value, state.best_step, state.best_metrics = result[tcfg.best_metric], state.step, result
            state.stale_evals = 0
            weights = consolidated_state(engine)
            name = store.save_best(weights, state.step) if info.is_main else None
            state.best_file = dist.broadcast_object(name)  # type: ignore[assignment]
            record["best"] = True
        else:
            state.stale_evals += 1
        records.append(record)
        if tcfg.early_stopping_patience and state.stale_evals >= tcfg.early_stopping_patience:
            state.stopped_early = True

    progress = tqdm(
        total=total_steps, initial=state.step, disable=not info.is_main, desc="train", unit="step", mininterval=5
    )
    started, cpu_started = time.perf_counter(), time.process_time()
    session_step_seconds = 0.0
    session_samples = session_tokens = 0
    while state.step < total_steps and not state.stopped_early:
        step_started = time.perf_counter()
        losses = []
        for indices in plan.micro_batches(state.step, info.rank):
            batch = data.collate(train_split, indices, pad_id)
            out = engine(
                input_ids=batch["input_ids"].to(info.device), attention_mask=batch["attention_mask"].to(info.device)
            )
            loss = loss_fn(out.logits.float(), batch["labels"].to(info.device))
            engine.backward(loss)
            engine.step()
            losses.append(loss.detach())
            session_samples += len(indices)
            session_tokens += batch["tokens"]
        mean_loss = torch.stack(losses).mean()
        if info.world_size > 1:
            torch.distributed.all_reduce(mean_loss)
            mean_loss /= info.world_size
        session_step_seconds += time.perf_counter() - step_started
        state.step += 1
        records.append(
            {"event": "step", "step": state.step, "loss": float(mean_loss), "lr": float(scheduler.get_last_lr()[0])}
        )
        progress.update(1)
        if tcfg.eval_every and state.step % tcfg.eval_every == 0:
            evaluate()
        if tcfg.checkpoint_every and state.step % tcfg.checkpoint_every == 0 and state.step < total_steps:
            _checkpoint(
                store,
                engine,
                state,
                records,
                started,
                cpu_started,
                session_step_seconds,
                session_samples,
                session_tokens,
                fingerprint,
                info,
            )
    progress.close()
    if state.last_eval_step != state.step:
        evaluate()
    totals = _totals(state, started, cpu_started, session_step_seconds, session_samples, session_tokens, info)
    best_state = store.load_best(state.best_file) if info.is_main and state.best_file else None
    engine.destroy()
    store.close()
    result_metrics = {
        **(state.best_metrics or {}),
        **totals,
        "global_steps": state.step,
        "total_steps": total_steps,
        "best_step": state.best_step,
        "best_metric": tcfg.best_metric,
        "stopped_early": state.stopped_early,
        "world_size": info.world_size,
        "precision": precision,
        "zero_stage": tcfg.zero_stage,
        "global_batch_size": plan.global_batch,
    }
    if info.is_main:
        log.info(
            "trained %d steps in %.1fs: %.1f samples/s, %.0f tokens/s over %d process(es); best %s=%s at step %s",
            state.step, totals["train_seconds"], totals["samples_per_second"], totals["tokens_per_second"],
            info.world_size, tcfg.best_metric, state.best_value, state.best_step,
        )  # fmt: skip
        for proc in totals["per_process"]:
            log.info("  rank %d: %.1f samples/s, %.0f tokens/s", proc["rank"], proc["samples_per_second"],
                     proc["tokens_per_second"])  # fmt: skip
    return TrainResult(metrics=result_metrics, best_state=best_state, log_records=records, ds_config=config)


def _totals(
    state: _State,
    started: float,
    cpu_started: float,
    step_seconds: float,
    samples: int,
    tokens: int,
    info: dist.DistInfo,
) -> dict[str, Any]:
    """Timings and throughput so far: this session's plus the ones before a resume, per process and in total."""
    mine = {
        "rank": info.rank,
        "train_seconds": state.train_seconds + time.perf_counter() - started,
        "step_seconds": state.step_seconds + step_seconds,
        "cpu_seconds": state.cpu_seconds + time.process_time() - cpu_started,
        "samples": state.samples + samples,
        "tokens": state.tokens + tokens,
    }
    mine["samples_per_second"] = mine["samples"] / max(mine["step_seconds"], 1e-9)
    mine["tokens_per_second"] = mine["tokens"] / max(mine["step_seconds"], 1e-9)
    everyone = dist.all_gather_objects(mine)
    wall = max(p["step_seconds"] for p in everyone)
    samples_total = sum(p["samples"] for p in everyone)
    tokens_total = sum(p["tokens"] for p in everyone)
    return {
        "train_seconds": max(p["train_seconds"] for p in everyone),
        "cpu_seconds": sum(p["cpu_seconds"] for p in everyone),
        "step_seconds": wall,
        "samples": samples_total,
        "tokens": tokens_total,
        "samples_per_second": samples_total / max(wall, 1e-9),
        "tokens_per_second": tokens_total / max(wall, 1e-9),
        "per_process": everyone,
    }


def _checkpoint(
    store: checkpoint.CheckpointStore,
    engine: Any,
    state: _State,
    records: list[dict],
    started: float,
    cpu_started: float,
    step_seconds: float,
    samples: int,
    tokens: int,
    fingerprint: str,
    info: dist.DistInfo,
) -> None:
    # Counters are stored per rank as rank 0 sees them; timings are bookkeeping, not trajectory.
    saved = _State(**state.to_json())
    saved.train_seconds += time.perf_counter() - started
    saved.cpu_seconds += time.process_time() - cpu_started
    saved.step_seconds += step_seconds
    saved.samples += samples
    saved.tokens += tokens
    marker = {**saved.to_json(), "fingerprint": fingerprint, "world_size": info.world_size}
    store.save(engine, state.step, marker, records)
