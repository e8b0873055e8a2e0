"""What every training objective shares: the interface, one forward pass per batch, cross-rank gathering.

An objective is built by its module's ``build(settings, context)`` from its own settings and a
:class:`Context`, is called as ``objective(model, batch)`` and returns a dict of named loss terms (scalar
tensors). It calls the model itself, because some terms need more than one view of a document
(SimCSE's two dropout passes) or changed inputs (masked-LM). The plain forward pass that several
terms share is run once per batch by :func:`views`, which memoises it in the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from commerce_lm.config import FinetuneConfig

VIEWS_KEY = "views"  # how many dropout views of each document the batch's forward pass computes
_OUTPUTS_KEY = "_outputs"


class Objective(Protocol):
    """A training objective: ``forward(model, batch) -> {term name: scalar tensor}``.

    One that sets ``partners = True`` gets each document's group partner in its batch
    (:func:`commerce_lm.training.data.partner_batch`): ``partner_input_ids``,
    ``partner_attention_mask`` and ``groups``.
    """

    #: Dropout views of each document this objective needs from the shared forward pass.
    views: int

    def __call__(self, model: Any, batch: dict[str, Any]) -> dict[str, Any]:
        """The named loss terms of ``batch``."""
        ...


@dataclass
class Context:
    """What objectives are built from beside their own settings.

    Attributes:
        finetune: The fine-tune's settings: the weighted objectives, and the settings they share
            (``temperature``, ``pooling``, ``mlm_probability``).
        tokenizer: The run's tokenizer (masked-LM's special and mask tokens).
        load_pretrained: Loads a frozen copy of the pre-trained encoder (``stay_near_pretrained``).
    """

    finetune: FinetuneConfig
    tokenizer: Any = None
    load_pretrained: Callable[[], Any] | None = None


@dataclass
class View:
    """One dropout view of a batch: the pooled vectors and, for a classifier, the logits."""

    pooled: Any
    logits: Any


def views(model: Any, batch: dict[str, Any]) -> list[View]:
    """The model's outputs on ``batch[VIEWS_KEY]`` dropout views of the batch, from one forward pass.

    The views are stacked into one batch, so dropout draws independent masks per view (as SimCSE does)
    and ZeRO-3 gathers the weights once. The result is memoised in ``batch``: every term of a mix
    reuses the same pass.
    """
    cached = batch.get(_OUTPUTS_KEY)
    if cached is not None:
        return cached
    count = int(batch.get(VIEWS_KEY, 1))
    ids, mask = batch["input_ids"], batch["attention_mask"]
    out = model(input_ids=ids.repeat(count, 1), attention_mask=mask.repeat(count, 1))
    pooled = getattr(out, "pooled", None)
    logits = getattr(out, "logits", None)
    batch[_OUTPUTS_KEY] = [
        View(
            pooled=None if pooled is None else pooled.chunk(count)[i],
            logits=None if logits is None else logits.chunk(count)[i],
        )
        for i in range(count)
    ]
    return batch[_OUTPUTS_KEY]


def gather(tensor: Any) -> tuple[Any, int]:
    """``tensor`` from every rank, concatenated in rank order, and this rank's row offset in it.

    Gradients flow back to every rank's rows (``torch.distributed.nn``), so a contrastive loss
    sees the negatives of the whole global micro-batch, as one process with the same global batch
    would: the data order and the loss do not depend on the process count.
    """
    import torch
    import torch.distributed as tdist

    if not tdist.is_initialized() or tdist.get_world_size() == 1:
        return tensor, 0
    from torch.distributed.nn.functional import all_gather

    parts = all_gather(tensor.contiguous())
    return torch.cat(parts), tdist.get_rank() * tensor.shape[0]


def info_nce(anchors: Any, positives: Any, temperature: float, groups: Any = None) -> Any:
    """In-batch InfoNCE: each anchor against its own positive, every rank's other positives its negatives.

    Args:
        anchors: This rank's pooled vectors, one per document.
        positives: Each document's positive (a second view, or a partner), in the same order.
        temperature: Divides the cosine similarities.
        groups: Each document's group number (``-1``: none); the positives of an anchor's own group,
            other than its own, are left out of its negatives. ``None``: no groups.

    Returns:
        The mean cross-entropy over this rank's anchors.
    """
    import torch
    import torch.nn.functional as F

    z1 = F.normalize(anchors.float(), dim=-1)
    z2, offset = gather(F.normalize(positives.float(), dim=-1))
    logits = z1 @ z2.T / temperature
    targets = torch.arange(z1.shape[0], device=z1.device) + offset
    if groups is not None:
        everyone, _ = gather(groups)
        same_group = (groups[:, None] == everyone[None, :]) & (groups[:, None] >= 0)
        same_group[torch.arange(z1.shape[0]), targets] = False
        logits = logits.masked_fill(same_group, float("-inf"))
    return F.cross_entropy(logits, targets)
