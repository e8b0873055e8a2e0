"""The steps the pipeline wires from their descriptors alone: those its hand-written DAG does not name.

The DAG of :mod:`commerce_lm_pipelines.pipeline` is written by hand for the steps in
:data:`WIRED_BY_HAND` (shards, loops over tasks, collected outputs, GPUs). Any other step of
:data:`commerce_lm.config.STEPS` joins the pipeline from its descriptor:

- its component is the function ``NAME`` of ``commerce_lm_components.NAME`` (the step's name with
  ``_`` for ``-``), taking ``section_json``, ``code_version``, an input artifact for each of the
  descriptor's ``inputs`` and an output artifact for each of its ``outputs``, named likewise;
- its section is the pipeline parameter ``NAME_section`` (:func:`section_parameter`), which
  :func:`commerce_lm_pipelines.pipeline.pipeline_arguments` fills for every step;
- each input is the artifact of that name that an earlier step made (:func:`wire`), so it runs
  once they exist, cached by its section, its inputs and its code version like any step.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable
from typing import Any

from commerce_lm import config
from commerce_lm.config import Step

WIRED_BY_HAND = frozenset(
    {
        "prepare-data",
        "finetune-encoder",
        "finetune-baseline",
        "extract-embeddings",
        "train-heads",
        "evaluate-knn",
        "publish-bundle",
        "build-report",
    }
)
# Named before the rule; renaming it would change the parameters of every compiled pipeline.
_PARAMETER = {"extract-embeddings": "extract_section"}


def section_parameter(step: str) -> str:
    """The pipeline parameter that holds ``step``'s section (``train-heads`` -> ``train_heads_section``)."""
    return _PARAMETER.get(step, f"{config.identifier(step)}_section")


def declared_steps() -> list[Step]:
    """The steps wired from their descriptors, in :data:`commerce_lm.config.STEPS`'s order."""
    return [step for step in config.STEPS if step.name not in WIRED_BY_HAND]


def with_section_parameters(function: Callable[..., Any], steps: list[Step]) -> Callable[..., Any]:
    """``function`` with a ``str`` parameter for each of ``steps``' sections, which it gets as keywords.

    KFP reads a pipeline's parameters from its function's signature and calls it with them in
    order, so the signature is extended here; with no such step it is ``function``'s own.
    """
    signature = inspect.signature(function)
    kept = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    # The required parameters come first: the added ones have no default either.
    split = next((i for i, p in enumerate(kept) if p.default is not inspect.Parameter.empty), len(kept))
    added = [
        inspect.Parameter(section_parameter(step.name), inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str)
        for step in steps
    ]
    signature = signature.replace(parameters=[*kept[:split], *added, *kept[split:]])

    @functools.wraps(function)
    def pipeline(*args: Any) -> Any:
        return function(**signature.bind(*args).arguments)

    pipeline.__signature__ = signature  # type: ignore[attr-defined]
    return pipeline


def component(step: Step) -> Any:
    """The KFP component of a step wired from its descriptor."""
    name = config.identifier(step.name)
    return getattr(importlib.import_module(f"commerce_lm_components.{name}"), name)


def wire(steps: list[Step], sections: dict[str, Any], artifacts: dict[str, Any], versions: dict[str, str]) -> list:
    """A task for each of ``steps``, reading the artifacts its descriptor names.

    Args:
        steps: The steps to wire (:func:`declared_steps`).
        sections: The pipeline's parameters, among them each step's ``NAME_section``.
        artifacts: Artifact name -> the output that holds it; each step adds its own outputs.
        versions: Each step's code version.

    Returns:
        The tasks made.

    Raises:
        ValueError: For an input that no earlier step makes, naming those there are.
    """
    tasks = []
    for step in steps:
        missing = [name for name in step.inputs if name not in artifacts]
        if missing:
            raise ValueError(f"{step.name}: no step makes {missing}; the pipeline has {sorted(artifacts)}")
        task = component(step)(
            section_json=sections[section_parameter(step.name)],
            code_version=versions[step.name],
            **{config.identifier(name): artifacts[name] for name in step.inputs},
        )
        artifacts.update({name: task.outputs[config.identifier(name)] for name in step.outputs})
        tasks.append(task)
    return tasks
