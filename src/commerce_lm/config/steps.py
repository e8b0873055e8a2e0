"""The pipeline's steps, each declared once: its command name, its section, its library module.

Everything else that names the steps is derived from :data:`STEPS`: the section each one reads
(:data:`SECTIONS`, :func:`section_for`), the CLI's subcommands (``commerce_lm.cli.commands``), the
code version of each (``commerce_lm_pipelines.versions``) and the steps a multi-node job may run
(``commerce_lm.launch.jobspec``). The registry sits in config, below the steps, because the config
must cut a step's section by its name (components pass the name) and config imports nothing of
ours outside itself: the library module is therefore named, never imported, here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from commerce_lm.config.sections import RunConfig
from commerce_lm.config.step_sections import (
    RUN_PLAN,
    ExtractSection,
    FinetuneBaselineSection,
    FinetuneEncoderSection,
    HeadsSection,
    KnnSection,
    PrepareSection,
    PublishBundleSection,
    ReportSection,
    StepSection,
)


@dataclass(frozen=True)
class Step:
    """One pipeline step.

    Attributes:
        name: Its command name (``commerce-lm NAME``), also its name in code versions and markers.
        section: The part of the run config it reads: a class of ``config/step_sections.py``, or
            ``section_reading(KEY, ...)`` for a section of some of the run config's keys.
        module: The library module holding its ``run`` (and its code version's root), by name.
        help: The one line its subcommand shows.
        inputs: What it reads (folders; a task's name), one required ``--INPUT`` flag each, in its
            ``run``'s order. A folder is named as the step output it comes from (``prepared``,
            ``heads``), by which the pipeline wires it.
        outputs: The names of what it writes, by which later steps' ``inputs`` name it.
        trainer: For a step that may run on several nodes, its section's field of trainer settings.
    """

    name: str
    section: type[StepSection]
    module: str
    help: str
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    trainer: str | None = None


STEPS: tuple[Step, ...] = (
    Step(
        "prepare-data",
        PrepareSection,
        "commerce_lm.steps.prepare_data",
        "validate, normalise, de-duplicate and split the data",
        outputs=("prepared",),
    ),
    Step(
        "finetune-encoder",
        FinetuneEncoderSection,
        "commerce_lm.steps.finetune_encoder",
        "finetune-encoder: DeepSpeed fine-tuning",
        ("prepared",),
        outputs=("finetuned",),
        trainer="finetune",
    ),
    Step(
        "finetune-baseline",
        FinetuneBaselineSection,
        "commerce_lm.steps.finetune_baseline",
        "finetune-baseline: DeepSpeed fine-tuning",
        ("prepared", "task"),
        outputs=("baseline",),
        trainer="baseline",
    ),
    Step(
        "extract-embeddings",
        ExtractSection,
        "commerce_lm.steps.extract_embeddings",
        "embed the corpus with a frozen encoder",
        ("prepared",),
        outputs=("plm-embeddings", "finetuned-embeddings"),  # once per encoder
    ),
    Step(
        "train-heads",
        HeadsSection,
        "commerce_lm.steps.train_heads",
        "one linear head per task and embedding set",
        ("prepared", "plm-embeddings", "finetuned-embeddings"),
        outputs=("heads",),
    ),
    Step(
        "evaluate-knn",
        KnnSection,
        "commerce_lm.steps.evaluate_knn",
        "KNN similarity detection, PLM vs fine-tuned",
        ("prepared", "plm-embeddings", "finetuned-embeddings"),
        outputs=("knn",),
    ),
    Step(
        "build-report",
        ReportSection,
        "commerce_lm.steps.build_report",
        "metrics.json, report.md and report.html",
        ("prepared", "finetuned", "plm-embeddings", "finetuned-embeddings", "heads", "knn"),
        outputs=("report",),
    ),
    Step(
        "publish-bundle",
        PublishBundleSection,
        "commerce_lm.steps.publish_bundle",
        "package the run as a bundle; publish it when the gate allows",
        ("prepared", "finetuned", "finetuned-embeddings", "heads", "knn"),
        outputs=("bundle",),
    ),
)

SECTIONS: dict[str, type[StepSection]] = {step.name: step.section for step in STEPS}


def identifier(name: str) -> str:
    """The Python name of a command-line name (``finetuned-embeddings`` -> ``finetuned_embeddings``).

    The CLI passes a step's inputs to its ``run`` under these names, and the components name their
    parameters and artifacts with them.
    """
    return name.replace("-", "_")


def step_named(name: str) -> Step:
    """The descriptor of step ``name``.

    Raises:
        KeyError: For a name no descriptor has, naming the known ones.
    """
    for step in STEPS:
        if step.name == name:
            return step
    raise KeyError(f"{name!r}: no such step; known steps: {[step.name for step in STEPS]}")


def section_for(step: str, cfg: RunConfig) -> Any:
    """Cut ``step``'s section out of a whole run config.

    Args:
        step: A step's command name, e.g. ``finetune-encoder`` (a key of :data:`SECTIONS`).
        cfg: The validated run config.

    Returns:
        The step's section (a :class:`StepSection`), holding copies of the config's values.

    Raises:
        KeyError: For a step without a section, naming the known ones.
    """
    if step not in SECTIONS:
        raise KeyError(f"{step!r}: no config section; known steps: {sorted(SECTIONS)}")
    section = SECTIONS[step]
    return section.model_validate(cfg.model_dump(include=set(section.model_fields), exclude=RUN_PLAN))
