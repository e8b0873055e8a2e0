"""A tiny, randomly initialised XLM-RoBERTa with a tokenizer trained on the fly.

Tests and the ``tiny`` config exercise the XLM-R code paths with it: the real model class and a
real SentencePiece-style (Unigram) tokenizer, small enough to train in seconds on a CPU.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from commerce_lm import storage

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def _train_tokenizer(texts: Iterable[str], vocab_size: int):  # noqa: ANN202
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, unk_token="<unk>", show_progress=False
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    bos, eos = tokenizer.token_to_id("<s>"), tokenizer.token_to_id("</s>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", bos), ("</s>", eos)]
    )
    return tokenizer


def build_tiny_xlmr(
    out_dir: str | Path,
    texts: Iterable[str],
    vocab_size: int = 2000,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    max_positions: int = 130,
    seed: int = 0,
) -> Path:
    """Write a tiny random ``XLMRobertaModel`` and its tokenizer in Hugging Face format.

    Args:
        out_dir: Folder to write (``from_pretrained`` loads it).
        texts: Text to train the tokenizer on.
        vocab_size: Upper bound on the tokenizer's vocabulary.
        hidden_size: Width of the model.
        num_layers: Number of transformer layers.
        num_heads: Attention heads per layer.
        max_positions: Longest sequence the model accepts, plus XLM-R's two offset positions.
        seed: Seed of the random initialisation.

    Returns:
        The folder written.
    """
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizerFast

    raw = _train_tokenizer(texts, vocab_size)
    tokenizer = XLMRobertaTokenizerFast(tokenizer_object=raw, model_max_length=max_positions - 2)
    config = XLMRobertaConfig(
        vocab_size=raw.get_vocab_size(),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=hidden_size * 4,
        max_position_embeddings=max_positions,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    model = XLMRobertaModel(config)
    with storage.staged_dir(out_dir, "tiny-model") as stage:
        model.save_pretrained(stage, safe_serialization=True)
        tokenizer.save_pretrained(stage)
    return Path(out_dir)
