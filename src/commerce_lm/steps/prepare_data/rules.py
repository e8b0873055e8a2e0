"""The per-row keys the rules order by: a row's place in the seeded sample, a domain class's rank."""

from __future__ import annotations

from typing import Any

from commerce_lm.data import splits


def sample_key(seed: int, row_id: str) -> float:
    """A row's place in the seeded sample order (smallest first)."""
    return splits.unit_hash(f"sample:{seed}:{row_id}")


def domain_label_order(label: Any) -> tuple[int, float | str]:
    """Numeric labels (star ratings) in numeric order, others alphabetically."""
    try:
        return 0, float(label)
    except ValueError:
        return 1, label
