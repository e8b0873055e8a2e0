"""``cross_entropy``: the exclusive multi-class objective over the domain labels (the reference's)."""

from __future__ import annotations

from typing import Any

from commerce_lm.config import ObjectiveSettings
from commerce_lm.training.objectives.base import Context, views


class CrossEntropy:
    """Softmax cross-entropy of the classifier's logits against ``batch["labels"]``."""

    views = 1

    def __call__(self, model: Any, batch: dict[str, Any]) -> dict[str, Any]:
        """``{"cross_entropy": loss}`` on the first view."""
        import torch.nn.functional as F

        logits = views(model, batch)[0].logits
        return {"cross_entropy": F.cross_entropy(logits.float(), batch["labels"])}


def build(settings: ObjectiveSettings, context: Context) -> CrossEntropy:
    """The term; it needs nothing beyond its weight."""
    return CrossEntropy()
