"""The typed sections of a run config: data specs and one settings model per step.

Every model forbids unknown keys, so a typo never silently falls back to a default.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_serializer, model_validator

from commerce_lm.config.base import Canonical, Strict
from commerce_lm.config.resources import ResourcesConfig
from commerce_lm.config.training import BaselineConfig, FinetuneConfig

DEFAULTED_COLUMNS = frozenset({"lang", "split"})


class DatasetSpec(Strict):
    """Where a dataset lives and which columns hold what.

    Attributes:
        data: A Parquet, CSV or JSONL file, folder or glob, local or ``gs://``.
        id: Column holding the document id.
        text: Column (or columns, joined with a newline) holding the text.
        lang: Optional column holding the language code.
        split: Optional column holding ``train``/``validation``/``test``; a deterministic hash split
            is used when it is absent from the file.
        sample: Optional cap on rows kept, taken with the run seed (budgeted runs): exactly
            ``sample`` rows when more are valid.
        group_by: Columns whose non-null values tie rows together for the split (e.g. a re-listing
            group), so related rows never land on both sides.
        encoding: Text codec of CSV/JSONL files; unset reads UTF-8 (with or without a BOM) and
            refuses anything else.

    A column the config names must be in the file. Only ``lang`` and ``split`` left at their
    defaults may be absent; they are left out of the dumped config, so a step that gets the config
    as JSON still knows they were defaulted.
    """

    data: str
    id: str = "id"
    text: list[str] = Field(default_factory=lambda: ["text"], min_length=1)
    lang: str | None = "lang"
    split: str | None = "split"
    sample: int | None = Field(default=None, gt=0)
    group_by: list[str] = Field(default_factory=list)
    encoding: str | None = None

    @field_validator("text", mode="before")
    @classmethod
    def _text_as_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_serializer(mode="wrap")
    def _drop_defaulted_columns(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        for key in DEFAULTED_COLUMNS - self.model_fields_set:
            data.pop(key, None)
        return data

    def named(self, key: str) -> bool:
        """Whether the config set column ``key`` (``lang``, ``split``) itself, not by default."""
        return key in self.model_fields_set


class DomainSpec(DatasetSpec):
    """The domain corpus with its exclusive multi-class label.

    Attributes:
        labels: The allowed label values, in class-id order; when unset, the values found in the
            data, sorted.
    """

    label: str
    labels: list[str] | None = None


class TaskSpec(DatasetSpec):
    """A binary integrity task.

    Attributes:
        e2e: Whether the task gets an end-to-end baseline this run: ``auto`` (only when the bundle
            registry holds no earlier measurement of the same baseline), ``always`` or ``never``.
            A run plan, not a setting of any step: no step's section carries it.
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    e2e: Literal["auto", "always", "never"] = "auto"


