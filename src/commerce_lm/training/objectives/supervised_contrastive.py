"""``supervised_contrastive``: SupCon over the domain labels (Khosla et al. 2020; Gunel et al. 2021).

Every document of the (cross-rank) micro-batch is an anchor; documents with its label are its
positives, all others its negatives, over cosine similarities divided by a temperature.
"""

from __future__ import annotations

from typing import Any

from commerce_lm.config import ObjectiveSettings
from commerce_lm.training.objectives.base import Context, gather, views


class SupervisedContrastive:
    """The SupCon loss ("L_out", averaged over each anchor's positives) on the pooled vectors."""

    views = 1

    def __init__(self, temperature: float) -> None:
        """Args: temperature: Divides the cosine similarities (smaller = sharper)."""
        self.temperature = temperature

    def __call__(self, model: Any, batch: dict[str, Any]) -> dict[str, Any]:
        """``{"supervised_contrastive": loss}``; anchors without a positive in the batch are skipped."""
        import torch
        import torch.nn.functional as F

        z = F.normalize(views(model, batch)[0].pooled.float(), dim=-1)
        everyone, offset = gather(z)
        labels, _ = gather(batch["labels"])
        local = torch.arange(z.shape[0], device=z.device) + offset
        logits = z @ everyone.T / self.temperature
        not_self = torch.ones_like(logits, dtype=torch.bool)
        not_self[torch.arange(z.shape[0]), local] = False
        positives = (batch["labels"][:, None] == labels[None, :]) & not_self
        log_prob = logits - torch.logsumexp(logits.masked_fill(~not_self, float("-inf")), dim=1, keepdim=True)
        counts = positives.sum(dim=1)
        has = counts > 0
        if not has.any():
            return {"supervised_contrastive": logits.sum() * 0.0}
        mean_log_prob = (log_prob * positives).sum(dim=1)[has] / counts[has]
        return {"supervised_contrastive": -mean_log_prob.mean()}


def build(settings: ObjectiveSettings, context: Context) -> SupervisedContrastive:
    """The term, at the fine-tune's contrastive temperature."""
    return SupervisedContrastive(context.finetune.temperature)
