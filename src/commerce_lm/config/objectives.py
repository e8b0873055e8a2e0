"""The fine-tune's objectives by name, each with its settings: the only list of objective names.

``finetune.objective`` maps names to weights, ``{instance_contrastive: 1, stay_near_pretrained: 1}``;
an objective with settings of its own may instead be given them, ``{name: {weight: 1, margin: 0.2}}``.
The losses themselves are :mod:`commerce_lm.training.objectives`, one module per name here. The config
sits below training and cannot import them, so the names and their settings are declared here, where
validating a config needs them, and the trainer builds each loss from its settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from commerce_lm.config.base import Strict


class ObjectiveSettings(Strict):
    """One objective's entry in ``finetune.objective``: its weight.

    An objective with settings of its own subclasses it, adds them as fields, and is registered in
    :data:`OBJECTIVES` with that class. The settings objectives share (``temperature``, ``pooling``,
    ``mlm_probability``) are the fine-tune's own (:class:`~commerce_lm.config.FinetuneConfig`).
    """

    weight: float

    def as_config(self) -> float | dict[str, Any]:
        """The entry as a config spells it: the weight alone when it has no other setting.

        The short spelling keeps the canonical JSON, and so every fingerprint and cache key, of the
        configs written before objectives could have settings.
        """
        if set(type(self).model_fields) == {"weight"}:
            return self.weight
        return self.model_dump(mode="json")


# Objective name -> its settings; the trainer builds objective NAME with commerce_lm.training.objectives.NAME.
OBJECTIVES: dict[str, type[ObjectiveSettings]] = {
    "cross_entropy": ObjectiveSettings,
    "supervised_contrastive": ObjectiveSettings,
    "instance_contrastive": ObjectiveSettings,
    "group_contrastive": ObjectiveSettings,
    "mlm": ObjectiveSettings,
    "stay_near_pretrained": ObjectiveSettings,
}


def parse_objective(value: Any) -> Any:
    """``finetune.objective`` as each named objective's settings.

    Args:
        value: Name -> weight, or name -> that objective's settings; anything else is returned as it
            is, for pydantic to refuse.

    Returns:
        Name -> the objective's settings (an instance of its class in :data:`OBJECTIVES`).

    Raises:
        ValueError: An unknown name (the message lists the known ones), or weights that are not all
            ``>= 0`` with at least one ``> 0``.
        ValidationError: Settings that do not validate, keyed by the objective's name.
    """
    if not isinstance(value, Mapping):
        return value
    unknown = sorted(set(value) - set(OBJECTIVES))
    if unknown:
        raise ValueError(f"unknown objective(s) {unknown}; known: {sorted(OBJECTIVES)}")
    entries: dict[str, ObjectiveSettings] = {}
    errors: list[Any] = []
    for name, given in value.items():
        bare = not isinstance(given, Mapping | ObjectiveSettings)
        try:
            entries[name] = OBJECTIVES[name].model_validate({"weight": given} if bare else given)
        except ValidationError as error:
            # Keyed by the objective, as pydantic keys a plain mapping; a bare weight is the entry itself.
            errors += [{**item, "loc": (name, *item["loc"][bare:])} for item in error.errors()]
    if errors:
        raise ValidationError.from_exception_data("objective", errors)
    weights = {name: entry.weight for name, entry in entries.items()}
    if any(w < 0 for w in weights.values()) or not any(w > 0 for w in weights.values()):
        raise ValueError(f"weights must be >= 0 with at least one > 0, got {weights}")
    return entries
