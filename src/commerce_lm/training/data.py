"""Training data: tokenised splits, a reproducible length-grouped distributed plan, dynamic padding.

The data order is a pure function of ``(seed, epoch, global batch size)``: every optimizer step
takes one *global batch* of ``per_device_batch_size x gradient_accumulation_steps x world_size``
documents, and rank ``r`` at accumulation step ``a`` takes slice ``a * world_size + r`` of it. So

* the order is the same on every rerun (resume skips exactly the steps already done: no batch is
  repeated or skipped), and
* runs with the same global batch see the same global batches whatever the world size, which makes
  1-process and N-process loss trajectories comparable.

Within an epoch, documents are shuffled, then sorted by token length inside windows of
:data:`WINDOW_STEPS` global batches, and the resulting global batches are shuffled again: each
micro-batch holds documents of similar length (little padding) while the batch order stays random.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

# Global batches per length-sorting window: larger removes more padding but makes batches of
# similar length cluster in time; 64 keeps both effects small.
WINDOW_STEPS = 64
# Texts tokenised per call: the fast tokenizer parallelises within a call.
TOKENIZE_CHUNK = 4096


@dataclass
class Split:
    """One tokenised split.

    Attributes:
        ids: Document ids.
        input_ids: Token ids per document (truncated, with special tokens, unpadded).
        labels: Class ids.
        langs: Language codes.
        groups: Each document's group number (documents the domain's ``group_by`` ties together,
            such as a re-listing and its original), ``-1`` for none; empty when the table has none.
    """

    ids: list[str]
    input_ids: list[np.ndarray]
    labels: np.ndarray
    langs: list[str] = field(default_factory=list)
    groups: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def group_order(self) -> tuple[np.ndarray, np.ndarray]:
        """Document indices sorted by group number, and those numbers: each group's members lie together.

        Computed once per split, so a micro-batch finds its documents' groups by binary search.
        """
        order = np.argsort(self.groups, kind="stable")
        return order, self.groups[order]

    @property
    def lengths(self) -> np.ndarray:
        """Token count of each document."""
        return np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self.input_ids))


def tokenize(tokenizer, texts: Sequence[str], max_length: int) -> list[np.ndarray]:  # noqa: ANN001
    """Token ids of each text, truncated to ``max_length``, without padding."""
    out: list[np.ndarray] = []
    for start in range(0, len(texts), TOKENIZE_CHUNK):
        chunk = list(texts[start : start + TOKENIZE_CHUNK])
        encoded = tokenizer(chunk, truncation=True, max_length=max_length, padding=False)
        out.extend(np.asarray(ids, dtype=np.int64) for ids in encoded["input_ids"])
    return out


def make_split(tokenizer, frame, max_length: int, prompt: str = "") -> Split:  # noqa: ANN001 - tokenizer, DataFrame
    """Tokenise a frame with ``id``, ``text``, ``label`` and optional ``lang`` columns.

    Args:
        tokenizer: The model's tokenizer.
        frame: The rows.
        max_length: Tokens kept per document (the prompt's included).
        prompt: Text put before every document (e5's ``passage: ``), so training sees documents as
            extraction will embed them; ``""`` for none.
    """
    langs = frame["lang"].astype(str).tolist() if "lang" in frame else [""] * len(frame)
    texts = (prompt + frame["text"].astype(str)).tolist()
    groups = np.zeros(0, dtype=np.int64)
    if "group" in frame and frame["group"].notna().any():
        groups = np.where(frame["group"].notna(), frame["group"].factorize()[0], -1).astype(np.int64)
    return Split(
        ids=frame["id"].astype(str).tolist(),
        input_ids=tokenize(tokenizer, texts, max_length),
        labels=frame["label"].to_numpy(dtype=np.int64),
        langs=langs,
        groups=groups,
    )


@dataclass
class Plan:
    """Which documents every rank sees at every step.

    Attributes:
        lengths: Token count of each training document.
        seed: Run seed.
        micro_batch: Documents per rank per forward pass.
        accumulation: Forward passes per optimizer step.
        world_size: Number of ranks.
    """

    lengths: np.ndarray
    seed: int
    micro_batch: int
    accumulation: int
    world_size: int
    _epochs: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def global_batch(self) -> int:
        """Documents per optimizer step, over all ranks."""
        return self.micro_batch * self.accumulation * self.world_size

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps in one pass (the last partial global batch is dropped)."""
        return len(self.lengths) // self.global_batch

    def total_steps(self, epochs: float, max_steps: int | None) -> int:
        """Number of optimizer steps for ``epochs`` passes, capped by ``max_steps``.

        Raises:
            ValueError: When the split is smaller than one global batch.
        """
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"{len(self.lengths)} training documents are fewer than one global batch of "
                f"{self.global_batch} (per_device_batch_size x gradient_accumulation_steps x processes)"
            )
        total = max(1, int(np.ceil(epochs * self.steps_per_epoch)))
        return min(total, max_steps) if max_steps else total

    def step_indices(self, step: int) -> np.ndarray:
        """The global batch of optimizer step ``step`` (0-based), sorted by length."""
        epoch, index = divmod(step, self.steps_per_epoch)
        if epoch not in self._epochs:
            # One epoch's order is all a run needs at a time.
            self._epochs.clear()
            self._epochs[epoch] = _epoch_batches(self, epoch)
        return self._epochs[epoch][index]

    def micro_batches(self, step: int, rank: int) -> list[np.ndarray]:
        """The micro-batches rank ``rank`` runs at step ``step``, one per accumulation step."""
        batch = self.step_indices(step)
        return [
            batch[(a * self.world_size + rank) * self.micro_batch : (a * self.world_size + rank + 1) * self.micro_batch]
            for a in range(self.accumulation)
        ]


def _epoch_batches(plan: Plan, epoch: int) -> np.ndarray:
    """All global batches of one epoch, shape ``(steps_per_epoch, global_batch)``."""
    rng = np.random.default_rng([plan.seed, epoch])
    size, steps = plan.global_batch, plan.steps_per_epoch
    order = rng.permutation(len(plan.lengths))[: steps * size]
    lengths = np.asarray(plan.lengths)
    window = size * WINDOW_STEPS
    for start in range(0, len(order), window):
        part = order[start : start + window]
        # Stable sort, so equal lengths keep their shuffled order.
        order[start : start + window] = part[np.argsort(lengths[part], kind="stable")]
    batches = order.reshape(steps, size)
    return batches[rng.permutation(steps)]


def collate(split: Split, indices: Sequence[int], pad_id: int) -> dict[str, object]:
    """Pad a micro-batch to its longest document (dynamic padding).

    Returns:
        ``input_ids``, ``attention_mask``, ``labels`` as torch tensors, and ``tokens``, the count of
        non-padding tokens.
    """
    import torch

    seqs = [split.input_ids[i] for i in indices]
    width = max(len(s) for s in seqs)
    ids = np.full((len(seqs), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(seqs), width), dtype=np.int64)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return {
        "input_ids": torch.from_numpy(ids),
        "attention_mask": torch.from_numpy(mask),
        "labels": torch.from_numpy(split.labels[np.asarray(indices, dtype=np.int64)]),
        "tokens": int(mask.sum()),
    }


def partners(split: Split, indices: Sequence[int], seed: int, step: int) -> np.ndarray:
    """A positive for each document of a micro-batch: another document of its group, or itself.

    The partner is drawn per document from ``(seed, step, document)``, so it does not depend on the
    process count or the micro-batch a document lands in, and a resumed run draws the same ones.
    A document in no group (or alone in its group) is its own partner.
    """
    chosen = np.asarray(indices, dtype=np.int64).copy()
    if not split.groups.size:
        return chosen
    by_group, sorted_groups = split.group_order
    starts = np.searchsorted(sorted_groups, split.groups[chosen], side="left")
    ends = np.searchsorted(sorted_groups, split.groups[chosen], side="right")
    for place, index in enumerate(chosen.tolist()):
        others = by_group[starts[place] : ends[place]]
        others = others[others != index]
        if split.groups[index] >= 0 and others.size:
            chosen[place] = others[np.random.default_rng([seed, step, index]).integers(others.size)]
    return chosen


def partner_batch(split: Split, indices: Sequence[int], pad_id: int, seed: int, step: int) -> dict[str, object]:
    """The :func:`partners` of a micro-batch, padded, and every document's group number (``-1``: none).

    Returns:
        ``partner_input_ids``, ``partner_attention_mask`` and ``groups`` as torch tensors.
    """
    import torch

    padded = collate(split, partners(split, indices, seed, step), pad_id)
    groups = split.groups[np.asarray(indices, dtype=np.int64)] if split.groups.size else np.full(len(indices), -1)
    return {
        "partner_input_ids": padded["input_ids"],
        "partner_attention_mask": padded["attention_mask"],
        "groups": torch.from_numpy(np.asarray(groups, dtype=np.int64)),
    }


def eval_shard(num_docs: int, rank: int, world_size: int) -> tuple[np.ndarray, np.ndarray]:
    """One rank's share of an evaluation split, padded so every rank runs as many batches.

    ZeRO-3 gathers weights collectively in every forward pass, so ranks must run the same number
    of batches; the padding rows repeat real documents and are marked invalid.

    Returns:
        ``(indices, valid)``: document indices and whether each row counts.
    """
    per_rank = -(-num_docs // world_size)
    positions = np.arange(per_rank * world_size)[rank::world_size]
    valid = positions < num_docs
    return np.where(valid, positions, positions % max(num_docs, 1)), valid


def eval_batches(split: Split, indices: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Batches of ``indices`` (positions into it), grouped by length to cut padding."""
    order = np.argsort(split.lengths[indices], kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]
