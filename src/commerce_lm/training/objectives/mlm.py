"""``mlm``: masked-language modelling on the domain text (domain-adaptive pre-training, Gururangan et al. 2020).

BERT's recipe: 15% of the real, non-special tokens are chosen; 80% of those become the mask token,
10% a random token and 10% stay; the model predicts the original tokens at the chosen positions.
"""

from __future__ import annotations

from typing import Any

from commerce_lm.config import ObjectiveSettings
from commerce_lm.training.objectives.base import Context


class MaskedLM:
    """Cross-entropy of the model's masked-LM predictions at the chosen positions."""

    views = 1

    def __init__(self, mask_token_id: int, special_ids: list[int], vocab_size: int, probability: float) -> None:
        """Args: mask_token_id, special_ids, vocab_size: From the tokenizer; probability: Share of tokens chosen."""
        self.mask_token_id = mask_token_id
        self.special_ids = sorted(set(special_ids))
        self.vocab_size = vocab_size
        self.probability = probability

    def mask(self, ids: Any, attention: Any) -> tuple[Any, Any]:
        """Masked inputs and the chosen positions (a boolean tensor like ``ids``)."""
        import torch

        special = torch.isin(ids, torch.tensor(self.special_ids, device=ids.device))
        candidates = attention.bool() & ~special
        chosen = candidates & (torch.rand(ids.shape, device=ids.device) < self.probability)
        if not chosen.any():
            # Every batch trains the term: pick one candidate token when chance picked none.
            first = candidates.float().argmax()
            chosen.view(-1)[first] = candidates.view(-1)[first]
        draw = torch.rand(ids.shape, device=ids.device)
        masked = ids.clone()
        masked[chosen & (draw < 0.8)] = self.mask_token_id
        randomised = chosen & (draw >= 0.8) & (draw < 0.9)
        masked[randomised] = torch.randint(self.vocab_size, ids.shape, device=ids.device)[randomised]
        return masked, chosen

    def __call__(self, model: Any, batch: dict[str, Any]) -> dict[str, Any]:
        """``{"mlm": loss}``, from a forward pass of its own on the masked inputs."""
        import torch.nn.functional as F

        ids, attention = batch["input_ids"], batch["attention_mask"]
        masked, chosen = self.mask(ids, attention)
        out = model(input_ids=masked, attention_mask=attention, mlm_positions=chosen)
        return {"mlm": F.cross_entropy(out.mlm_logits.float(), ids[chosen])}


def build(settings: ObjectiveSettings, context: Context) -> MaskedLM:
    """The term, masking the fine-tune's ``mlm_probability`` of the tokens with the run's tokenizer.

    Raises:
        ValueError: The tokenizer has no mask token.
    """
    tok = context.tokenizer
    if tok is None or tok.mask_token_id is None:
        raise ValueError("objective mlm: the tokenizer has no mask token")
    return MaskedLM(tok.mask_token_id, list(tok.all_special_ids), len(tok), context.finetune.mlm_probability)
