"""Duplicate and conflict rules, the ``sample`` cap and the split, over a dataset's parsed frame.

The frame holds every input row of the dataset in file order (see :mod:`.frame`). The rules are
those of today's row-by-row pass, computed on whole columns:

- a text seen with two different labels rejects all its rows (``conflicting_labels``);
- in file order, a row is kept unless an earlier kept row has its id (``duplicate_row`` with the
  same text, ``duplicate_id`` otherwise) or its text (``duplicate_text``), or the corpus already
  holds its id with another text (``id_conflict_across_datasets``);
- ``sample`` keeps the rows with the smallest seeded keys; the split is a hash of the group or text.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from commerce_lm.config import PrepareConfig
from commerce_lm.data.parse import Dataset
from commerce_lm.steps.prepare_data import keys, rules
from commerce_lm.steps.prepare_data.keys import TextCodes

SPLITS = pa.array(["train", "validation", "test"])  # a split's code is its place here
RULE_REASONS = {"conflicting_labels", "duplicate_row", "duplicate_id", "duplicate_text", "id_conflict_across_datasets"}


def learn(ds: Dataset, frame: pa.Table, texts: TextCodes) -> None:
    """What needs the whole dataset: the splits the file uses, label counts, conflicting texts."""
    ids, distinct_ids = keys.encode(frame["id"].combine_chunks())
    ds.codes = (ids, len(distinct_ids), texts)
    valid = frame["reason"].is_null().to_numpy(zero_copy_only=False)
    ds.file_splits = {s for s in pc.unique(frame.filter(pa.array(valid))["split"]).to_pylist() if s is not None}
    ds.conflicts = np.zeros(texts.count, bool)
    if ds.kind not in ("domain", "task"):
        return
    counts = pc.value_counts(frame["target"].filter(pa.array(valid)).combine_chunks())  # in order of appearance
    ds.label_counts = dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True))
    targets, distinct_targets = keys.encode(frame["target"].combine_chunks())
    n_targets = len(distinct_targets)
    pairs = np.unique(texts.codes[valid] * n_targets + targets[valid])  # each (text, label) once
    ds.conflicts = np.bincount(pairs // n_targets, minlength=texts.count) > 1


def first_kept(ids: np.ndarray, texts: np.ndarray, n_ids: int, n_texts: int) -> np.ndarray:
    """Which rows are kept when, in order, a row is kept unless a kept row came first with its id or text.

    Each round keeps the rows that come first among the undecided ones for both their id and their
    text (the earliest undecided row always does), then drops those sharing an id or a text with
    them; the result is that of the row-by-row rule.
    """
    kept = np.zeros(len(ids), bool)
    undecided = np.arange(len(ids))
    id_taken, text_taken = np.zeros(n_ids, bool), np.zeros(n_texts, bool)
    while undecided.size:
        first = np.zeros(undecided.size, bool)
        first[np.unique(ids[undecided], return_index=True)[1]] = True
        first_text = np.zeros(undecided.size, bool)
        first_text[np.unique(texts[undecided], return_index=True)[1]] = True
        now = undecided[first & first_text]
        kept[now] = True
        id_taken[ids[now]] = True
        text_taken[texts[now]] = True
        undecided = undecided[~kept[undecided] & ~id_taken[ids[undecided]] & ~text_taken[texts[undecided]]]
    return kept


def _corpus_conflicts(ds: Dataset, frame: pa.Table, corpus: pa.Table) -> np.ndarray:
    """Rows whose id the corpus (earlier task and similarity datasets) holds with another text."""
    if ds.kind == "domain" or corpus.num_rows == 0:
        return np.zeros(frame.num_rows, bool)
    at = pc.index_in(frame["id"], corpus["id"])
    theirs = pc.take(corpus["text"], at)
    return pc.fill_null(pc.not_equal(theirs, frame["text"]), False).to_numpy(zero_copy_only=False)


def duplicates(ds: Dataset, frame: pa.Table, corpus: pa.Table) -> tuple[list[Any], np.ndarray]:
    """Every row's reason after the duplicate and conflict rules (None: kept), and the kept mask."""
    n = frame.num_rows
    reasons = np.array(frame["reason"].to_pylist(), dtype=object)
    valid = np.equal(reasons, None)
    ids, n_ids, text_codes = ds.codes
    texts, n_texts = text_codes.codes, text_codes.count
    conflict = valid & ds.conflicts[texts]
    reasons[conflict] = "conflicting_labels"
    candidate = valid & ~conflict
    against_corpus = candidate & _corpus_conflicts(ds, frame, corpus)
    eligible = np.flatnonzero(candidate & ~against_corpus)
    kept = np.zeros(n, bool)
    kept[eligible[first_kept(ids[eligible], texts[eligible], n_ids, n_texts)]] = True
    position = np.arange(n)
    id_at, id_text = np.full(n_ids, n), np.full(n_ids, -1)
    id_at[ids[kept]], id_text[ids[kept]] = position[kept], texts[kept]
    text_at = np.full(n_texts, n)
    text_at[texts[kept]] = position[kept]
    later = candidate & ~kept
    same_id, same_text = later & (id_at[ids] < position), later & (text_at[texts] < position)
    reasons[same_id] = np.where(id_text[ids[same_id]] == texts[same_id], "duplicate_row", "duplicate_id")
    reasons[same_text & ~same_id] = "duplicate_text"
    reasons[later & ~same_id & ~same_text] = "id_conflict_across_datasets"
    return list(reasons), kept


