"""Training objectives, one per file, and the registry that maps config names to them.

``finetune.objective`` is a weighted set, e.g. ``{cross_entropy: 1.0, instance_contrastive: 1.0,
stay_near_pretrained: 0.3}``; :func:`build` turns it into one :class:`~.mix.Mix`. Each objective
follows :class:`~.base.Objective` (``objective(model, batch) -> {term: tensor}``), so it would run
unchanged inside the Hugging Face Trainer's ``compute_loss``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from commerce_lm.training.objectives.base import Objective
from commerce_lm.training.objectives.cross_entropy import CrossEntropy
from commerce_lm.training.objectives.instance_contrastive import InstanceContrastive
from commerce_lm.training.objectives.mix import Mix
from commerce_lm.training.objectives.mlm import MaskedLM
from commerce_lm.training.objectives.stay_near_pretrained import StayNearPretrained
from commerce_lm.training.objectives.supervised_contrastive import SupervisedContrastive


@dataclass
class Context:
    """What objectives may need beyond their weight.

    Attributes:
        temperature: Of the contrastive terms.
        pooling: How the model pools (the frozen copy pools the same way).
        tokenizer: For masked-LM's special and mask tokens.
        mlm_probability: Share of tokens masked-LM predicts.
        load_pretrained: Loads a frozen copy of the pre-trained encoder (``stay_near_pretrained``).
    """

    temperature: float = 0.05
    pooling: str = "cls"
    tokenizer: Any = None
    mlm_probability: float = 0.15
    load_pretrained: Callable[[], Any] | None = None


def _mlm(ctx: Context) -> MaskedLM:
    tok = ctx.tokenizer
    if tok is None or tok.mask_token_id is None:
        raise ValueError("objective mlm: the tokenizer has no mask token")
    return MaskedLM(tok.mask_token_id, list(tok.all_special_ids), len(tok), ctx.mlm_probability)


def _stay_near(ctx: Context) -> StayNearPretrained:
    if ctx.load_pretrained is None:
        raise ValueError("objective stay_near_pretrained needs the pre-trained encoder")
    return StayNearPretrained(ctx.load_pretrained(), ctx.pooling)


REGISTRY: dict[str, Callable[[Context], Objective]] = {
    "cross_entropy": lambda ctx: CrossEntropy(),
    "supervised_contrastive": lambda ctx: SupervisedContrastive(ctx.temperature),
    "instance_contrastive": lambda ctx: InstanceContrastive(ctx.temperature),
    "mlm": _mlm,
    "stay_near_pretrained": _stay_near,
}


def build(weights: dict[str, float], ctx: Context) -> Mix:
    """The weighted mix of the named objectives; terms with weight 0 are left out.

    Raises:
        ValueError: An unknown name, a negative weight, or no positive weight.
    """
    unknown = sorted(set(weights) - set(REGISTRY))
    if unknown:
        raise ValueError(f"unknown objective(s) {unknown}; expected some of {sorted(REGISTRY)}")
    if any(w < 0 for w in weights.values()) or not any(w > 0 for w in weights.values()):
        raise ValueError(f"objective weights {weights}: need non-negative weights, at least one positive")
    return Mix({name: (w, REGISTRY[name](ctx)) for name, w in weights.items() if w > 0})


__all__ = ["Context", "Mix", "Objective", "REGISTRY", "build"]
