"""Duplicate and conflict rules, the exact ``sample`` cap, and the split of an accepted row.

The rules keep 64-bit digests, not strings, per row: at 10M rows the chance of any collision is
about 3e-6 (:func:`commerce_lm.data.splits.hash64`).
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterator

from commerce_lm.config import PrepareConfig
from commerce_lm.data import splits
from commerce_lm.steps.prepare_data import decide
from tests.commerce_lm.steps.prepare_data.prepare_reference.parse import Dataset, Row

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


class CorpusSplits:
    """The corpus-wide split keys (the library's ``prepare_data.groups``), row by row with a union-find.

    Every view's groups are joined through the texts they share; a component's key is its group of
    smallest digest. Per text, the first split each view's file gives, and whether two views differ.
    """

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}  # group key -> a group of its component (itself at the root)
        self.group_of: dict[str, str] = {}  # text key -> one of its groups
        self.seen: set[tuple[int, str]] = set()  # (view, text key) of the texts a view's file gave a split
        self.splits: dict[str, set[str]] = {}  # text key -> the first split each view gives it

    def _root(self, group: str) -> str:
        while self.parent.setdefault(group, group) != group:
            group = self.parent[group]
        return group

    def add(self, view: int, row: Row) -> None:
        """Learn a valid row of a view."""
        key = splits.text_key(row.text)
        if row.split and (view, key) not in self.seen:
            self.seen.add((view, key))
            self.splits.setdefault(key, set()).add(row.split)
        if row.group_key:
            joined = (self._root(row.group_key), self._root(self.group_of.setdefault(key, row.group_key)))
            low, high = sorted(joined, key=_digest)
            self.parent[high] = low

    def key(self, row: Row) -> str:
        """A row's split key: its text's component's smallest group, or its text key."""
        key = splits.text_key(row.text)
        return self._root(self.group_of[key]) if key in self.group_of else key

    def given(self, row: Row) -> set[str]:
        """The splits the views' files give a row's text."""
        return set(self.splits.get(splits.text_key(row.text), ()))


def _digest(group: str) -> bytes:
    return hashlib.sha256(group.encode("utf-8", "surrogatepass")).digest()[:16]


class Deduplicator:
    """Decides, in file order, whether a valid row repeats or contradicts an earlier one.

    Args:
        ds: The dataset, after its first pass.
        corpus_keys: id digest -> text digest of every corpus document of earlier datasets.
        corpus_splits: The views' splits.
    """

    def __init__(self, ds: Dataset, corpus_keys: dict[int, int], corpus_splits: CorpusSplits) -> None:
        self.ds, self.corpus_keys, self.corpus_splits = ds, corpus_keys, corpus_splits
        self.seen_ids: dict[int, int] = {}  # id digest -> text digest
        self.seen_texts: set[int] = set()

    def check(self, row: Row) -> tuple[int, int]:
        """Reject ``row`` when it is a duplicate or conflict; returns its (id, text) digests."""
        key, id_key = splits.hash64(splits.key_form(row.text)), splits.hash64(row.id)
        reason = "conflicting_splits" if len(self.corpus_splits.given(row)) > 1 else None
        reason = self._reason(key, id_key, reason)
        if reason:
            row.reject(reason, decide.rule_column(self.ds, reason))
        else:
            self.seen_ids[id_key] = key
            self.seen_texts.add(key)
        return id_key, key

    def _reason(self, key: int, id_key: int, split_conflict: str | None) -> str | None:
        if self.ds.kind in ("domain", "task") and self.ds.labels_by_text.get(key) is CONFLICT:
            return "conflicting_labels"
        if split_conflict:
            return split_conflict
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


def assign(ds: Dataset, row: Row, prep: PrepareConfig, corpus_splits: CorpusSplits) -> str:
    """The split of an accepted row: the file's, another file's for its text, or a hash of its corpus group or text."""
    key = corpus_splits.key(row)
    if row.split is None:
        given = corpus_splits.given(row)
        return given.pop() if given else splits.assign_split(key, prep.validation_fraction, prep.test_fraction)
    if row.split == "train" and "validation" not in ds.file_splits:
        return splits.carve_validation(key, prep.validation_fraction)
    return row.split