class SimilaritySpec(DatasetSpec):
    """A similarity (KNN) task: documents sharing a group value are similar."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    group: str


def split_groups(specs: list[DatasetSpec | None]) -> list[DatasetSpec]:
    """What decides the corpus-wide split in each dataset: its files, id, text, split and group columns.

    A similarity set's group comes first among its group columns. Labels, names and ``sample`` are
    left out and equal views count once, in a fixed order: a task that reads the same files with the
    same groups as another changes no part's section (nor its cache key).
    """
    views = {}
    for spec in filter(None, specs):
        group_by = [spec.group, *spec.group_by] if isinstance(spec, SimilaritySpec) else list(spec.group_by)
        split = {"split": spec.split} if spec.named("split") else {}
        view = DatasetSpec(
            data=spec.data, id=spec.id, text=spec.text, lang=None, group_by=group_by, encoding=spec.encoding, **split
        )
        views[view.model_dump_json()] = view
    return [views[key] for key in sorted(views)]


class PrepareConfig(Strict):
    """Settings of ``prepare-data``."""

    validation_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    max_text_chars: int = Field(default=5000, gt=0)
    overlong: Literal["truncate", "reject"] = "truncate"
    max_rejected_fraction: float = Field(default=0.2, ge=0.0, le=1.0)
    batch_rows: int = Field(default=65536, gt=0)
    # DuckDB's memory for the duplicate, conflict and split rules; past it they spill to disk. The
    # default keeps the step near half a gigabyte for any corpus; a larger pod may give more for speed.
    # Below 128 MB DuckDB runs out of memory on two threads instead of spilling.
    memory_mb: int = Field(default=128, ge=128)

    @model_validator(mode="after")
    def _room_for_training(self) -> PrepareConfig:
        # Hash-split rows train only above validation + test: at 1 no row would be left to train on.
        if self.validation_fraction + self.test_fraction >= 1:
            raise ValueError(
                f"validation_fraction ({self.validation_fraction}) + test_fraction ({self.test_fraction}) must be"
                " below 1, or no row is left for training"
            )
        return self


class EmbedConfig(Strict):
    """Settings of ``extract-embeddings``."""

    max_length: int = Field(default=128, gt=0)
    # Tokens per batch: 1024 is fastest on a 2-core CPU (measured); GPUs want far more (see xlmr-base.yaml).
    token_budget: int = Field(default=1024, gt=0)
    # "auto": as the encoder declares (a sentence-transformers pooling config), else [CLS] as the
    # reference does; the fine-tuned encoder declares the pooling it was trained with.
    pooling: Literal["auto", "cls", "mean"] = "auto"
    # Text put before every document, as sentence-transformers does: "auto" is the prompt the encoder
    # declares as its default (config_sentence_transformers.json; e5's "passage: "), "none" none, or
    # the name of a prompt it declares. Part of the store key: vectors with and without never mix.
    prompt: str = Field(default="auto", min_length=1)
    dtype: Literal["float32", "float16"] = "float32"
    num_shards: int = Field(default=1, gt=0)
    # Vectors by (encoder checksum, pooling, max length, prompt, text digest), local or gs://, shared by every
    # run that names it; unset, a folder in the local cache (COMMERCE_LM_CACHE). Set a gs:// prefix on
    # a cluster, where each pod's local cache is lost.
    store: str | None = None


class HeadsConfig(Strict):
    """Settings of ``train-heads`` (one linear layer per task)."""

    c_grid: list[float] = Field(default_factory=lambda: [0.01, 0.1, 1.0, 10.0])
    max_iter: int = Field(default=2000, gt=0)


class KnnConfig(Strict):
    """Settings of ``evaluate-knn``."""

    k: int = Field(default=10, gt=0)
    index: Literal["flat", "ivf", "hnsw"] = "flat"


class ReportConfig(Strict):
    """Settings of ``build-report``."""

    bootstrap_samples: int = Field(default=1000, ge=0)
    # Smaller language slices give meaningless AUCs, so they are left out of the breakdown.
    min_slice_rows: int = Field(default=20, gt=0)
    title: str = "commerce-lm report"


class PublishConfig(Strict):
    """Settings of ``publish-bundle`` and its retraining gate.

    Attributes:
        location: The bundle registry, local or ``gs://``: bundles go to ``<location>/<id>/`` and
            ``LIVE.json`` names the live one. Unset, the bundle stays in the step's output only.
        metric: The validation metric the gate compares per task.
        tolerance: How much lower than the live bundle's a task's metric may be for the new bundle to
            count as not worse.
        allow_dropped_tasks: Publish even when the live bundle has a head for a task the new run lacks.
    """

    location: str | None = None
    metric: Literal["pr_auc", "roc_auc"] = "pr_auc"
    tolerance: float = Field(default=0.01, ge=0.0, le=1.0)
    allow_dropped_tasks: bool = False


class RunConfig(Canonical):
    """A whole run: data, model and the settings of every step."""

    name: str = "run"
    model: str
    seed: int = 13
    domain: DomainSpec
    tasks: list[TaskSpec] = Field(min_length=1)
    similarity: list[SimilaritySpec] = Field(default_factory=list)
    prepare: PrepareConfig = Field(default_factory=PrepareConfig)
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig)
    baseline: BaselineConfig = Field(default_factory=BaselineConfig)
    embed: EmbedConfig = Field(default_factory=EmbedConfig)
    heads: HeadsConfig = Field(default_factory=HeadsConfig)
    knn: KnnConfig = Field(default_factory=KnnConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    publish: PublishConfig = Field(default_factory=PublishConfig)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)

    @property
    def split_groups(self) -> list[DatasetSpec]:
        """How the run's datasets tie rows together for the split (:func:`split_groups`)."""
        return split_groups([self.domain, *self.tasks, *self.similarity])

    @model_validator(mode="after")
    def _unique_names(self) -> RunConfig:
        for kind, names in (
            ("tasks", [t.name for t in self.tasks]),
            ("similarity", [s.name for s in self.similarity]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{kind}: duplicate names {dupes}")
        return self

    @model_validator(mode="after")
    def _groups_for_group_contrastive(self) -> RunConfig:
        # Without groups the term would silently be SimCSE: say so instead.
        if self.finetune.weights().get("group_contrastive", 0) > 0 and not self.domain.group_by:
            raise ValueError(
                "finetune.objective group_contrastive needs domain.group_by: the columns that tie a listing"
                " to its re-listings or translations (its positives)"
            )
        return self
