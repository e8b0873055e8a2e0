"""The weighted mix of objectives: itself an objective, whose ``loss`` the trainer minimises."""

from __future__ import annotations

from typing import Any

from commerce_lm.training.objectives.base import VIEWS_KEY, Objective


class Mix:
    """``loss = sum(weight * term)`` over named objectives that share one forward pass."""

    def __init__(self, parts: dict[str, tuple[float, Objective]]) -> None:
        """Args: parts: Objective name -> (weight, objective); weights must be positive."""
        if not parts:
            raise ValueError("an objective needs at least one term")
        self.parts = parts
        self.views = max(objective.views for _, objective in parts.values())
        # Whether a batch must carry each document's group partner (group_contrastive).
        self.partners = any(getattr(objective, "partners", False) for _, objective in parts.values())

    def __call__(self, model: Any, batch: dict[str, Any]) -> dict[str, Any]:
        """Every term by name, plus ``loss``, their weighted sum."""
        batch[VIEWS_KEY] = self.views
        terms: dict[str, Any] = {}
        total = None
        for weight, objective in self.parts.values():
            for name, value in objective(model, batch).items():
                terms[name] = value
                total = weight * value if total is None else total + weight * value
        terms["loss"] = total
        return terms
