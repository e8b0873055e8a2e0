"""Timings and throughput of a training session, carried across restarts."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from commerce_lm.training import dist


@dataclass
class Clock:
    """A session's wall, step and CPU time, samples and tokens (a resumed run adds the earlier ones)."""

    started: float = field(default_factory=time.perf_counter)
    cpu_started: float = field(default_factory=time.process_time)
    step_seconds: float = 0.0
    samples: int = 0
    tokens: int = 0

    def count(self, samples: int, tokens: int) -> None:
        """Count one micro-batch."""
        self.samples += samples
        self.tokens += tokens

    def add_step(self, seconds: float) -> None:
        """Add the time spent inside one optimizer step."""
        self.step_seconds += seconds

    def fold_into(self, state: Any) -> None:
        """Add this session's counters to a saved trainer ``state`` (for a checkpoint's marker)."""
        state.train_seconds += time.perf_counter() - self.started
        state.cpu_seconds += time.process_time() - self.cpu_started
        state.step_seconds += self.step_seconds
        state.samples += self.samples
        state.tokens += self.tokens

    def totals(self, state: Any, info: dist.DistInfo) -> dict[str, Any]:
        """Timings and throughput so far, per process and in total (collective)."""
        mine = {
            "rank": info.rank,
            "train_seconds": state.train_seconds + time.perf_counter() - self.started,
            "step_seconds": state.step_seconds + self.step_seconds,
            "cpu_seconds": state.cpu_seconds + time.process_time() - self.cpu_started,
            "samples": state.samples + self.samples,
            "tokens": state.tokens + self.tokens,
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
