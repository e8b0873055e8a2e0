"""Checks shared by the consumers of stored embeddings (heads, KNN)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from commerce_lm.config import RunConfig
from commerce_lm.extract_embeddings import EmbeddingSet, load_embeddings


class EncoderMismatchError(ValueError):
    """Embeddings made by another encoder than the one a step was told to use."""


def load_checked(location: str, arm: str, expected_checksum: str | None) -> EmbeddingSet:
    """Load embeddings, refusing them when they come from an unexpected encoder.

    Raises:
        EncoderMismatchError: Naming both checksums.
    """
    emb = load_embeddings(location)
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
    from commerce_lm.models import model_checksum

    expected = {"plm": model_checksum(plm)}
    if finetuned:
        expected["finetuned"] = model_checksum(finetuned)
    return expected


def run_on_embeddings(
    step: Any,
    cfg: RunConfig,
    prepared_dir: str,
    plm_embeddings: str,
    finetuned_embeddings: str,
    finetuned_model: str | None,
    out_dir: str,
) -> dict[str, Any]:
    """Run a step that consumes both embedding sets (heads, KNN), checking which encoder made each.

    Args:
        step: The step module (``train_heads`` or ``evaluate_knn``).
        cfg: The run config; its ``model`` is the PLM the ``plm`` embeddings must come from.
        prepared_dir: ``prepare-data`` output.
        plm_embeddings: ``extract-embeddings`` output of the PLM.
        finetuned_embeddings: ``extract-embeddings`` output of the fine-tuned encoder.
        finetuned_model: The fine-tuned encoder's folder (``None``: its checksum is not checked).
        out_dir: The step's output folder.

    Returns:
        The step's metrics.
    """
    arms = {"plm": plm_embeddings, "finetuned": finetuned_embeddings}
    return step.run(cfg, prepared_dir, arms, out_dir, expected_checksums(cfg.model, finetuned_model))
