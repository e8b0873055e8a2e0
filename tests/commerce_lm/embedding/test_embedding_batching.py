"""Token-budget batching and padding: every document once, budgets kept, padding minimal."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from commerce_lm.embedding.batching import pad_batch, token_budget_batches


@settings(max_examples=200, deadline=None)
@given(lengths=st.lists(st.integers(1, 300), max_size=200), budget=st.integers(1, 4096))
def test_batches_cover_every_document_once_within_budget(lengths, budget):
    batches = token_budget_batches(lengths, budget)
    seen = np.concatenate(batches) if batches else np.array([], dtype=np.int64)
    assert sorted(seen.tolist()) == list(range(len(lengths)))
    for batch in batches:
        longest = max(lengths[i] for i in batch)
        # Only a document longer than the whole budget may exceed it, alone in its batch.
        assert len(batch) * longest <= budget or len(batch) == 1


def test_batches_are_length_sorted_and_fill_the_budget():
    lengths = [5, 100, 7, 100, 6, 50, 5]
    batches = token_budget_batches(lengths, 200)
    assert [b.tolist() for b in batches] == [[1, 3], [5, 2, 4, 0], [6]]
    # Ties keep input order, so batching is deterministic.
    assert token_budget_batches([3, 3, 3], 3)[0].tolist() == [0]


def test_pad_batch_pads_to_the_longest_member_only():
    ids, mask = pad_batch([[7, 8, 9], [4]], pad_id=1)
    assert ids.tolist() == [[7, 8, 9], [4, 1, 1]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]
