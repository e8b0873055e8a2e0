"""The model the domain fine-tune trains: the encoder, its pooling, a linear domain head, maybe a masked-LM head.

Every objective works on the *pooled vector* that the heads and KNN later use (``[CLS]`` or mean
over real tokens), so what training shapes is exactly what is extracted. Only the encoder is
exported; the heads exist for training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from commerce_lm.embedding.pooling import pool

ENCODER_PREFIX = "encoder."


@dataclass
class PooledOutput:
    """One forward pass: pooled vectors, domain logits, and masked-LM logits at the chosen positions."""

    pooled: torch.Tensor
    logits: torch.Tensor
    mlm_logits: torch.Tensor | None = None


class PooledEncoder(nn.Module):
    """``encoder -> pool -> dropout -> linear`` over the domain classes, with an optional masked-LM head."""

    def __init__(self, encoder: nn.Module, pooling: str, num_labels: int, with_mlm: bool = False) -> None:
        """Wrap ``encoder``.

        Args:
            encoder: A bare Hugging Face encoder.
            pooling: ``cls`` or ``mean``.
            num_labels: Domain classes.
            with_mlm: Add a masked-LM head (its decoder starts as a copy of the input embeddings).
        """
        super().__init__()
        config = encoder.config
        self.encoder = encoder
        self.pooling = pooling
        self.dropout = nn.Dropout(getattr(config, "hidden_dropout_prob", 0.1))
        self.head = nn.Linear(config.hidden_size, num_labels)
        self.mlm_head = _mlm_head(encoder) if with_mlm else None

    @property
    def config(self) -> Any:
        """The encoder's transformers config."""
        return self.encoder.config

    @property
    def base_model(self) -> nn.Module:
        """The pre-trained encoder, as transformers names it in its task models; the rest is fresh heads."""
        return self.encoder

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, mlm_positions: torch.Tensor | None = None
    ) -> PooledOutput:
        """Pool the encoder's last hidden states; with ``mlm_positions``, also predict those tokens."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        pooled = pool(hidden, attention_mask, self.pooling)
        mlm_logits = None
        if mlm_positions is not None:
            if self.mlm_head is None:
                raise ValueError("this model was built without a masked-LM head")
            mlm_logits = self.mlm_head(hidden[mlm_positions])
        return PooledOutput(pooled=pooled, logits=self.head(self.dropout(pooled)), mlm_logits=mlm_logits)


def _mlm_head(encoder: nn.Module) -> nn.Module:
    """BERT's prediction head shape: dense, GELU, layer norm, then a decoder over the vocabulary.

    The decoder is a copy of the input embeddings rather than tied to them: under ZeRO-3 a tied
    weight used outside its own module's forward pass would be a partitioned (empty) tensor.
    """
    config = encoder.config
    embeddings = encoder.get_input_embeddings().weight
    decoder = nn.Linear(config.hidden_size, embeddings.shape[0])
    with torch.no_grad():
        decoder.weight.copy_(embeddings)
        decoder.bias.zero_()
    return nn.Sequential(
        nn.Linear(config.hidden_size, config.hidden_size),
        nn.GELU(),
        nn.LayerNorm(config.hidden_size, eps=getattr(config, "layer_norm_eps", 1e-12)),
        decoder,
    )


def encoder_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The encoder's own weights out of a :class:`PooledEncoder` state dict (for export)."""
    return {k[len(ENCODER_PREFIX) :]: v for k, v in state.items() if k.startswith(ENCODER_PREFIX)}
