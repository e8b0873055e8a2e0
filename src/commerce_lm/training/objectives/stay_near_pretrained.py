"""``stay_near_pretrained``: keep each pooled vector near the one the pre-trained encoder gives.

In the spirit of L2-SP (Li et al. 2018) and of distillation, but on the output that heads and KNN
use: ``||z - z_PLM||^2 / ||z_PLM||^2``, averaged over the batch, against a frozen copy of the
pre-trained encoder pooled the same way. It costs one forward pass without gradients per step, and
holds on to the cues that the domain label does not need.
"""

from __future__ import annotations

from typing import Any

from commerce_lm.config import ObjectiveSettings
from commerce_lm.embedding.pooling import pool
from commerce_lm.training.objectives.base import Context, views


class StayNearPretrained:
    """Relative squared distance of the pooled vector from the frozen pre-trained one."""

    views = 1

    def __init__(self, frozen: Any, pooling: str) -> None:
        """Args: frozen: The pre-trained encoder (kept in eval mode, no gradients); pooling: Its pooling."""
        frozen.eval()
        frozen.requires_grad_(False)
        self.frozen = frozen
        self.pooling = pooling

    def __call__(self, model: Any, batch: dict[str, Any]) -> dict[str, Any]:
        """``{"stay_near_pretrained": loss}``."""
        import torch

        ids, mask = batch["input_ids"], batch["attention_mask"]
        if next(self.frozen.parameters()).device != ids.device:
            self.frozen.to(ids.device)
        with torch.no_grad():
            hidden = self.frozen(input_ids=ids, attention_mask=mask).last_hidden_state
            target = pool(hidden, mask, self.pooling).float()
        z = views(model, batch)[0].pooled.float()
        distance = (z - target).pow(2).sum(dim=-1) / target.pow(2).sum(dim=-1).clamp(min=1e-12)
        return {"stay_near_pretrained": distance.mean()}


def build(settings: ObjectiveSettings, context: Context) -> StayNearPretrained:
    """The term, against a frozen pre-trained encoder pooled as the fine-tuned one is: like with like.

    Raises:
        ValueError: The context cannot load the pre-trained encoder.
    """
    if context.load_pretrained is None:
        raise ValueError("objective stay_near_pretrained needs the pre-trained encoder")
    return StayNearPretrained(context.load_pretrained(), context.finetune.pooling)
