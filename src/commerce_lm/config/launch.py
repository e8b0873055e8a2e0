"""Where and how a training step runs: processes, GPUs, nodes, the cluster job, checkpoints.

These are the ``launch`` section of ``finetune`` and of ``baseline``
(``finetune: {launch: {num_nodes: 4, trainjob_image: ...}}``). They say nothing of what the model
learns, so they are left out of a resumable run's identity: a job moved to other nodes resumes the
same checkpoints.

Configs written before the section existed give these settings beside the trainer's
(``finetune: {num_procs: 8}``), and keep working: they move into ``launch``
(:func:`launch_settings_moved`). The canonical JSON keeps that flat spelling
(:func:`flat_launch_settings`), so every config's fingerprint and every step's cache key is what it
was before the section existed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from commerce_lm.config.base import Strict


class LaunchConfig(Strict):
    """Where a training step runs (``finetune.launch``, ``baseline.launch``)."""

    num_procs: int = Field(default=1, gt=0)
    num_gpus: int = Field(default=0, ge=0)
    # Several nodes: with num_nodes > 1 the step creates a Kubeflow Trainer v2 TrainJob (or, with
    # trainjob_api: pytorchjob, a Training Operator v1 PyTorchJob) whose pods run the same
    # `commerce-lm` command on num_nodes nodes of num_gpus (or num_procs) processes each
    # (commerce_lm.launch). See deploy/README.md for the runtimes the cluster needs.
    num_nodes: int = Field(default=1, gt=0)
    launcher: Literal["torchrun", "deepspeed"] = "torchrun"
    checkpoint_every: int | None = Field(default=None, gt=0)
    keep_checkpoints: int = Field(default=2, gt=0)
    trainjob_api: Literal["trainjob", "pytorchjob"] = "trainjob"
    # The TrainJob's runtimeRef; default: torch-distributed, or deepspeed-distributed with launcher: deepspeed.
    trainjob_runtime: str | None = None
    trainjob_runtime_kind: Literal["ClusterTrainingRuntime", "TrainingRuntime"] = "ClusterTrainingRuntime"
    trainjob_image: str | None = None
    # Default: the namespace the step's own pod runs in (where deploy/ grants the TrainJob verbs).
    trainjob_namespace: str | None = None
    trainjob_service_account: str | None = "pipeline-runner"
    # Kueue: the LocalQueue (label kueue.x-k8s.io/queue-name) and optional WorkloadPriorityClass.
    trainjob_queue: str | None = None
    trainjob_priority_class: str | None = None
    trainjob_annotations: dict[str, str] = Field(default_factory=dict)
    trainjob_env: dict[str, str] = Field(default_factory=dict)
    trainjob_shm_size: str = "16Gi"
    # How often the step reads the job's status while it waits.
    trainjob_poll_seconds: float = Field(default=10.0, gt=0)


def launch_settings_moved(data: Any) -> Any:
    """Trainer settings with the launch settings given beside the others moved into ``launch``.

    Args:
        data: The trainer section as given (anything else is returned as it is, for pydantic).

    Returns:
        The section with every launch setting inside ``launch``.

    Raises:
        ValueError: A setting given both ways, naming its new spelling.
    """
    if not isinstance(data, Mapping):
        return data
    flat = {key: data[key] for key in LaunchConfig.model_fields if key in data}
    if not flat:
        return data
    nested = data.get("launch") or {}
    if isinstance(nested, LaunchConfig):
        nested = nested.model_dump()
    twice = sorted(set(flat) & set(nested))
    if twice:
        raise ValueError(f"{twice} given twice, beside the trainer's settings and in launch: write them in launch only")
    return {**{k: v for k, v in data.items() if k not in flat}, "launch": {**nested, **flat}}


def flat_launch_settings(dumped: dict[str, Any]) -> dict[str, Any]:
    """A dumped trainer section with its launch settings beside the others, as configs spelled them before."""
    return {**{k: v for k, v in dumped.items() if k != "launch"}, **dumped.get("launch", {})}
