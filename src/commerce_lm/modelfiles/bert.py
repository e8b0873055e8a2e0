"""An ``E5S1`` file's tensors as a Hugging Face ``BertModel``: its config and fp32 state dict.

The C engine runs exactly BERT's forward (absolute positions from 0, token type 0, post-LayerNorm,
erf GELU), so the tensors map one to one onto ``BertModel``'s names; the file has no pooler.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from commerce_lm.modelfiles.e5s1 import E5S1

# E5S1 name suffix of a layer -> BertModel name suffix under ``encoder.layer.<i>.``.
_LAYER = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def config(source: E5S1) -> dict:
    """``config.json`` of the ``BertModel`` the file holds (keys sorted by the writer)."""
    h = source.header
    return {
        "architectures": ["BertModel"],
        "attention_probs_dropout_prob": 0.1,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": h.hidden,
        "initializer_range": 0.02,
        "intermediate_size": h.ffn,
        "layer_norm_eps": h.eps,
        "max_position_embeddings": h.positions,
        "model_type": "bert",
        "num_attention_heads": h.heads,
        "num_hidden_layers": h.layers,
        "pad_token_id": h.pad,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
        "type_vocab_size": h.token_types,
        "use_cache": True,
        "vocab_size": h.rows,
    }


def _shapes(source: E5S1) -> Iterator[tuple[str, str, tuple[int, ...]]]:
    """``(E5S1 name, BertModel name, shape)`` of every tensor, embeddings first."""
    h = source.header
    yield "emb.word", "embeddings.word_embeddings.weight", (h.rows, h.hidden)
    yield "emb.pos", "embeddings.position_embeddings.weight", (h.positions, h.hidden)
    yield "emb.type", "embeddings.token_type_embeddings.weight", (h.token_types, h.hidden)
    yield "emb.ln.w", "embeddings.LayerNorm.weight", (h.hidden,)
    yield "emb.ln.b", "embeddings.LayerNorm.bias", (h.hidden,)
    for layer in range(h.layers):
        for short, long in _LAYER.items():
            out_dim = h.ffn if short == "fi" else h.hidden
            in_dim = h.ffn if short == "fo" else h.hidden
            prefix, target = f"l{layer}.{short}", f"encoder.layer.{layer}.{long}"
            if short.endswith("ln"):
                yield f"{prefix}.w", f"{target}.weight", (h.hidden,)
            else:
                # Linear weights are stored [out, in], as torch keeps them.
                yield f"{prefix}.w", f"{target}.weight", (out_dim, in_dim)
            yield f"{prefix}.b", f"{target}.bias", (out_dim,)


def state_dict(source: E5S1) -> dict[str, np.ndarray]:
    """Every tensor under its ``BertModel`` name, as ``float32``.

    Raises:
        commerce_lm.modelfiles.e5s1.FormatError: A tensor is missing or has the wrong size.
    """
    return {target: source.array(name, shape) for name, target, shape in _shapes(source)}
