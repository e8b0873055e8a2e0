"""``instance_contrastive``: unsupervised SimCSE (Gao et al. 2021).

Two dropout views of the same document are positives; the other documents of the (cross-rank)
micro-batch are negatives. It keeps item identity, which KNN and tasks the label ignores need.
"""

from __future__ import annotations

from typing import Any

from commerce_lm.config import ObjectiveSettings
from commerce_lm.training.objectives.base import Context, info_nce, views


class InstanceContrastive:
    """InfoNCE between a document's first view and every document's second view."""

    views = 2

    def __init__(self, temperature: float) -> None:
        """Args: temperature: Divides the cosine similarities (SimCSE uses 0.05)."""
        self.temperature = temperature

    def __call__(self, model: Any, batch: dict[str, Any]) -> dict[str, Any]:
        """``{"instance_contrastive": loss}``."""
        first, second = views(model, batch)[:2]
        return {"instance_contrastive": info_nce(first.pooled, second.pooled, self.temperature)}


def build(settings: ObjectiveSettings, context: Context) -> InstanceContrastive:
    """The term, at the fine-tune's contrastive temperature."""
    return InstanceContrastive(context.finetune.temperature)
