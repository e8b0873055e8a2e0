"""One training session's moving parts: the engine, the data plan, the state that survives a restart, the log.

:class:`Session` is what :func:`commerce_lm.training.trainer.train` drives: it sets the engine up
and resumes a fitting checkpoint (:meth:`Session.start`), runs one optimizer step of an objective
(:meth:`Session.step`), evaluates and keeps the best weights (:meth:`Session.evaluate`), checkpoints
(:meth:`Session.checkpoint`) and sums up (:meth:`Session.finish`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from commerce_lm.config import TrainConfig
from commerce_lm.training import checkpoint, data, dist, engine, metrics
from commerce_lm.training.throughput import Clock

log = logging.getLogger(__name__)


@dataclass
class State:
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
        """The state as a JSON-able dict."""
        return dict(self.__dict__)


@dataclass
class Session:
    """A running training session (see the module docstring)."""

    engine: Any
    scheduler: Any
    config: dict[str, Any]
    precision: str
    plan: data.Plan
    total_steps: int
    tcfg: TrainConfig
    info: dist.DistInfo
    store: checkpoint.CheckpointStore
    fingerprint: str
    # Parameters the optimizer holds, and all of them (frozen ones excluded from the first).
    parameters: tuple[int, int] = (0, 0)
    state: State = field(default_factory=State)
    records: list[dict[str, Any]] = field(default_factory=list)
    clock: Clock = field(default_factory=Clock)

    @classmethod
    def start(
        cls, model: Any, train_split: data.Split, tcfg: TrainConfig, seed: int, info: dist.DistInfo, root: str,
        fingerprint: str,
    ) -> Session:  # fmt: skip
        """Build the engine and resume from the latest checkpoint of this run, if there is one."""
        plan = data.Plan(
            lengths=train_split.lengths,
            seed=seed,
            micro_batch=tcfg.per_device_batch_size,
            accumulation=tcfg.gradient_accumulation_steps,
            world_size=info.world_size,
        )
        total_steps = plan.total_steps(tcfg.epochs, tcfg.max_steps)
        # Counted before DeepSpeed wraps the model: ZeRO-3 leaves empty partitions behind.
        sizes = [(p.numel(), p.requires_grad) for p in model.parameters()]
        parameters = (sum(n for n, trained in sizes if trained), sum(n for n, _ in sizes))
        eng, scheduler, config, precision = engine.initialize(model, tcfg, total_steps, info)
        store = checkpoint.CheckpointStore(root, tcfg.launch.keep_checkpoints, info)
        session = cls(eng, scheduler, config, precision, plan, total_steps, tcfg, info, store, fingerprint, parameters)
        session._resume(root)
        eng.train()
        return session

    @property
    def eval_every(self) -> int | None:
        """Steps between validation scores: ``eval_every``, else once an epoch with early stopping on.

        Without either, validation is scored only at the end.
        """
        if self.tcfg.eval_every or not self.tcfg.early_stopping_patience:
            return self.tcfg.eval_every
        return self.plan.steps_per_epoch

    @property
    def done(self) -> bool:
        """Whether every planned step has run."""
        return self.state.step >= self.total_steps

    def _resume(self, root: str) -> None:
        latest = dist.broadcast_object(self.store.latest() if self.info.is_main else None)
        if latest is None:
            return
        if checkpoint.check_resumable(latest, self.fingerprint, self.info.world_size, root):
            self.records = self.store.load(self.engine, latest["step"])
            self.state = State(**{k: latest[k] for k in State().__dict__})
            self.records.append({"event": "resumed", "step": self.state.step})
            log.info("resumed from %s at step %d", root, self.state.step)
            return
        log.warning("%s holds checkpoints of a different run; starting over", root)
        if self.info.is_main:
            self.store.clear()
        dist.barrier()

    def step(self, objective: Any, split: data.Split, pad_id: int) -> None:
        """One optimizer step: every micro-batch of this rank, each term of the objective logged."""
        import torch

        began = time.perf_counter()
        sums: dict[str, Any] = {}
        micro_batches = self.plan.micro_batches(self.state.step, self.info.rank)
        for indices in micro_batches:
            batch = data.collate(split, indices, pad_id)
            tokens = batch.pop("tokens")
            if getattr(objective, "partners", False):
                batch.update(data.partner_batch(split, indices, pad_id, self.plan.seed, self.state.step))
            batch = {k: v.to(self.info.device) for k, v in batch.items()}
            terms = objective(self.engine, batch)
            self.engine.backward(terms["loss"])
            self.engine.step()
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + value.detach().float()
            self.clock.count(len(indices), tokens)
        means = torch.stack([sums[name] / len(micro_batches) for name in sorted(sums)])
        if self.info.world_size > 1:
            torch.distributed.all_reduce(means)
            means /= self.info.world_size
        self.clock.add_step(time.perf_counter() - began)
        self.state.step += 1
        record = {"event": "step", "step": self.state.step, "lr": float(self.scheduler.get_last_lr()[0])}
        record.update({name: float(v) for name, v in zip(sorted(sums), means.tolist(), strict=True)})
        self.records.append(record)

    def evaluate(self, split: data.Split, pad_id: int) -> None:
        """Score the validation split; keep the weights when ``best_metric`` improved; count patience."""
        out = engine.predict(self.engine, split, self.tcfg.per_device_batch_size * 2, pad_id, self.info)
        result = metrics.classification(out.logits, split.labels)
        if out.pooled is not None:
            result.update(metrics.linear_probe(out.pooled, split.labels))
        state, best_metric = self.state, self.tcfg.best_metric
        state.last_eval_step = state.step
        record: dict[str, Any] = {"event": "eval", "step": state.step, **result}
        if best_metric not in result:
            raise ValueError(f"best_metric {best_metric!r} is not measured for this model; it gives {sorted(result)}")
        # The first evaluation is always kept, so there are weights to export even when the metric
        # is undefined (NaN: e.g. ROC AUC with a class missing from the validation split).
        if state.best_step is None or metrics.improved(best_metric, result[best_metric], state.best_value):
            state.best_value, state.best_step, state.best_metrics = result[best_metric], state.step, result
            state.stale_evals = 0
            weights = engine.consolidated_state(self.engine)
            name = self.store.save_best(weights, state.step) if self.info.is_main else None
            state.best_file = dist.broadcast_object(name)  # type: ignore[assignment]
            record["best"] = True
        else:
            state.stale_evals += 1
        self.records.append(record)
        patience = self.tcfg.early_stopping_patience
        if patience and state.stale_evals >= patience:
            state.stopped_early = True

    def checkpoint(self) -> None:
        """Save a resumable checkpoint; its marker carries the state as a restart would see it."""
        # Counters are stored per rank as rank 0 sees them; timings are bookkeeping, not trajectory.
        saved = State(**self.state.to_json())
        self.clock.fold_into(saved)
        marker = {**saved.to_json(), "fingerprint": self.fingerprint, "world_size": self.info.world_size}
        self.store.save(self.engine, self.state.step, marker, self.records)

    def finish(self) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Release the engine; the run's metrics and (rank 0) the best weights."""
        totals = self.clock.totals(self.state, self.info)
        state = self.state
        best_state = self.store.load_best(state.best_file) if self.info.is_main and state.best_file else None
        self.engine.destroy()
        self.store.close()
        result = {
            **(state.best_metrics or {}),
            **totals,
            "global_steps": state.step,
            "total_steps": self.total_steps,
            "steps_per_epoch": self.plan.steps_per_epoch,
            "best_step": state.best_step,
            "best_metric": self.tcfg.best_metric,
            "stopped_early": state.stopped_early,
            "world_size": self.info.world_size,
            "precision": self.precision,
            "zero_stage": self.tcfg.zero_stage,
            "global_batch_size": self.plan.global_batch,
            "trainable_parameters": self.parameters[0],
            "parameters": self.parameters[1],
        }
        if self.info.is_main:
            log.info(
                "trained %d steps in %.1fs: %.1f samples/s, %.0f tokens/s over %d process(es); best %s=%s at step %s",
                state.step, totals["train_seconds"], totals["samples_per_second"], totals["tokens_per_second"],
                self.info.world_size, self.tcfg.best_metric, state.best_value, state.best_step,
            )  # fmt: skip
        return result, best_state
