"""``prepare-data``: validate, normalise, de-duplicate and split every dataset a run names.

Each dataset is streamed twice in record batches (memory does not grow with the corpus): the
first pass learns what needs the whole file (label sets, texts with conflicting labels, whether
the file has a validation split), the second writes accepted rows and rejected rows with their
reason. Every input row ends up accepted, rejected or (for budgeted runs) sampled out, and
``stats.json`` counts all three.
"""

from __future__ import annotations

import html
import json
import re
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from commerce_lm import names, readers, splits, storage
from commerce_lm.config import DatasetSpec, DomainSpec, PrepareSection, SimilaritySpec, TaskSpec

TAG = re.compile(r"<[^>]{0,200}>")
SPACE = re.compile(r"\s+")
TRUE_VALUES = {"1", "true", "yes", "y", "t"}
FALSE_VALUES = {"0", "false", "no", "n", "f"}
SPLIT_ALIASES = {
    "train": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "test": "test",
}

ACCEPTED_SCHEMA = {
    "domain": pa.schema(
        [
            ("id", pa.string()),
            ("text", pa.string()),
            ("lang", pa.string()),
            ("split", pa.string()),
            ("label", pa.int64()),
        ]
    ),
    "task": pa.schema(
        [
            ("id", pa.string()),
            ("text", pa.string()),
            ("lang", pa.string()),
            ("split", pa.string()),
            ("label", pa.int64()),
        ]
    ),
    "similarity": pa.schema(
        [
            ("id", pa.string()),
            ("text", pa.string()),
            ("lang", pa.string()),
            ("split", pa.string()),
            ("group", pa.string()),
        ]
    ),
}
REJECTED_SCHEMA = pa.schema(
    [("file", pa.string()), ("row", pa.int64()), ("reason", pa.string()), ("input", pa.string())]
)
CORPUS_SCHEMA = pa.schema([("id", pa.string()), ("text", pa.string()), ("lang", pa.string()), ("split", pa.string())])


CONFLICT = object()  # marks a text seen with two different labels


class DataError(ValueError):
    """Data that must not reach training; the message names the dataset, file and what is wrong."""


def normalize_text(text: str) -> str:
    """Unescape HTML entities, drop tag remnants, NFKC-normalise and collapse whitespace."""
    text = TAG.sub(" ", html.unescape(text))
    return SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip()


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def parse_binary_label(value: Any) -> tuple[int | None, str | None]:
    """A 0/1 label from a cell, or a rejection reason.

    Returns:
        ``(label, None)`` or ``(None, reason)`` with reason ``null_label``, ``unknown_label`` (a
        number other than 0 and 1) or ``invalid_label_type`` (anything that is not a number or a
        boolean word).
    """
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return None, "null_label"
    if isinstance(value, bool):
        return int(value), None
    if isinstance(value, int | float):
        return (int(value), None) if value in (0, 1) else (None, "unknown_label")
    if isinstance(value, str):
        word = value.strip().lower()
        if not word:
            return None, "null_label"
        if word in TRUE_VALUES:
            return 1, None
        if word in FALSE_VALUES:
            return 0, None
        try:
            number = float(word)
        except ValueError:
            return None, "invalid_label_type"
        return (int(number), None) if number in (0, 1) else (None, "unknown_label")
    return None, "invalid_label_type"


def parse_class_label(value: Any, allowed: set[str] | None) -> tuple[str | None, str | None]:
    """A multi-class label as a string, or a rejection reason.

    Reasons: ``null_label``, ``unknown_label`` (not in ``allowed``), ``invalid_label_type``.
    """
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return None, "null_label"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, str | int | bool):
        return None, "invalid_label_type"
    label = str(value).strip()
    if not label:
        return None, "null_label"
    if allowed is not None and label not in allowed:
        return None, "unknown_label"
    return label, None


@dataclass
class _Row:
    id: str
    text: str
    lang: str
    split: str | None
    target: Any
    group_key: str | None = None  # the first non-null split-group value, as "column:value"
    reason: str | None = None


@dataclass
class _Dataset:
    name: str
    kind: str  # domain | task | similarity
    spec: DatasetSpec
    # learnt in the first pass
    # text digest -> its label, or CONFLICT; digests rather than strings keep memory per row small
    labels_by_text: dict[int, Any] = field(default_factory=dict)
    label_counts: Counter = field(default_factory=Counter)
    file_splits: set[str] = field(default_factory=set)
    valid_rows: int = 0
    input_rows: int = 0

    @property
    def target_column(self) -> str | None:
        if isinstance(self.spec, DomainSpec | TaskSpec):
            return self.spec.label
        if isinstance(self.spec, SimilaritySpec):
            return self.spec.group
        return None


