"""Typed, validated run configuration: one section per step, loading, ``--set`` and errors.

``from commerce_lm.config import X`` is the public way in; the modules below it hold the parts.
"""

from commerce_lm.config.loading import ConfigError, config_from_json, load_config, parse_config
from commerce_lm.config.sections import (
    DatasetSpec,
    DomainSpec,
    EmbedConfig,
    FinetuneConfig,
    HeadsConfig,
    KnnConfig,
    ObjectiveName,
    PrepareConfig,
    PublishConfig,
    ReportConfig,
    RunConfig,
    SimilaritySpec,
    TaskSpec,
    TrainConfig,
)

__all__ = [
    "ConfigError",
    "DatasetSpec",
    "DomainSpec",
    "EmbedConfig",
    "FinetuneConfig",
    "HeadsConfig",
    "KnnConfig",
    "ObjectiveName",
    "PrepareConfig",
    "PublishConfig",
    "ReportConfig",
    "RunConfig",
    "SimilaritySpec",
    "TaskSpec",
    "TrainConfig",
    "config_from_json",
    "load_config",
    "parse_config",
]
