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
from commerce_lm.training.objectives.base import Context, info_nce, views


class GroupContrastive:
    """InfoNCE between each document and its group partner."""

    views = 1
    partners = True

    def __init__(self, temperature: float) -> None:
        """Args: temperature: Divides the cosine similarities."""
        self.temperature = temperature

    def __call__(self, model: Any, batch: dict[str, Any]) -> dict[str, Any]:
        """``{"group_contrastive": loss}``."""
        anchors = views(model, batch)[0].pooled
        partner = model(input_ids=batch["partner_input_ids"], attention_mask=batch["partner_attention_mask"])
        # Another document of the anchor's group is no negative; only its drawn partner is the positive.
        loss = info_nce(anchors, partner.pooled, self.temperature, groups=batch["groups"])
        return {"group_contrastive": loss}


def build(settings: ObjectiveSettings, context: Context) -> GroupContrastive:
    """The term, at the fine-tune's contrastive temperature."""
    return GroupContrastive(context.finetune.temperature)