class Preparer:
    """Runs both passes over each dataset and writes the prepared folder."""

    def __init__(self, cfg: PrepareSection, stage: Path) -> None:
        """Prepare into the staging folder ``stage``."""
        self.cfg = cfg
        self.stage = stage
        self.corpus_keys: dict[int, int] = {}  # id digest -> text digest of every corpus document
        self.corpus_writer = _Writer(stage / names.CORPUS_TABLE, CORPUS_SCHEMA)
        self.stats: dict[str, Any] = {}
        self.domain_labels: list[str] = []

    # ---- reading -------------------------------------------------------------------------
    def _columns(self, ds: _Dataset) -> tuple[list[str], list[str]]:
        spec = ds.spec
        required = [spec.id, *spec.text]
        if ds.target_column:
            required.append(ds.target_column)
        optional = [c for c in (spec.lang, spec.split, *spec.group_by) if c]
        return list(dict.fromkeys(required)), [c for c in dict.fromkeys(optional) if c not in required]

    def _rows(self, ds: _Dataset) -> Any:
        required, optional = self._columns(ds)
        for path, frame in readers.iter_batches(ds.spec.data, required, optional, self.cfg.prepare.batch_rows):
            for record in frame.to_dict("records"):
                yield path, record, self._parse(ds, record)

    def _parse(self, ds: _Dataset, record: dict[str, Any]) -> _Row:
        spec, prep = ds.spec, self.cfg.prepare
        raw_id = record.get(spec.id)
        row_id = "" if raw_id is None or raw_id != raw_id else str(raw_id).strip()
        parts = [str(record[c]) for c in spec.text if record.get(c) is not None and record.get(c) == record.get(c)]
        raw_text = "\n".join(parts)
        lang = str(record.get(spec.lang) or "und") if spec.lang else "und"
        split = record.get(spec.split) if spec.split else None
        row = _Row(row_id, "", lang, None, None)
        if not row_id:
            row.reason = "missing_id"
        elif _has_surrogates(raw_text):
            row.reason = "undecodable_text"
        else:
            row.text = normalize_text(raw_text)
            if not row.text:
                row.reason = "empty_text"
            elif len(row.text) > prep.max_text_chars:
                if prep.overlong == "reject":
                    row.reason = "text_too_long"
                else:
                    row.text = row.text[: prep.max_text_chars]
        if row.reason is None and split is not None and split == split:
            row.split = SPLIT_ALIASES.get(str(split).strip().lower())
            if row.split is None:
                row.reason = "invalid_split"
        if row.reason is None:
            row.target, row.reason = self._target(ds, record.get(ds.target_column) if ds.target_column else None)
        row.group_key = next(
            (
                f"{c}:{record[c]}"
                for c in self._group_columns(ds)
                if record.get(c) is not None and record.get(c) == record.get(c)
            ),
            None,
        )
        return row

    def _group_columns(self, ds: _Dataset) -> list[str]:
        columns = list(ds.spec.group_by)
        if isinstance(ds.spec, SimilaritySpec):
            columns.insert(0, ds.spec.group)
        return columns

    def _target(self, ds: _Dataset, value: Any) -> tuple[Any, str | None]:
        if ds.kind == "task":
            return parse_binary_label(value)
        if ds.kind == "domain":
            allowed = set(ds.spec.labels) if ds.spec.labels else None
            return parse_class_label(value, allowed)
        if value is None or value != value:
            return None, None  # not in any group: a distractor in the KNN pool
        return str(value), None

    # ---- passes --------------------------------------------------------------------------
    def scan(self, ds: _Dataset) -> None:
        """First pass: label sets per text, label counts, the splits the file uses."""
        for _, _, row in tqdm(self._rows(ds), desc=f"scan {ds.name}", unit=" rows", mininterval=5, leave=False):
            ds.input_rows += 1
            if row.reason is not None:
                continue
            ds.valid_rows += 1
            if row.split:
                ds.file_splits.add(row.split)
            if ds.kind in ("domain", "task"):
                key = splits.hash64(row.text)
                if ds.labels_by_text.setdefault(key, row.target) != row.target:
                    ds.labels_by_text[key] = CONFLICT
                ds.label_counts[row.target] += 1

    def write(self, ds: _Dataset, table_path: Path) -> dict[str, Any]:
        """Second pass: decide every row, write accepted and rejected rows, count them."""
        sample = ds.spec.sample
        keep_share = 1.0 if not sample or ds.valid_rows <= sample else sample / ds.valid_rows
        accepted = _Writer(table_path, ACCEPTED_SCHEMA[ds.kind])
        rejected = _Writer(self.stage / names.REJECTED_DIR / f"{ds.name}.parquet", REJECTED_SCHEMA)
        seen_ids: dict[int, int] = {}  # id digest -> text digest
        seen_texts: set[int] = set()
        reasons: Counter = Counter()
        splits_count: Counter = Counter()
        sampled_out = 0
        for path, record, row in self._rows(ds):
            key = splits.hash64(row.text) if row.reason is None else 0
            id_key = splits.hash64(row.id)
            if row.reason is None:
                row.reason = self._row_conflict(ds, key, id_key, seen_ids, seen_texts)
            if row.reason is not None:
                reasons[row.reason] += 1
                rejected.add(_rejected_record(record, row, path))
                continue
            seen_ids[id_key] = key
            seen_texts.add(key)
            if keep_share < 1.0 and splits.unit_hash(f"sample:{self.cfg.seed}:{row.id}") >= keep_share:
                sampled_out += 1
                continue
            row.split = self._split(ds, row)
            splits_count[row.split] += 1
            target = self.domain_labels.index(row.target) if ds.kind == "domain" else row.target
            accepted.add(
                {
                    "id": row.id,
                    "text": row.text,
                    "lang": row.lang,
                    "split": row.split,
                    ("group" if ds.kind == "similarity" else "label"): target,
                }
            )
            if ds.kind != "domain" and id_key not in self.corpus_keys:
                self.corpus_keys[id_key] = key
                self.corpus_writer.add({"id": row.id, "text": row.text, "lang": row.lang, "split": row.split})
        accepted.close()
        rejected.close()
        n_rejected = sum(reasons.values())
        return {
            "input_rows": ds.input_rows,
            "accepted_rows": sum(splits_count.values()),
            "rejected_rows": n_rejected,
            "sampled_out_rows": sampled_out,
            "rejected_by_reason": dict(sorted(reasons.items())),
            "accepted_by_split": dict(splits_count),
            "source": ds.spec.data,
        }

    def _row_conflict(
        self, ds: _Dataset, key: int, id_key: int, seen_ids: dict[int, int], seen_texts: set[int]
    ) -> str | None:
        if ds.kind in ("domain", "task") and ds.labels_by_text.get(key) is CONFLICT:
            return "conflicting_labels"
        if id_key in seen_ids:
            return "duplicate_row" if seen_ids[id_key] == key else "duplicate_id"
        if key in seen_texts:
            return "duplicate_text"
        if ds.kind != "domain" and self.corpus_keys.get(id_key, key) != key:
            return "id_conflict_across_datasets"
        return None

    def _split(self, ds: _Dataset, row: _Row) -> str:
        prep = self.cfg.prepare
        if row.split is None:
            return splits.assign_split(self._split_key(row), prep.validation_fraction, prep.test_fraction)
        if row.split == "train" and "validation" not in ds.file_splits:
            return splits.carve_validation(self._split_key(row), prep.validation_fraction)
        return row.split

    @staticmethod
    def _split_key(row: _Row) -> str:
        """A row's group, or its text digest: related rows and duplicates share a split."""
        return row.group_key or splits.text_key(row.text)


