"""Deterministic hash splits that keep groups and duplicates on one side.

A row's split is a pure function of its split key (its group, or its normalised text), so the
split is reproducible, rows of one group never cross splits, and adding rows to a corpus never
moves an existing row to another split.
"""

from __future__ import annotations

import hashlib

# Independent of the run seed on purpose: retraining with another seed must not move documents.
SPLIT_SALT = "commerce-lm/split/v1"
# Zero-width marks a copy gains or loses unseen (zero-width space, non-joiner, joiner, word joiner,
# BOM): texts are equal, and split, as if they were absent. The stored text keeps them.
KEY_IGNORED = "\u200b\u200c\u200d\u2060\ufeff"
_IGNORED = str.maketrans("", "", KEY_IGNORED)


def unit_hash(key: str) -> float:
    """Map ``key`` to a uniform number in [0, 1)."""
    digest = hashlib.sha256(f"{SPLIT_SALT}:{key}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_split(key: str, validation_fraction: float, test_fraction: float) -> str:
    """``train``, ``validation`` or ``test`` for a split key."""
    u = unit_hash(key)
    if u < test_fraction:
        return "test"
    if u < test_fraction + validation_fraction:
        return "validation"
    return "train"


def carve_validation(key: str, validation_fraction: float) -> str:
    """For a row a file puts in ``train``: move a deterministic share to ``validation``."""
    return "validation" if unit_hash(f"val:{key}") < validation_fraction else "train"


def key_form(text: str) -> str:
    """What equality of texts compares: the text without the zero-width marks of :data:`KEY_IGNORED`."""
    return text.translate(_IGNORED)


def text_key(text: str) -> str:
    """The split/duplicate key of a normalised text (its :func:`key_form`)."""
    return hashlib.sha256(key_form(text).encode("utf-8", "surrogatepass")).hexdigest()[:24]


def hash64(value: str) -> int:
    """A 64-bit digest of a string: de-duplication keeps these, not the strings, per row.

    At 10M rows the chance of any collision is about 3e-6.
    """
    return int.from_bytes(hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big")
