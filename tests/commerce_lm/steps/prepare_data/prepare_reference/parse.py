"""The per-row parsing of one input record: the library's own (``commerce_lm.data.parse``).

The per-row step keeps one piece of bookkeeping that the Arrow-native step does not: each text's
label, to find texts with two labels row by row, and its count of rows read. Its :class:`Dataset`
adds those fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from commerce_lm.data import parse as library

Row = library.Row
parse = library.parse


@dataclass
class Dataset(library.Dataset):
    """One dataset of the run config, and what the per-row first pass learns about it."""

    # learnt in the first pass: text digest -> its label, or CONFLICT; the rows read
    labels_by_text: dict[int, Any] = field(default_factory=dict)
    input_rows: int = 0


__all__ = ["Dataset", "Row", "parse"]
