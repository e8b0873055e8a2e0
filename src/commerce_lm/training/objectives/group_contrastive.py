"""``group_contrastive``: the documents a group ties together are positives (known duplicates).

The domain's ``group_by`` columns tie rows together: a re-listing and its original, the
translations of one listing. Each document's positive is another document of its group (drawn per
step, :func:`commerce_lm.training.data.partners`), or a second dropout view of itself when it has
none, so on a corpus without groups this is SimCSE (``instance_contrastive``). The other documents
of the (cross-rank) micro-batch are negatives, except those of the anchor's own group. It is the
in-batch-negatives loss sentence-transformers trains (anchor, positive) pairs with; the pairs come
from the training split only, and prepare-data never lets a group cross splits.
"""

from __future__ import annotations

from typing import Any

from commerce_lm.config import ObjectiveSettings
from commerce_lm.training.objectives.base import Context, gather, views


class GroupContrastive:
    """InfoNCE between each document and its group partner."""

    views = 1
    partners = True

    def __init__(self, temperature: float) -> None:
        """Args: temperature: Divides the cosine similarities."""
        self.temperature = temperature

    def __call__(self, model: Any, batch: dict[str, Any]) -> dict[str, Any]:
        """``{"group_contrastive": loss}``."""
        import torch
        import torch.nn.functional as F

        anchors = F.normalize(views(model, batch)[0].pooled.float(), dim=-1)
        partner = model(input_ids=batch["partner_input_ids"], attention_mask=batch["partner_attention_mask"])
        positives, offset = gather(F.normalize(partner.pooled.float(), dim=-1))
        groups, _ = gather(batch["groups"])
        logits = anchors @ positives.T / self.temperature
        targets = torch.arange(anchors.shape[0], device=anchors.device) + offset
        # Another document of the anchor's group is no negative: mask it, keep the drawn positive.
        same_group = (batch["groups"][:, None] == groups[None, :]) & (batch["groups"][:, None] >= 0)
        same_group[torch.arange(anchors.shape[0]), targets] = False
        logits = logits.masked_fill(same_group, float("-inf"))
        return {"group_contrastive": F.cross_entropy(logits, targets)}


def build(settings: ObjectiveSettings, context: Context) -> GroupContrastive:
    """The term, at the fine-tune's contrastive temperature."""
    return GroupContrastive(context.finetune.temperature)
