"""The DeepSpeed JSON config, derived entirely from a :class:`~commerce_lm.config.TrainConfig`.

The optimizer and LR scheduler are torch objects handed to ``deepspeed.initialize`` (see
:mod:`commerce_lm.training.optim`), not named here: a DeepSpeed-named optimizer would JIT-build its
fused kernels, and a torch one works the same on CPU and GPU.
"""

from __future__ import annotations

from typing import Any

from commerce_lm.config import TrainConfig


def resolve_precision(precision: str, on_gpu: bool, bf16_supported: bool) -> str:
    """The precision actually used: fp32 on CPU always, ``auto`` = bf16 where the GPU has it.

    bf16 on a CPU is emulated in many kernels (hundreds of times slower than fp32), so a CPU run
    ignores the setting rather than crawl.

    Args:
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16`` from the config.
        on_gpu: Whether training runs on a GPU.
        bf16_supported: Whether that GPU supports bf16.

    Returns:
        ``fp32``, ``bf16`` or ``fp16``.
    """
    if not on_gpu:
        return "fp32"
    if precision == "auto":
        return "bf16" if bf16_supported else "fp16"
    return precision


def build(tcfg: TrainConfig, world_size: int, precision: str) -> dict[str, Any]:
    """The DeepSpeed config for one training run.

    Args:
        tcfg: The trainer settings.
        world_size: Number of processes (data-parallel ranks).
        precision: The resolved precision (:func:`resolve_precision`).

    Returns:
        A JSON-serialisable DeepSpeed config.
    """
    micro = tcfg.per_device_batch_size
    accum = tcfg.gradient_accumulation_steps
    zero: dict[str, Any] = {"stage": tcfg.zero_stage}
    if tcfg.zero_stage >= 2:
        # Overlap only helps with a GPU's separate streams; on CPU it adds copies.
        zero.update({"overlap_comm": precision != "fp32", "contiguous_gradients": True})
    if tcfg.zero_stage == 3:
        # Export gathers the full weights on rank 0 (see training.export).
        zero["stage3_gather_16bit_weights_on_model_save"] = False
    config: dict[str, Any] = {
        "train_batch_size": micro * accum * world_size,
        "train_micro_batch_size_per_gpu": micro,
        "gradient_accumulation_steps": accum,
        "gradient_clipping": tcfg.max_grad_norm,
        "zero_optimization": zero,
        # A torch AdamW is passed in; ZeRO accepts it only with this flag.
        "zero_allow_untested_optimizer": True,
        "bf16": {"enabled": precision == "bf16"},
        "fp16": {"enabled": precision == "fp16", "initial_scale_power": 16, "loss_scale_window": 1000},
        # We log ourselves (train_log.jsonl); DeepSpeed's own per-step prints would flood the logs.
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
    return config
