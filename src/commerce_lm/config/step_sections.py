"""Each step's section of the run config: exactly the settings the step reads.

A step (and its KFP component) is handed only its section, so its cache key changes only when
something it reads changes: adding a task never touches the domain fine-tune's section. The
sections keep the run config's own key names (``cfg.finetune`` stays ``section.finetune``).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, create_model, model_validator

from commerce_lm.config.base import Canonical
from commerce_lm.config.sections import (
    DatasetSpec,
    DomainSpec,
    EmbedConfig,
    HeadsConfig,
    KnnConfig,
    PrepareConfig,
    ReportConfig,
    RunConfig,
    SimilaritySpec,
    TaskSpec,
    split_groups,
)
from commerce_lm.config.training import BaselineConfig, FinetuneConfig


class StepSection(Canonical):
    """The part of a run config that one step reads; its fingerprint changes only with that part."""


class PrepareSection(StepSection):
    """``prepare-data``: the datasets to prepare (any subset: see :func:`prepare_part`).

    Attributes:
        split_groups: How every dataset of the whole run ties rows together for the split (see
            :func:`split_groups`), so that each part splits a text as the others do. Unset, those
            of this section's own datasets.
    """

    seed: int
    prepare: PrepareConfig
    domain: DomainSpec | None = None
    tasks: list[TaskSpec] = Field(default_factory=list)
    similarity: list[SimilaritySpec] = Field(default_factory=list)
    split_groups: list[DatasetSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _own_split_groups(self) -> PrepareSection:
        if not self.split_groups:
            self.split_groups = split_groups([self.domain, *self.tasks, *self.similarity])
        return self


class TrainingSection(StepSection):
    """What both training steps read: the pre-trained model and the seed."""

    model: str
    seed: int


class FinetuneEncoderSection(TrainingSection):
    """``finetune-encoder``: the domain objective's data spec and the trainer settings."""

    domain: DomainSpec
    finetune: FinetuneConfig


class FinetuneBaselineSection(TrainingSection):
    """``finetune-baseline``: the trainer settings (the task comes with the prepared data)."""

    baseline: BaselineConfig


class ExtractSection(StepSection):
    """``extract-embeddings``: the encoder to embed with unless told another, and the settings."""

    model: str
    embed: EmbedConfig


class HeadsSection(StepSection):
    """``train-heads``: the tasks, the PLM (whose checksum its vectors must carry) and the settings."""

    model: str
    tasks: list[TaskSpec]
    heads: HeadsConfig


class KnnSection(StepSection):
    """``evaluate-knn``: the similarity sets, the PLM and the settings."""

    model: str
    similarity: list[SimilaritySpec]
    knn: KnnConfig


class ReportSection(StepSection):
    """``build-report``: what the report names and counts, and its settings."""

    name: str
    model: str
    seed: int
    domain: DomainSpec
    tasks: list[TaskSpec]
    similarity: list[SimilaritySpec]
    report: ReportConfig


class PublishBundleSection(RunConfig, StepSection):
    """``publish-bundle``: the whole run config, because the bundle carries it.

    ``score`` reads the bundle's run config for the columns, the text rules and the embedding
    settings its encoder was trained with, so any setting may change what the bundle holds.
    """


def section_reading(*keys: str) -> type[StepSection]:
    """A section of the run config's keys ``keys``, as the run config declares them.

    A new step whose section is only some of the run config's keys declares it in its descriptor
    (``Step("NAME", section_reading("model", "heads"), ...)``), with no class of its own here.

    Raises:
        KeyError: For a key the run config does not have, naming the known ones.
    """
    unknown = sorted(set(keys) - set(RunConfig.model_fields))
    if unknown:
        raise KeyError(f"{unknown}: not keys of the run config; known: {sorted(RunConfig.model_fields)}")
    declared = RunConfig.model_fields
    fields: dict[str, Any] = {key: (declared[key].annotation, declared[key]) for key in keys}
    return create_model(f"Section({', '.join(keys)})", __base__=StepSection, **fields)


# Settings that decide which steps run, not what a step does: no section carries them, so turning a
# task's end-to-end baseline off (or on) changes no step's cache key.
RUN_PLAN: dict[str, Any] = {"tasks": {"__all__": {"e2e"}}, "baseline": {"enabled"}}


PREPARE_PARTS = ("all", "domain", "datasets")


def prepare_part(section: PrepareSection, part: str) -> PrepareSection:
    """The datasets of one part of data preparation, each part its own artifact (and cache key).

    Args:
        section: The ``prepare-data`` section.
        part: ``all``; ``domain`` (the domain corpus alone); ``datasets`` (every task and
            similarity set, and the corpus to embed); or ``task:NAME`` (one task alone).

    Returns:
        A section holding only that part's datasets.

    Raises:
        ValueError: For an unknown part or task name.
    """
    # Every part splits as the whole run does: it carries the whole run's split groups.
    common = {"seed": section.seed, "prepare": section.prepare, "split_groups": section.split_groups}
    if part == "all":
        return section
    if part == "domain":
        return PrepareSection(**common, domain=section.domain)
    if part == "datasets":
        return PrepareSection(**common, tasks=section.tasks, similarity=section.similarity)
    name = part.removeprefix("task:")
    matches = [t for t in section.tasks if t.name == name]
    if not part.startswith("task:") or not matches:
        known = [*PREPARE_PARTS, *(f"task:{t.name}" for t in section.tasks)]
        raise ValueError(f"prepare-data part {part!r}: expected one of {known}")
    return PrepareSection(**common, tasks=matches)
