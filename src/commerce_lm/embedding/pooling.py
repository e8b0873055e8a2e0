"""Turning an encoder's last hidden states into one vector per document.

How a model folder declares its pooling lives in :mod:`commerce_lm.modelfiles.st_files`.
"""

from __future__ import annotations

from commerce_lm.modelfiles.st_files import POOLINGS


def pool(hidden, attention_mask, pooling: str):  # noqa: ANN001, ANN201 - torch tensors
    """Pool ``[batch, length, dim]`` hidden states into ``[batch, dim]``.

    Args:
        hidden: The encoder's last hidden states.
        attention_mask: ``[batch, length]``, 1 for real tokens and 0 for padding.
        pooling: ``cls`` (the first token, the method's choice) or ``mean`` (over real tokens only).

    Returns:
        The pooled vectors, in ``hidden``'s dtype.

    Raises:
        ValueError: On an unknown pooling name.
    """
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "mean":
        # Padding must not dilute the mean: weight by the mask and divide by the real length.
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
    raise ValueError(f"pooling {pooling!r}: expected one of {POOLINGS}")
