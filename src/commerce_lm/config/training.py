"""The trainer's settings: the shared DeepSpeed trainer, the end-to-end baseline, the domain fine-tune."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    field_serializer,
    field_validator,
    model_serializer,
    model_validator,
)

from commerce_lm.config.base import Strict
from commerce_lm.config.launch import LaunchConfig, flat_launch_settings, launch_settings_moved
from commerce_lm.config.objectives import ObjectiveSettings, parse_objective


class TrainConfig(Strict):
    """Settings of the shared DeepSpeed trainer (encoder and end-to-end baselines)."""

    max_length: int = Field(default=128, gt=0)
    # Text put before every training and scored document: "auto" is the prompt the encoder declares as its
    # default (e5's "passage: "; nothing for most encoders), "none" none, or a declared prompt's name.
    prompt: str = Field(default="auto", min_length=1)
    epochs: float = Field(default=1.0, gt=0)
    max_steps: int | None = Field(default=None, gt=0)
    per_device_batch_size: int = Field(default=16, gt=0)
    gradient_accumulation_steps: int = Field(default=1, gt=0)
    learning_rate: float = Field(default=5e-5, gt=0)
    # The fresh heads' rate (unset: learning_rate). A head that starts random and learns at the
    # encoder's small rate sends the encoder noise for most of a short run: a faster head learns the
    # label first, so the encoder's gradient carries it (as linear-probing then fine-tuning does).
    head_learning_rate: float | None = Field(default=None, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    warmup_ratio: float = Field(default=0.06, ge=0, le=1)
    max_grad_norm: float = Field(default=1.0, gt=0)
    zero_stage: Literal[0, 1, 2, 3] = 0
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    eval_every: int | None = Field(default=None, gt=0)
    best_metric: Literal["val_loss", "val_accuracy", "val_macro_f1", "val_roc_auc", "val_probe_macro_f1"] = "val_loss"
    early_stopping_patience: int | None = Field(default=None, gt=0)
    # Frozen word embeddings (commerce_lm.training.adapt): 96M of multilingual-e5-small's 118M
    # parameters; frozen, the optimizer holds none of them and a step is faster.
    freeze_embeddings: bool = False
    # Where the step runs, not what it learns (commerce_lm.config.launch).
    launch: LaunchConfig = Field(default_factory=LaunchConfig)

    @model_validator(mode="before")
    @classmethod
    def _launch_moved(cls, data: Any) -> Any:
        return launch_settings_moved(data)

    @model_serializer(mode="wrap")
    def _launch_flat(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # The canonical JSON spells the launch settings as configs did before their section: fingerprints hold.
        return flat_launch_settings(handler(self))


class BaselineConfig(TrainConfig):
    """Settings of ``finetune-baseline``: the trainer's, its budget chosen on validation.

    ``epochs`` is a cap: the learning-rate schedule spans it, validation is scored every
    ``eval_every`` steps (unset: once an epoch) and training stops after ``early_stopping_patience``
    evaluations without improvement. A run the cap stopped while validation still improved is
    reported as under-trained (``capped`` in its metrics), never as beaten.

    ``enabled: false`` runs no end-to-end baseline at all this run, whatever each task's ``e2e``
    says; like ``e2e`` it plans the run and is left out of the step's section.
    """

    enabled: bool = True

    epochs: float = Field(default=5.0, gt=0)
    early_stopping_patience: int | None = Field(default=2, gt=0)


class FinetuneConfig(TrainConfig):
    """Settings of ``finetune-encoder``: the trainer's, plus the objective and the encoder's pooling.

    The objective is a weighted set of losses on the pooled vector that heads and KNN use
    (:mod:`commerce_lm.training.objectives`; their names and settings:
    :mod:`commerce_lm.config.objectives`). ``{cross_entropy: 1.0}`` with ``pooling: cls`` is the
    reference's recipe. The default (the mix validation chose on real multilingual reviews, MARC, with
    multilingual-e5-small) learns the domain label and holds the encoder near the pre-trained vectors
    with a strong pull, which keeps what the label does not need: the light pull chosen before, with an
    English encoder, lost both MARC tasks on e5. The weights that suit one corpus do not suit another:
    ``benchmarks/objectives.py`` chooses them per corpus on validation data, and ``docs/objectives.md``
    records each shipped config's evidence.
    """

    objective: dict[str, ObjectiveSettings] = Field(
        default_factory=lambda: {"cross_entropy": 1.0, "stay_near_pretrained": 3.0},
        validate_default=True,
    )
    pooling: Literal["cls", "mean"] = "mean"
    temperature: float = Field(default=0.05, gt=0)
    mlm_probability: float = Field(default=0.15, gt=0, lt=1)
    best_metric: Literal["val_loss", "val_accuracy", "val_macro_f1", "val_roc_auc", "val_probe_macro_f1"] = (
        "val_probe_macro_f1"
    )
    # How much more of the PLM is kept (commerce_lm.training.adapt): the lowest N transformer layers
    # frozen; low-rank adapters of rank lora_rank (0: none) trained in place of the weights, scaled
    # by lora_alpha / lora_rank; and the exported weights a * fine-tuned + (1 - a) * PLM (WiSE-FT).
    freeze_layers: int = Field(default=0, ge=0)
    lora_rank: int = Field(default=0, ge=0)
    lora_alpha: float = Field(default=16.0, gt=0)
    interpolation: float = Field(default=1.0, gt=0, le=1)

    _objective = field_validator("objective", mode="before")(parse_objective)

    @field_serializer("objective")
    def _objective_as_written(self, entries: dict[str, ObjectiveSettings]) -> dict[str, Any]:
        return {name: entry.as_config() for name, entry in entries.items()}

    def weights(self) -> dict[str, float]:
        """Each objective's weight, by name (those of weight 0 included)."""
        return {name: entry.weight for name, entry in self.objective.items()}
