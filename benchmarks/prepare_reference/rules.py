"""Duplicate and conflict rules, the exact ``sample`` cap, and the split of an accepted row.

The rules keep 64-bit digests, not strings, per row: at 10M rows the chance of any collision is
about 3e-6 (:func:`commerce_lm.data.splits.hash64`).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

from commerce_lm.config import PrepareConfig
from commerce_lm.data import splits
from prepare_reference.parse import Dataset, Row

CONFLICT = object()  # marks a text seen with two different labels


def learn(ds: Dataset, row: Row) -> None:
    """First pass: the label set of each text, label counts, the splits the file uses."""
    if row.split:
        ds.file_splits.add(row.split)
    if ds.kind in ("domain", "task"):
        key = splits.hash64(splits.key_form(row.text))
        if ds.labels_by_text.setdefault(key, row.target) != row.target:
            ds.labels_by_text[key] = CONFLICT
        ds.label_counts[row.target] = ds.label_counts.get(row.target, 0) + 1


class Deduplicator:
    """Decides, in file order, whether a valid row repeats or contradicts an earlier one.

    Args:
        ds: The dataset, after its first pass.
        corpus_keys: id digest -> text digest of every corpus document of earlier datasets.
    """

    def __init__(self, ds: Dataset, corpus_keys: dict[int, int]) -> None:
        self.ds, self.corpus_keys = ds, corpus_keys
        self.seen_ids: dict[int, int] = {}  # id digest -> text digest
        self.seen_texts: set[int] = set()

    def check(self, row: Row) -> tuple[int, int]:
        """Reject ``row`` when it is a duplicate or conflict; returns its (id, text) digests."""
        key, id_key = splits.hash64(splits.key_form(row.text)), splits.hash64(row.id)
        reason = self._reason(key, id_key)
        if reason:
            row.reject(reason, self.ds.spec.id if "id" in reason else self.ds.spec.text[0])
        else:
            self.seen_ids[id_key] = key
            self.seen_texts.add(key)
        return id_key, key

    def _reason(self, key: int, id_key: int) -> str | None:
        if self.ds.kind in ("domain", "task") and self.ds.labels_by_text.get(key) is CONFLICT:
            return "conflicting_labels"
        if id_key in self.seen_ids:
            return "duplicate_row" if self.seen_ids[id_key] == key else "duplicate_id"
        if key in self.seen_texts:
            return "duplicate_text"
        if self.ds.kind != "domain" and self.corpus_keys.get(id_key, key) != key:
            return "id_conflict_across_datasets"
        return None


def sample_key(seed: int, row_id: str) -> float:
    """A row's place in the seeded sample order (smallest first)."""
    return splits.unit_hash(f"sample:{seed}:{row_id}")


def sample_cutoff(rows: Iterator[Row], sample: int, seed: int) -> tuple[float, str] | None:
    """The largest ``(key, id)`` a row may have to be among the ``sample`` kept rows.

    Args:
        rows: Every row that passes all rules, in file order (ids are unique among them).
        sample: The cap.
        seed: The run seed.

    Returns:
        The cutoff, or None when no more than ``sample`` rows pass (all are kept).
    """
    heap: list[tuple[float, str]] = []  # max-heap of the smallest keys, negated
    count = 0
    for row in rows:
        count += 1
        item = (-sample_key(seed, row.id), row.id)
        if len(heap) < sample:
            heapq.heappush(heap, item)
        elif item > heap[0]:
            heapq.heapreplace(heap, item)
    if count <= sample:
        return None
    largest = heap[0]
    return -largest[0], largest[1]


def assign(ds: Dataset, row: Row, prep: PrepareConfig) -> str:
    """The split of an accepted row: the file's, or a deterministic hash of its group or text."""
    if row.split is None:
        return splits.assign_split(_split_key(row), prep.validation_fraction, prep.test_fraction)
    if row.split == "train" and "validation" not in ds.file_splits:
        return splits.carve_validation(_split_key(row), prep.validation_fraction)
    return row.split


def _split_key(row: Row) -> str:
    """A row's group, or its text digest: related rows and duplicates share a split."""
    return row.group_key or splits.text_key(row.text)