def sampled(ds: Dataset, frame: pa.Table, kept: np.ndarray, seed: int) -> np.ndarray:
    """Of the kept rows, those the ``sample`` cap keeps: the smallest ``(key, id)`` ones."""
    cap = ds.spec.sample
    rows = np.flatnonzero(kept)
    if not cap or len(rows) <= cap:
        return kept
    ids = frame["id"].take(pa.array(rows)).to_pylist()
    order = sorted(range(len(rows)), key=lambda i: (rules.sample_key(seed, ids[i]), ids[i]))
    chosen = np.zeros_like(kept)
    chosen[rows[order[:cap]]] = True
    return chosen


def assign(ds: Dataset, accepted: pa.Table, rows: np.ndarray, prep: PrepareConfig, memo: dict[str, float]) -> pa.Array:
    """The split of each accepted row: the file's, or a hash of its group or text.

    As ``splits.assign_split`` and ``splits.carve_validation`` give it; ``rows`` are the accepted
    rows' places in the frame (where their text codes are).
    """
    texts: TextCodes = ds.codes[2]
    own = pc.index_in(accepted["split"], SPLITS).fill_null(-1).to_numpy()  # the file's split, -1: none
    groups = accepted["group_key"].combine_chunks()
    grouped = groups.is_valid().to_numpy(zero_copy_only=False)
    unique = pc.unique(groups.drop_null())
    by_group = np.append(_units(memo, unique.to_pylist()), np.nan)
    u = by_group[pc.index_in(groups, unique).fill_null(len(unique)).to_numpy()]
    u[~grouped] = texts.units(rows[~grouped])
    test, val = prep.test_fraction, prep.validation_fraction
    split = np.where(own >= 0, own, np.where(u < test, 2, np.where(u < test + val, 1, 0)))
    if "validation" not in ds.file_splits:  # carve a validation share out of the file's train rows
        train = np.flatnonzero(own == 0)
        split_keys = groups.take(pa.array(train, pa.int64())).to_numpy(zero_copy_only=False).astype(object)
        by_text = ~grouped[train]
        split_keys[by_text] = texts.keys(rows[train[by_text]])
        carved = _units(memo, [f"val:{key}" for key in split_keys]) < val
        split[train[carved]] = 1
    return SPLITS.take(pa.array(split, pa.int8()))


def _units(memo: dict[str, float], split_keys: list[str]) -> np.ndarray:
    """``unit_hash`` of every key, each hashed once per run (``memo`` is shared by datasets)."""
    new = [key for key in dict.fromkeys(split_keys) if key not in memo]
    memo.update(zip(new, keys.unit_hashes(new).tolist(), strict=True))
    return np.array([memo[key] for key in split_keys], np.float64)
