"""Typed, validated run configuration: one section per step, loading, ``--set`` and errors.

``from commerce_lm.config import X`` is the public way in; the modules below it hold the parts.
"""

from commerce_lm.config.loading import ConfigError, config_from_json, load_config, parse_config, section_from_json
from commerce_lm.config.sections import (
    DatasetSpec,
    DomainSpec,
    EmbedConfig,
    FinetuneConfig,
    HeadsConfig,
    KnnConfig,
    ObjectiveName,
    PrepareConfig,
    ReportConfig,
    RunConfig,
    SimilaritySpec,
    TaskSpec,
    TrainConfig,
)
from commerce_lm.config.step_sections import (
    SECTIONS,
    ExtractSection,
    FinetuneBaselineSection,
    FinetuneEncoderSection,
    HeadsSection,
    KnnSection,
    PrepareSection,
    ReportSection,
    StepSection,
    TrainingSection,
    prepare_part,
    section_for,
)

__all__ = [
    "SECTIONS",
    "ConfigError",
    "DatasetSpec",
    "DomainSpec",
    "EmbedConfig",
    "ExtractSection",
    "FinetuneBaselineSection",
    "FinetuneConfig",
    "FinetuneEncoderSection",
    "HeadsConfig",
    "HeadsSection",
    "KnnConfig",
    "KnnSection",
    "ObjectiveName",
    "PrepareConfig",
    "PrepareSection",
    "ReportConfig",
    "ReportSection",
    "RunConfig",
    "SimilaritySpec",
    "StepSection",
    "TaskSpec",
    "TrainConfig",
    "TrainingSection",
    "config_from_json",
    "load_config",
    "parse_config",
    "prepare_part",
    "section_for",
    "section_from_json",
]
