"""The typed sections of a run config: data specs and one settings model per step.

Every model forbids unknown keys, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer, model_validator

from commerce_lm.config.resources import ResourcesConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class _Canonical(_Strict):
    """A config (or a step's part of one) that travels as canonical JSON, known by a hash of it."""

    def to_json(self) -> str:
        """Canonical JSON (sorted keys): what is passed between steps and to components."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True)

    def fingerprint(self) -> str:
        """A short, stable hash of :meth:`to_json`; changes whenever any setting in it changes."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]


# Columns a file may lack while the config leaves them at their default names.
DEFAULTED_COLUMNS = frozenset({"lang", "split"})


class DatasetSpec(_Strict):
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
    """A binary integrity task."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str


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


class PrepareConfig(_Strict):
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


class TrainConfig(_Strict):
    """Settings of the shared DeepSpeed trainer (encoder and end-to-end baselines)."""

    max_length: int = Field(default=128, gt=0)
    epochs: float = Field(default=1.0, gt=0)
    max_steps: int | None = Field(default=None, gt=0)
    per_device_batch_size: int = Field(default=16, gt=0)
    gradient_accumulation_steps: int = Field(default=1, gt=0)
    learning_rate: float = Field(default=5e-5, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    warmup_ratio: float = Field(default=0.06, ge=0, le=1)
    max_grad_norm: float = Field(default=1.0, gt=0)
    zero_stage: Literal[0, 1, 2, 3] = 0
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    eval_every: int | None = Field(default=None, gt=0)
    best_metric: Literal["val_loss", "val_accuracy", "val_macro_f1", "val_roc_auc", "val_probe_macro_f1"] = "val_loss"
    early_stopping_patience: int | None = Field(default=None, gt=0)
    checkpoint_every: int | None = Field(default=None, gt=0)
    keep_checkpoints: int = Field(default=2, gt=0)
    num_procs: int = Field(default=1, gt=0)
    num_gpus: int = Field(default=0, ge=0)
    # Several nodes: with num_nodes > 1 the step creates a Kubeflow Trainer v2 TrainJob (or, with
    # trainjob_api: pytorchjob, a Training Operator v1 PyTorchJob) whose pods run the same
    # `commerce-lm` command on num_nodes nodes of num_gpus (or num_procs) processes each
    # (commerce_lm.launch). See deploy/README.md for the runtimes the cluster needs.
    num_nodes: int = Field(default=1, gt=0)
    launcher: Literal["torchrun", "deepspeed"] = "torchrun"
    trainjob_api: Literal["trainjob", "pytorchjob"] = "trainjob"
    # The TrainJob's runtimeRef; default: torch-distributed, or deepspeed-distributed with launcher: deepspeed.
    trainjob_runtime: str | None = None
    trainjob_runtime_kind: Literal["ClusterTrainingRuntime", "TrainingRuntime"] = "ClusterTrainingRuntime"
    trainjob_image: str | None = None
    # Default: the namespace the step's own pod runs in (where deploy/ grants the TrainJob verbs).
    trainjob_namespace: str | None = None
    trainjob_service_account: str | None = "pipeline-runner"
    # Kueue: the LocalQueue (label kueue.x-k8s.io/queue-name) and optional WorkloadPriorityClass.
    trainjob_queue: str | None = None
    trainjob_priority_class: str | None = None
    trainjob_annotations: dict[str, str] = Field(default_factory=dict)
    trainjob_env: dict[str, str] = Field(default_factory=dict)
    trainjob_shm_size: str = "16Gi"
    # How often the step reads the job's status while it waits.
    trainjob_poll_seconds: float = Field(default=10.0, gt=0)

    # Where and how the step runs, not what it learns: left out of the resumable run's identity, so
    # a job moved to other nodes resumes the same checkpoints.
    LAUNCH_SETTINGS: ClassVar[frozenset[str]] = frozenset(
        {"num_procs", "num_gpus", "num_nodes", "launcher", "checkpoint_every", "keep_checkpoints"}
        | {name for name in __annotations__ if name.startswith("trainjob_")}
    )


class BaselineConfig(TrainConfig):
    """Settings of ``finetune-baseline``: the trainer's, its budget chosen on validation.

    ``epochs`` is a cap: the learning-rate schedule spans it, validation is scored every
    ``eval_every`` steps (unset: once an epoch) and training stops after ``early_stopping_patience``
    evaluations without improvement. A run the cap stopped while validation still improved is
    reported as under-trained (``capped`` in its metrics), never as beaten.
    """

    epochs: float = Field(default=5.0, gt=0)
    early_stopping_patience: int | None = Field(default=2, gt=0)


# The objectives :mod:`commerce_lm.training.objectives` registers (a test keeps the two in step).
ObjectiveName = Literal[
    "cross_entropy", "supervised_contrastive", "instance_contrastive", "mlm", "stay_near_pretrained"
]


class FinetuneConfig(TrainConfig):
    """Settings of ``finetune-encoder``: the trainer's, plus the objective and the encoder's pooling.

    The objective is a weighted set of losses on the pooled vector that heads and KNN use
    (:mod:`commerce_lm.training.objectives`). ``{cross_entropy: 1.0}`` with ``pooling: cls`` is the
    reference's recipe. The default mix (the one validation chose on real reviews, MARC) keeps what
    the domain label does not need (instance contrast) and stays near the pre-trained vectors. The
    weights that suit one corpus do not suit another: ``benchmarks/objectives.py`` chooses them per
    corpus on validation data, and ``docs/objectives.md`` records each shipped config's evidence.
    """

    objective: dict[ObjectiveName, float] = Field(
        default_factory=lambda: {"cross_entropy": 1.0, "instance_contrastive": 1.0, "stay_near_pretrained": 0.1}
    )
    pooling: Literal["cls", "mean"] = "mean"
    # Text put before every training document: "auto" is the prompt the encoder declares as its
    # default (e5's "passage: "; nothing for most encoders), "none" none, or a declared prompt's name.
    prompt: str = Field(default="auto", min_length=1)
    temperature: float = Field(default=0.05, gt=0)
    mlm_probability: float = Field(default=0.15, gt=0, lt=1)
    best_metric: Literal["val_loss", "val_accuracy", "val_macro_f1", "val_roc_auc", "val_probe_macro_f1"] = (
        "val_probe_macro_f1"
    )
    # How much of the PLM is adapted (commerce_lm.training.adapt): frozen word embeddings, the lowest
    # N transformer layers frozen, and the exported weights a * fine-tuned + (1 - a) * PLM (WiSE-FT).
    freeze_embeddings: bool = False
    freeze_layers: int = Field(default=0, ge=0)
    interpolation: float = Field(default=1.0, gt=0, le=1)

    @field_validator("objective")
    @classmethod
    def _some_weight(cls, value: dict[str, float]) -> dict[str, float]:
        if any(w < 0 for w in value.values()) or not any(w > 0 for w in value.values()):
            raise ValueError(f"weights must be >= 0 with at least one > 0, got {value}")
        return value


class EmbedConfig(_Strict):
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


class HeadsConfig(_Strict):
    """Settings of ``train-heads`` (one linear layer per task)."""

    c_grid: list[float] = Field(default_factory=lambda: [0.01, 0.1, 1.0, 10.0])
    max_iter: int = Field(default=2000, gt=0)


class KnnConfig(_Strict):
    """Settings of ``evaluate-knn``."""

    k: int = Field(default=10, gt=0)
    index: Literal["flat", "ivf", "hnsw"] = "flat"


class ReportConfig(_Strict):
    """Settings of ``build-report``."""

    bootstrap_samples: int = Field(default=1000, ge=0)
    # Smaller language slices give meaningless AUCs, so they are left out of the breakdown.
    min_slice_rows: int = Field(default=20, gt=0)
    title: str = "commerce-lm report"


class PublishConfig(_Strict):
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


class RunConfig(_Canonical):
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
