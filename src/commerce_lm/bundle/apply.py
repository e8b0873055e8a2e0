"""Scoring vectors with a bundle: each linear head, and the nearest references of each similarity set."""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np


def head_scores(head: dict[str, Any], vectors: np.ndarray) -> np.ndarray:
    """The head's probability of the positive class for each vector (standardise, linear, sigmoid).

    Args:
        head: ``scaler_mean``, ``scaler_scale``, ``weight`` and ``bias``, as train-heads saves them.
        vectors: ``[n, dim]`` vectors made as the head's training vectors were.

    Returns:
        ``float64 [n]`` scores in ``[0, 1]``.
    """
    x = (np.asarray(vectors, dtype=np.float64) - np.asarray(head["scaler_mean"])) / np.asarray(head["scaler_scale"])
    logits = x @ np.asarray(head["weight"], dtype=np.float64) + float(head["bias"])
    # Written with exp of a non-positive number only, so large logits never overflow.
    positive = np.exp(-np.abs(logits))
    return np.where(logits >= 0, 1.0 / (1.0 + positive), positive / (1.0 + positive))


def _normalised(vectors: np.ndarray) -> np.ndarray:
    out = np.ascontiguousarray(vectors, dtype=np.float32).copy()
    faiss.normalize_L2(out)
    return out


def nearest_references(
    reference_ids: list[str],
    reference_vectors: np.ndarray,
    query_ids: list[str],
    query_vectors: np.ndarray,
    k: int,
    threshold: float,
) -> tuple[list[list[str]], list[list[float]]]:
    """For each query, its nearest references with cosine at or above ``threshold`` (itself excluded).

    Args:
        reference_ids: Ids of the reference listings.
        reference_vectors: Their vectors.
        query_ids: Ids of the listings scored; a reference with the same id is the listing itself.
        query_vectors: Their vectors.
        k: At most this many neighbours per query.
        threshold: The similarity set's chosen cosine threshold.

    Returns:
        ``(ids, cosines)``: per query, the neighbours' ids and cosines, nearest first.
    """
    if not reference_ids or not query_ids:
        return [[] for _ in query_ids], [[] for _ in query_ids]
    index = faiss.IndexFlatIP(reference_vectors.shape[1])
    index.add(_normalised(reference_vectors))
    depth = min(k + 1, len(reference_ids))  # one more, in case the listing is itself a reference
    cosines, rows = index.search(_normalised(query_vectors), depth)
    ids_out, cos_out = [], []
    for query, row, cos in zip(query_ids, rows, cosines, strict=True):
        keep = [(reference_ids[r], float(c)) for r, c in zip(row, cos, strict=True) if r >= 0 and c >= threshold]
        keep = [(i, c) for i, c in keep if i != query][:k]
        ids_out.append([i for i, _ in keep])
        cos_out.append([c for _, c in keep])
    return ids_out, cos_out