class _Writer:
    """Appends rows to a Parquet file in row groups, so nothing is held for the whole corpus."""

    def __init__(self, path: Path, schema: pa.Schema, rows_per_group: int = 50_000) -> None:
        self.path, self.schema, self.rows_per_group = path, schema, rows_per_group
        self.buffer: list[dict[str, Any]] = []
        self.writer: pq.ParquetWriter | None = None

    def add(self, row: dict[str, Any]) -> None:
        self.buffer.append(row)
        if len(self.buffer) >= self.rows_per_group:
            self._flush()

    def _flush(self) -> None:
        if not self.buffer:
            return
        table = pa.Table.from_pylist(self.buffer, schema=self.schema)
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(self.path, self.schema)
        self.writer.write_table(table)
        self.buffer = []

    def close(self) -> None:
        self._flush()
        if self.writer is not None:
            self.writer.close()
        else:  # an empty table still has its columns
            self.path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(self.schema.empty_table(), self.path)


def _printable(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, str):  # undecodable bytes survive as visible escapes
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return value if isinstance(value, int | float | bool) else str(value)


def _rejected_record(record: dict[str, Any], row: _Row, path: str) -> dict[str, Any]:
    """The input row as it was (JSON), where it came from, and why it was rejected."""
    kept = {k: _printable(v) for k, v in record.items() if k != "_row"}
    return {
        "file": path,
        "row": int(record["_row"]),
        "reason": row.reason,
        "input": json.dumps(kept, ensure_ascii=False, default=str),
    }


def _datasets(cfg: PrepareSection) -> list[_Dataset]:
    return [
        *([_Dataset("domain", "domain", cfg.domain)] if cfg.domain else []),
        *(_Dataset(f"task-{t.name}", "task", t) for t in cfg.tasks),
        *(_Dataset(f"similarity-{s.name}", "similarity", s) for s in cfg.similarity),
    ]


