"""Training objectives, one per module, and :func:`build`, which weighs them into one mix.

``finetune.objective`` is a weighted set, e.g. ``{cross_entropy: 1.0, instance_contrastive: 1.0,
stay_near_pretrained: 0.3}``; :func:`build` turns it into one :class:`~.mix.Mix`. The names and each
objective's settings are declared once, in :data:`commerce_lm.config.objectives.OBJECTIVES`, which
the config validates against; the loss of objective ``NAME`` is this package's module ``NAME``, whose
``build(settings, context)`` makes it. Each objective follows :class:`~.base.Objective`
(``objective(model, batch) -> {term: tensor}``), so it would run unchanged inside the Hugging Face
Trainer's ``compute_loss``.
"""

from __future__ import annotations

import importlib

from commerce_lm.training.objectives.base import Context, Objective
from commerce_lm.training.objectives.mix import Mix


def build(context: Context) -> Mix:
    """The weighted mix of the objectives ``context.finetune.objective`` names; those of weight 0 left out.

    The config has validated the names and weights (:func:`commerce_lm.config.objectives.parse_objective`).
    Each loss is loaded by its name, so no list of them is kept here; the fine-tune's code version
    counts every module of this package for that reason (:mod:`commerce_lm_pipelines.versions`).
    """
    return Mix(
        {
            name: (settings.weight, importlib.import_module(f"{__name__}.{name}").build(settings, context))
            for name, settings in context.finetune.objective.items()
            if settings.weight > 0
        }
    )


__all__ = ["Context", "Mix", "Objective", "build"]
