"""The order of domain classes: numbers first (star ratings), then text."""

from __future__ import annotations

from typing import Any


def domain_label_order(label: Any) -> tuple[int, float | str]:
    """Numeric labels (star ratings) in numeric order, others alphabetically."""
    try:
        return 0, float(label)
    except ValueError:
        return 1, label
