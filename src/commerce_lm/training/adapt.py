"""How much of the pre-trained encoder the domain fine-tune changes: freezing, adapters, interpolating back.

A strong multilingual PLM already knows what out-of-domain tasks need (translation retrieval above
all); the fine-tune must first do no harm. Three cheap levers keep it close:

- **Freezing** (:func:`freeze`): the word embeddings (most of a multilingual encoder's parameters:
  96M of multilingual-e5-small's 118M) and/or the lowest transformer layers keep their pre-trained
  values. A frozen parameter has ``requires_grad=False``, so the optimizer never holds it
  (:func:`commerce_lm.training.engine.optimizer` skips it) and DeepSpeed keeps no gradient,
  master copy or Adam moments for it.
- **Low-rank adapters** (:func:`add_adapters`, LoRA, Hu et al. 2021, through ``peft``): every
  pre-trained weight stays as it is and each transformer layer's linear maps learn a low-rank
  update instead; the export merges the update into the weights (:func:`merged_state`), so the
  folder is a plain encoder that extraction, ``AutoModel`` and ``SentenceTransformer`` load as
  before.
- **Weight-space interpolation** (:func:`interpolate`, WiSE-FT, Wortsman et al. 2022): the exported
  weights are ``a * fine-tuned + (1 - a) * PLM``. It costs no training, so ``a`` can be chosen on
  validation like any other setting (``benchmarks/objectives.py`` sweeps it).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from torch import nn

from commerce_lm import models


def transformer_layers(encoder: nn.Module, needed_by: str = "finetune.freeze_layers") -> nn.ModuleList:
    """The encoder's stack of transformer layers, lowest first (BERT, XLM-R: ``encoder.layer``).

    Args:
        encoder: A bare Hugging Face encoder.
        needed_by: The config key that needs the stack, named in the error.

    Raises:
        ValueError: The model has no such stack where BERT-style encoders keep it.
    """
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    if not isinstance(layers, nn.ModuleList):
        raise ValueError(f"{type(encoder).__name__} has no encoder.layer stack: {needed_by} needs one")
    return layers


def freeze(encoder: nn.Module, *, embeddings: bool, layers: int) -> list[str]:
    """Freeze the word embeddings and/or the lowest ``layers`` transformer layers of ``encoder``.

    Only the word (token) embedding matrix is frozen by ``embeddings``: it is where the parameters
    are, and the rows of tokens that the domain corpus rarely or never shows would otherwise drift
    apart from those it shows, unevenly across languages. Position and token-type embeddings (a few
    hundred thousand parameters, trained by every input alike) and the embedding layer norm stay
    trainable: freezing them saves nothing and takes away the cheapest way to adapt to the domain's
    text lengths.

    Args:
        encoder: A bare Hugging Face encoder (``get_input_embeddings()``, ``encoder.layer``).
        embeddings: Freeze the word embeddings.
        layers: How many transformer layers to freeze, from the bottom (0: none).

    Returns:
        The names of the frozen parameters, as ``encoder.named_parameters()`` gives them.

    Raises:
        ValueError: ``layers`` is more than the encoder has (naming ``finetune.freeze_layers``).
    """
    modules: list[nn.Module] = []
    if embeddings:
        modules.append(encoder.get_input_embeddings())
    if layers:
        stack = transformer_layers(encoder)
        if layers > len(stack):
            raise ValueError(f"finetune.freeze_layers is {layers}, but the encoder has only {len(stack)} layers")
        modules.extend(stack[:layers])
    frozen = {id(p) for module in modules for p in module.parameters()}
    names = []
    for name, param in encoder.named_parameters():
        if id(param) in frozen:
            param.requires_grad_(False)
            names.append(name)
    return names


# The linear maps of every transformer layer (attention and feed-forward), not the pooler: the pooled
# vector never passes through it, so an adapter there would only collect weight decay.
ADAPTED_MODULES = r".*\.layer\.\d+\..*(query|key|value|dense)"


def add_adapters(encoder: nn.Module, *, rank: int, alpha: float) -> nn.Module:
    """Wrap ``encoder`` with LoRA adapters of ``rank``; every pre-trained weight is frozen.

    Args:
        encoder: A bare Hugging Face encoder with a BERT-style layer stack.
        rank: The rank of each update (``finetune.lora_rank``).
        alpha: Its scale numerator: the update is ``alpha / rank * B @ A`` (``finetune.lora_alpha``).

    Returns:
        The ``peft`` model: it runs, and is frozen further by :func:`freeze`, like ``encoder``.
    """
    from peft import LoraConfig, get_peft_model  # only a run with adapters needs peft loaded

    transformer_layers(encoder, "finetune.lora_rank")  # a one-line error rather than peft's when there is none
    return get_peft_model(encoder, LoraConfig(r=rank, lora_alpha=alpha, target_modules=ADAPTED_MODULES))


def merged_state(state: dict[str, Any], config: Any, *, rank: int, alpha: float) -> dict[str, Any]:
    """The plain encoder's state dict from an adapted one's: each update added into its weight.

    Args:
        state: The state dict of :func:`add_adapters`' model (``peft`` names).
        config: The encoder's transformers config.
        rank: The adapters' rank, as trained.
        alpha: Their scale, as trained.

    Returns:
        A state dict with the encoder's own names, as ``AutoModel.from_config(config)`` has them.
    """
    from transformers import AutoModel

    adapted = add_adapters(AutoModel.from_config(config), rank=rank, alpha=alpha)
    adapted.load_state_dict(state)
    return adapted.merge_and_unload().state_dict()


def interpolate(tuned: dict[str, Any], pretrained: dict[str, Any], alpha: float) -> dict[str, Any]:
    """WiSE-FT: ``alpha * tuned + (1 - alpha) * pretrained``, tensor by tensor.

    Args:
        tuned: The fine-tuned encoder's state dict.
        pretrained: The pre-trained encoder's state dict (same keys and shapes).
        alpha: Weight of the fine-tuned weights, in (0, 1]; 1 returns ``tuned`` itself.

    Returns:
        The interpolated state dict. Integer buffers (position ids) are taken from ``tuned``.

    Raises:
        ValueError: ``alpha`` is outside (0, 1], or the two state dicts do not hold the same tensors.
    """
    if not 0 < alpha <= 1:
        raise ValueError(f"finetune.interpolation must be in (0, 1], got {alpha}")
    if alpha == 1:
        return tuned
    if set(tuned) != set(pretrained):
        raise ValueError(f"weights differ from the pre-trained encoder's: {sorted(set(tuned) ^ set(pretrained))[:5]}")
    out = {}
    for key, value in tuned.items():
        base = pretrained[key]
        if value.shape != base.shape:
            raise ValueError(f"{key}: shape {tuple(value.shape)}, the pre-trained encoder has {tuple(base.shape)}")
        if value.is_floating_point():
            # Computed in float32 whatever the stored dtype, so bf16 exports lose nothing extra.
            mixed = alpha * value.float() + (1 - alpha) * base.to(value.device).float()
            out[key] = mixed.to(value.dtype)
        else:
            out[key] = value
    return out


def interpolate_folder(tuned: str, pretrained: str, alpha: float, out: str) -> None:
    """Write ``out``: the exported encoder folder ``tuned`` with its weights interpolated toward ``pretrained``.

    The tokenizer and the sentence-transformers pooling declaration are copied as they are, so
    ``out`` is the folder that ``finetune-encoder`` with ``finetune.interpolation: alpha`` would
    have exported (interpolation is linear: from an export at ``a``, ``alpha`` gives ``alpha * a``).

    Args:
        tuned: A local folder written by ``finetune-encoder``.
        pretrained: The PLM it was fine-tuned from (a model reference, as ``model`` in a config).
        alpha: Weight of the fine-tuned weights, in (0, 1].
        out: The local folder to write (replaced if it exists).
    """
    encoder = models.load_encoder(tuned)
    mixed = interpolate(encoder.state_dict(), models.load_encoder(pretrained).state_dict(), alpha)
    encoder.load_state_dict(mixed)
    # Written beside and renamed into place, so a cut-off run never leaves a half folder at ``out``.
    stage = Path(f"{out}.partial")
    shutil.rmtree(stage, ignore_errors=True)
    shutil.copytree(tuned, stage, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    encoder.save_pretrained(stage, safe_serialization=True)
    shutil.rmtree(out, ignore_errors=True)
    stage.rename(out)
