"""One input record to one candidate row: canonical values, normalised text, or a reason.

A rejected row names the column at fault (``column``), so the user sees both why and where.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from commerce_lm.config import DatasetSpec, DomainSpec, PrepareConfig, SimilaritySpec, TaskSpec
from commerce_lm.data import values

SPLIT_ALIASES = {
    "train": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "test": "test",
}


@dataclass
class Dataset:
    """One dataset of the run config, and what the first pass learns about it."""

    name: str
    kind: str  # domain | task | similarity
    spec: DatasetSpec
    allowed_labels: set[str] | None = None
    # learnt from the whole dataset: label counts, the splits the file uses
    label_counts: dict[Any, int] = field(default_factory=dict)
    file_splits: set[str] = field(default_factory=set)
    scanned: Any = None  # where prepare-data's first pass put its rows (prepare_data.scan.Scanned)

    @property
    def target_column(self) -> str | None:
        """The label column (domain, task) or group column (similarity)."""
        if isinstance(self.spec, DomainSpec | TaskSpec):
            return self.spec.label
        if isinstance(self.spec, SimilaritySpec):
            return self.spec.group
        return None

    def group_columns(self) -> list[str]:
        """Columns whose first non-null value keys the split (a similarity group first)."""
        columns = list(self.spec.group_by)
        if isinstance(self.spec, SimilaritySpec):
            columns.insert(0, self.spec.group)
        return columns

    def columns(self) -> tuple[list[str], list[str]]:
        """``(named, optional)``: columns every file must have, and defaulted ones read if present."""
        spec = self.spec
        named = [spec.id, *spec.text, *([self.target_column] if self.target_column else []), *spec.group_by]
        optional = []
        for key in ("lang", "split"):
            column = getattr(spec, key)
            if column:
                (named if spec.named(key) else optional).append(column)
        named = list(dict.fromkeys(named))
        return named, [c for c in dict.fromkeys(optional) if c not in named]


@dataclass
class Row:
    """A parsed record: its canonical values, or the reason (and column) it is rejected for."""

    id: str
    text: str = ""
    lang: str = "und"
    split: str | None = None
    target: Any = None
    group_key: str | None = None  # the first non-null split-group value, as "column:value"
    reason: str | None = None
    column: str | None = None

    def reject(self, reason: str, column: str | None) -> Row:
        """Mark the row rejected for ``reason`` at ``column``."""
        self.reason, self.column = reason, column
        return self


def _undecodable(ds: Dataset, record: dict[str, Any]) -> tuple[str, str] | None:
    for column, value in record.items():
        if not column.startswith("_") and values.has_undecodable(value):
            return ("undecodable_text" if column in ds.spec.text else "undecodable_value"), column
    return None


def _text(ds: Dataset, record: dict[str, Any], row: Row, prep: PrepareConfig) -> None:
    parts = []
    for column in ds.spec.text:
        value = record.get(column)
        if isinstance(value, list | dict | bytes):
            row.reject("invalid_value", column)
            return
        if value is not None and value == value:
            parts.append(str(value))
    row.text = values.normalize_text("\n".join(parts))
    if values.is_blank(row.text):
        row.reject("empty_text", ds.spec.text[0])
    elif len(row.text) > prep.max_text_chars:
        if prep.overlong == "reject":
            row.reject("text_too_long", ds.spec.text[0])
        else:
            row.text = row.text[: prep.max_text_chars]


def _lang_and_split(ds: Dataset, record: dict[str, Any], row: Row) -> None:
    spec = ds.spec
    lang = record.get(spec.lang) if spec.lang else None
    if not values.is_missing(lang):
        row.lang = values.canonical(lang.strip() if isinstance(lang, str) else lang)
        if row.lang is None or not values.LANGUAGE.fullmatch(row.lang):
            row.reject("invalid_value", spec.lang)
            return
    split = record.get(spec.split) if spec.split else None
    if not values.is_missing(split):
        row.split = SPLIT_ALIASES.get(str(split).strip().lower())
        if row.split is None:
            row.reject("invalid_split", spec.split)


def _target(ds: Dataset, value: Any) -> tuple[Any, str | None]:
    if ds.kind == "task":
        return values.parse_binary_label(value)
    if ds.kind == "domain":
        return values.parse_class_label(value, ds.allowed_labels)
    if values.is_missing(value):
        return None, None  # not in any group: a distractor in the KNN pool
    group = values.canonical(value)
    return (group, None) if group is not None else (None, "invalid_value")


def _group_key(ds: Dataset, record: dict[str, Any]) -> str | None:
    for column in ds.group_columns():
        value = values.canonical(record.get(column))
        if value is not None and not values.is_missing(value):
            return f"{column}:{value}"
    return None


def parse(ds: Dataset, record: dict[str, Any], prep: PrepareConfig) -> Row:
    """Parse one record of ``ds`` (a malformed one is rejected as ``malformed_row``)."""
    if "_malformed" in record:
        return Row("").reject("malformed_row", None)
    bad = _undecodable(ds, record)
    if bad:
        return Row("").reject(*bad)
    row_id, reason = values.canonical_id(record.get(ds.spec.id))
    row = Row(row_id or "")
    if values.is_missing(record.get(ds.spec.id)):
        return row.reject("missing_id", ds.spec.id)
    if reason or not row.id:
        return row.reject(reason or "missing_id", ds.spec.id)
    _text(ds, record, row, prep)
    if row.reason is None:
        _lang_and_split(ds, record, row)
    if row.reason is None:
        row.target, reason = _target(ds, record.get(ds.target_column) if ds.target_column else None)
        if reason:
            row.reject(reason, ds.target_column)
    if row.reason is None:
        row.group_key = _group_key(ds, record)
    return row