def _table_path(stage: Path, ds: _Dataset) -> Path:
    if ds.kind == "domain":
        return stage / names.DOMAIN_TABLE
    folder = names.TASKS_DIR if ds.kind == "task" else names.SIMILARITY_DIR
    return stage / folder / f"{ds.spec.name}.parquet"


def _check_trainable(cfg: PrepareSection, stage: Path, stats: dict[str, Any], labels: list[str]) -> None:
    """Fail before anything trains on data that cannot give a meaningful result."""
    problems = []
    for name, counts in stats.items():
        if counts["input_rows"] and counts["rejected_rows"] / counts["input_rows"] > cfg.prepare.max_rejected_fraction:
            problems.append(
                f"{name} ({counts['source']}): {counts['rejected_rows']} of {counts['input_rows']} rows "
                f"rejected, over max_rejected_fraction={cfg.prepare.max_rejected_fraction}: "
                f"{counts['rejected_by_reason']}"
            )
    domain = pd.read_parquet(stage / names.DOMAIN_TABLE, columns=["split", "label"]) if cfg.domain else None
    train_counts = Counter(domain.loc[domain.split == "train", "label"]) if cfg.domain else Counter()
    empty = [labels[i] for i in range(len(labels)) if train_counts[i] == 0]
    if empty:
        problems.append(
            f"domain ({cfg.domain.data}), column {cfg.domain.label!r}: label(s) {empty} have no training examples"
        )
    for task in cfg.tasks:
        table = pd.read_parquet(stage / names.TASKS_DIR / f"{task.name}.parquet", columns=["split", "label"])
        for split in ("train", "test"):
            classes = sorted(set(table.loc[table.split == split, "label"]))
            if len(classes) < 2:
                problems.append(
                    f"task {task.name} ({task.data}), column {task.label!r}: the {split} split has "
                    f"{'no rows' if not classes else f'a single class {classes[0]}'}; need both 0 and 1"
                )
    if problems:
        raise DataError("prepare-data refused the input:\n  " + "\n  ".join(problems))


def run(cfg: PrepareSection, out_dir: str) -> dict[str, Any]:
    """Prepare every dataset of ``cfg`` into ``out_dir``.

    Args:
        cfg: The datasets to prepare: the domain, tasks and similarity sets, or any part of them.
        out_dir: The prepared folder (local or ``gs://``), published atomically.

    Returns:
        The step's metrics: rows accepted and rejected per dataset.

    Raises:
        readers.InputError: For a file that cannot be read as a whole (names file and column).
        DataError: When the data must not reach training (names dataset, file and column).
    """
    started = time.perf_counter()
    with storage.staged_dir(out_dir) as stage:
        preparer = Preparer(cfg, stage)
        for ds in _datasets(cfg):
            preparer.scan(ds)
            if ds.kind == "domain":
                preparer.domain_labels = list(cfg.domain.labels or sorted(ds.label_counts, key=_label_order))
            preparer.stats[ds.name] = preparer.write(ds, _table_path(stage, ds))
        preparer.corpus_writer.close()
        stats = preparer.stats
        if cfg.domain:  # a run may prepare its parts apart (see config.prepare_part)
            storage.write_json(stage / names.LABELS_JSON, preparer.domain_labels)
        storage.write_json(stage / names.STATS_JSON, stats)
        try:
            _check_trainable(cfg, stage, stats, preparer.domain_labels)
        except DataError:
            _keep_for_inspection(stage, out_dir)
            raise
        metrics = {
            "seconds": time.perf_counter() - started,
            "corpus_rows": len(preparer.corpus_keys),
            "accepted_rows": sum(s["accepted_rows"] for s in stats.values()),
            "rejected_rows": sum(s["rejected_rows"] for s in stats.values()),
            "input_rows": sum(s["input_rows"] for s in stats.values()),
        }
        storage.write_json(stage / names.METRICS_JSON, metrics)
        storage.write_json(stage / names.CONFIG_JSON, cfg.model_dump(mode="json"))
    return metrics


def _label_order(label: str) -> tuple[int, float | str]:
    """Numeric labels (star ratings) in numeric order, others alphabetically."""
    try:
        return 0, float(label)
    except ValueError:
        return 1, label


def _keep_for_inspection(stage: Path, out_dir: str) -> None:
    """A refused run still keeps its rejected rows and stats, beside (never as) the output."""
    target = f"{str(out_dir).rstrip('/')}.refused"
    with storage.staged_dir(target) as keep:
        for path in [stage / names.STATS_JSON, *sorted((stage / names.REJECTED_DIR).glob("*.parquet"))]:
            storage.write_bytes(keep / path.relative_to(stage), path.read_bytes())
