"""Checks shared by the consumers of stored embeddings (heads, KNN): which encoder made them, and alignment."""

from __future__ import annotations

from collections import Counter
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


def _describe(ids: list[str], limit: int = 10) -> str:
    shown = ", ".join(repr(i) for i in ids[:limit])
    more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
    return f"{len(ids)}: {shown}{more}"


def check_ids(expected: list[str], got: list[str], what: str) -> None:
    """Every expected id exactly once, in the expected order, and nothing else.

    Raises:
        ValueError: Starting with ``what``, naming missing, duplicate and unexpected ids.
    """
    if got == expected:
        return
    counts = Counter(got)
    duplicates = sorted(i for i, c in counts.items() if c > 1)
    expected_set = set(expected)
    missing = [i for i in expected if i not in counts]
    unexpected = sorted(i for i in counts if i not in expected_set)
    problems = []
    if missing:
        problems.append(f"missing ids {_describe(missing)}")
    if duplicates:
        problems.append(f"duplicate ids {_describe(duplicates)}")
    if unexpected:
        problems.append(f"ids not in the corpus {_describe(unexpected)}")
    if not problems:
        problems.append("every id came back once, but not in corpus order")
    raise ValueError(f"{what}: " + "; ".join(problems))
