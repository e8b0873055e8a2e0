"""Typed, validated run configuration: the steps and the section each reads, loading, ``--set`` and errors.

``from commerce_lm.config import X`` is the public way in; the modules below it hold the parts.
"""

from commerce_lm.config.launch import LaunchConfig
from commerce_lm.config.loading import ConfigError, config_from_json, load_config, parse_config, section_from_json
from commerce_lm.config.objectives import OBJECTIVES, ObjectiveSettings
from commerce_lm.config.sections import (
    DatasetSpec,
    DomainSpec,
    EmbedConfig,
    HeadsConfig,
    KnnConfig,
    PrepareConfig,
    PublishConfig,
    ReportConfig,
    RunConfig,
    SimilaritySpec,
    TaskSpec,
)
from commerce_lm.config.step_sections import (
    ExtractSection,
    FinetuneBaselineSection,
    FinetuneEncoderSection,
    HeadsSection,
    KnnSection,
    PrepareSection,
    PublishBundleSection,
    ReportSection,
    StepSection,
    TrainingSection,
    prepare_part,
    section_reading,
)
from commerce_lm.config.steps import SECTIONS, STEPS, Step, identifier, section_for, step_named
from commerce_lm.config.training import BaselineConfig, FinetuneConfig, TrainConfig

__all__ = [
    "OBJECTIVES",
    "SECTIONS",
    "STEPS",
    "BaselineConfig",
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
    "LaunchConfig",
    "ObjectiveSettings",
    "PrepareConfig",
    "PrepareSection",
    "PublishBundleSection",
    "PublishConfig",
    "ReportConfig",
    "ReportSection",
    "RunConfig",
    "SimilaritySpec",
    "Step",
    "StepSection",
    "TaskSpec",
    "TrainConfig",
    "TrainingSection",
    "config_from_json",
    "identifier",
    "load_config",
    "parse_config",
    "prepare_part",
    "section_for",
    "section_from_json",
    "section_reading",
    "step_named",
]
