"""Length-sorted, token-budget batches with dynamic padding.

Sorting by length and padding each batch only to its own longest document removes nearly all the
padding work of a fixed-size, input-order loop; the token budget lets short documents travel in
larger batches, which keeps the matrix multiplications large enough to run near the machine's peak.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def token_budget_batches(lengths: Sequence[int] | np.ndarray, token_budget: int) -> list[np.ndarray]:
    """Group documents into batches whose padded size stays within a token budget.

    Documents are taken longest first (so the largest batch shape, and the peak memory, shows up at
    once rather than at the end of a long run) and each batch holds as many of them as fit in
    ``token_budget`` padded tokens. A document longer than the budget still gets a batch of its own.

    Args:
        lengths: Token count of each document.
        token_budget: Upper bound on ``batch_size * longest_length`` of a batch.

    Returns:
        Index arrays into ``lengths``, one per batch; together they cover every document once.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    # A stable sort keeps equal-length documents in input order: deterministic batches.
    order = np.argsort(-lengths, kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        longest = max(int(lengths[order[start]]), 1)
        size = max(token_budget // longest, 1)
        batches.append(order[start : start + size])
        start += size
    return batches


def pad_batch(token_ids: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Pad a batch of token id lists to its own longest member.

    Args:
        token_ids: The documents' token ids.
        pad_id: The tokenizer's padding id.

    Returns:
        ``(input_ids, attention_mask)`` as int64 arrays of shape ``[batch, longest]``.
    """
    longest = max(len(ids) for ids in token_ids)
    input_ids = np.full((len(token_ids), longest), pad_id, dtype=np.int64)
    mask = np.zeros((len(token_ids), longest), dtype=np.int64)
    for row, ids in enumerate(token_ids):
        input_ids[row, : len(ids)] = ids
        mask[row, : len(ids)] = 1
    return input_ids, mask
