"""Texts as integer codes, and their split keys hashed once per distinct text, when first needed.

The datasets that read one file with the same text columns share one :class:`TextCodes`: a text is
encoded once per run, however many datasets name its file, and its split key
(:func:`commerce_lm.data.splits.text_key`, then :func:`commerce_lm.data.splits.unit_hash`) is
hashed only if some accepted row without a group needs it, and then only once.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from commerce_lm.data import splits


def encode(column: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Each value's code (equal values, equal codes; null is a value) and the distinct values."""
    encoded = pc.dictionary_encode(column, null_encoding="encode")
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary


def unit_hashes(keys: list[str]) -> np.ndarray:
    """:func:`commerce_lm.data.splits.unit_hash` of every key, in one loop.

    The hash is the same (SHA-256 of the salted key, its first 8 bytes over 2**64); dividing the
    big-endian integer by a power of two in numpy rounds exactly as Python's int division does.
    """
    salted = hashlib.sha256(f"{splits.SPLIT_SALT}:".encode())
    digests = []
    for key in keys:
        digest = salted.copy()
        digest.update(key.encode("utf-8", "surrogatepass"))
        digests.append(digest.digest()[:8])
    return np.frombuffer(b"".join(digests), ">u8").astype(np.float64) / 2.0**64


def text_keys(texts: list[str]) -> list[str]:
    """:func:`commerce_lm.data.splits.text_key` of every text."""
    sha = hashlib.sha256
    return [sha(text.encode("utf-8", "surrogatepass")).hexdigest()[:24] for text in texts]


class TextCodes:
    """The texts of a frame's rows as codes, and their split keys, computed per distinct text on demand.

    Args:
        column: The normalised text of every row (no nulls).
    """

    def __init__(self, column: pa.Array) -> None:
        """Encode ``column``; no key is hashed yet."""
        encoded = pc.dictionary_encode(column, null_encoding="encode")
        self.codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        self.count = len(encoded.dictionary)
        # Where each distinct text first occurs: the column is kept, not a second copy of its texts.
        self._first = np.zeros(self.count, np.int64)
        self._first[self.codes[::-1]] = np.arange(len(self.codes) - 1, -1, -1)
        self._column = column
        self._keys = np.full(self.count, None, object)
        self._units = np.full(self.count, np.nan)

    def _fill(self, codes: np.ndarray) -> None:
        todo = np.unique(codes[np.isnan(self._units[codes])])
        if todo.size:
            found = text_keys(self._column.take(pa.array(self._first[todo])).to_pylist())
            self._keys[todo] = found
            self._units[todo] = unit_hashes(found)

    def keys(self, rows: np.ndarray) -> np.ndarray:
        """The text key of each of ``rows`` (positions in the frame)."""
        self._fill(self.codes[rows])
        return self._keys[self.codes[rows]]

    def units(self, rows: np.ndarray) -> np.ndarray:
        """The split hash (``unit_hash`` of the text key) of each of ``rows``."""
        self._fill(self.codes[rows])
        return self._units[self.codes[rows]]
