"""Checks shared by the consumers of stored embeddings (heads, KNN): which encoder made them, and alignment."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from commerce_lm.embedding.store import EmbeddingSet, load
from commerce_lm.models import model_checksum


class EncoderMismatchError(ValueError):
    """Embeddings made by another encoder than the one a step was told to use."""


def load_checked(location: str, arm: str, expected_checksum: str | None) -> EmbeddingSet:
    """Load embeddings, refusing them when they come from an unexpected encoder.

    Raises:
        EncoderMismatchError: Naming both checksums.
    """
    emb = load(location)
    found = emb.manifest.get("encoder_checksum")
    if expected_checksum and found != expected_checksum:
        raise EncoderMismatchError(
            f"{location}: {arm} embeddings were made by encoder {found}, "
            f"but this step was told to use encoder {expected_checksum}"
        )
    return emb


def aligned_vectors(emb: EmbeddingSet, ids: Iterable[str], what: str) -> np.ndarray:
    """The vectors of ``ids``, in that order.

    Raises:
        KeyError: Naming ``what`` and the first missing ids.
    """
    index = {doc_id: row for row, doc_id in enumerate(emb.ids)}
    ids = list(ids)
    missing = [i for i in ids if i not in index]
    if missing:
        raise KeyError(f"{what}: {len(missing)} document(s) have no embedding, e.g. {missing[:5]}")
    return emb.vectors[[index[i] for i in ids]]


def expected_checksums(plm: str, finetuned: str | None) -> dict[str, str]:
    """The encoder checksums each embedding arm must carry: the PLM's and the fine-tuned model's."""
    expected = {"plm": model_checksum(plm)}
    if finetuned:
        expected["finetuned"] = model_checksum(finetuned)
    return expected
