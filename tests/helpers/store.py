"""Helpers for the vector store tests that child processes import too (so: no torch here)."""

from __future__ import annotations

import numpy as np

from commerce_lm.embedding.vector_store import StoreKey

KEY = StoreKey("abc123", "cls", 32)


def fake_vectors(digests: np.ndarray, dim: int = 8) -> np.ndarray:
    """A vector that is a pure function of the digest, so any copy of it can be checked."""
    raw = np.frombuffer(b"".join(bytes.fromhex(d[: 2 * dim].decode()) for d in digests), dtype=np.uint8)
    return (raw.reshape(len(digests), dim).astype(np.float32) - 127.5) / 64
