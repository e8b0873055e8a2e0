"""An inference-only forward pass for BERT-family encoders (BERT, RoBERTa, XLM-R) on CPU.

Same weights and the same math as the Hugging Face modules, with less work per token:

* the query, key and value projections run as one matrix multiplication (three times the width,
  so the CPU's matrix kernel runs closer to its peak, and one pass over the activations);
* linear layers run on 2-D ``[tokens, hidden]`` views, attention on strided views of the fused
  projection (no copies), through PyTorch's fused scaled-dot-product attention;
* with [CLS] pooling the last layer computes its attention output and feed-forward block for the
  first token only: nothing else of that layer reaches the output.

Tests check it against the Hugging Face forward pass; architectures it does not recognise run
through Hugging Face unchanged (see :func:`supports`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias

SUPPORTED_TYPES = ("bert", "roberta", "xlm-roberta")


def supports(model: torch.nn.Module) -> bool:
    """Whether ``model`` is a plain BERT-family encoder this module reproduces exactly."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "model_type", None) not in SUPPORTED_TYPES:
        return False
    if getattr(config, "is_decoder", False) or getattr(config, "add_cross_attention", False):
        return False
    if getattr(config, "position_embedding_type", "absolute") not in (None, "absolute"):
        return False
    if config.hidden_act != "gelu" or getattr(config, "chunk_size_feed_forward", 0):
        return False
    encoder = getattr(model, "encoder", None)
    return hasattr(model, "embeddings") and encoder is not None and hasattr(encoder, "layer")


class _Layer:
    """One transformer layer's weights, with the Q, K and V projections concatenated."""

    def __init__(self, layer: torch.nn.Module) -> None:
        attention = layer.attention.self
        self.heads = attention.num_attention_heads
        self.head_dim = attention.attention_head_size
        self.scale = getattr(attention, "scaling", self.head_dim**-0.5)
        self.qkv_weight = torch.cat([attention.query.weight, attention.key.weight, attention.value.weight]).detach()
        self.qkv_bias = torch.cat([attention.query.bias, attention.key.bias, attention.value.bias]).detach()
        self.out = layer.attention.output.dense
        self.norm1 = layer.attention.output.LayerNorm
        self.up = layer.intermediate.dense
        self.down = layer.output.dense
        self.norm2 = layer.output.LayerNorm

    def __call__(self, x: torch.Tensor, mask: torch.Tensor | None, first_only: bool) -> torch.Tensor:
        """Run the layer on ``x [batch, length, hidden]``; with ``first_only`` return ``[batch, 1, hidden]``."""
        batch, length, hidden = x.shape
        qkv = F.linear(x, self.qkv_weight, self.qkv_bias)
        # [batch, length, 3, heads, head_dim] -> three [batch, heads, length, head_dim] views.
        q, k, v = qkv.view(batch, length, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if first_only:
            q, x = q[:, :, :1], x[:, :1]
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)
        attended = attended.transpose(1, 2).reshape(batch, q.shape[2], hidden)
        x = self.norm1(F.linear(attended, self.out.weight, self.out.bias) + x)
        inner = F.gelu(F.linear(x, self.up.weight, self.up.bias))
        return self.norm2(F.linear(inner, self.down.weight, self.down.bias) + x)


class FastEncoder:
    """Inference-only forward pass of a BERT-family encoder, returning pooled vectors.

    Args:
        model: A Hugging Face ``BertModel``, ``RobertaModel`` or ``XLMRobertaModel`` (see :func:`supports`).
    """

    def __init__(self, model: torch.nn.Module) -> None:
        if not supports(model):
            raise ValueError(f"{type(model).__name__}: not a plain BERT-family encoder")
        self.embeddings = model.embeddings
        self.layers = [_Layer(layer) for layer in model.encoder.layer]

    @torch.inference_mode()
    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, pooling: str) -> torch.Tensor:
        """Pooled vectors ``[batch, hidden]`` of a padded batch.

        Args:
            input_ids: ``[batch, length]`` token ids.
            attention_mask: ``[batch, length]``, 1 for real tokens; ``None`` when nothing is padding.
            pooling: ``cls`` or ``mean``.
        """
        x = self.embeddings(input_ids=input_ids)
        # A boolean key mask broadcast over heads and queries: True where attention is allowed.
        mask = None if attention_mask is None else attention_mask.bool()[:, None, None, :]
        last = len(self.layers) - 1
        for index, layer in enumerate(self.layers):
            x = layer(x, mask, first_only=pooling == "cls" and index == last)
        if pooling == "cls":
            return x[:, 0]
        if attention_mask is None:
            return x.mean(dim=1)
        weights = attention_mask.unsqueeze(-1).to(x.dtype)
        return (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)
