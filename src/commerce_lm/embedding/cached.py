"""Embedding through the store: look every text up, embed only the ones the store lacks.

:func:`plan` digests the texts (one pass over them) and looks the unique digests up;
:meth:`Plan.fill` embeds the missing texts (a second pass, keeping only those), adds them to the
store and completes the plan; :meth:`Plan.rows` then gives the vectors of any range of the input
rows, in input order. A text repeated in the input is looked up and embedded once.

Memory holds one vector per unique text of the input, so a caller that embeds a very large corpus
cuts it into shards first (``embed.num_shards``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from commerce_lm.embedding.encoder import Embedder, EncoderSettings
from commerce_lm.embedding.vector_store import StoreKey, VectorStore, text_digests
from commerce_lm.progress import progress_bar

# Callable returning a fresh pass over the input texts, in chunks, in input order.
Chunks = Callable[[], Iterator[list[str]]]


@dataclass
class Plan:
    """The input's unique texts, which of them the store holds, and (once filled) every vector.

    Attributes:
        store: Where vectors are looked up and added.
        key: The encoder setting.
        unique: Sorted unique digests of the input texts.
        inverse: For each input row, its index in ``unique``.
        found: Which unique digests the store held before :meth:`fill`.
        vectors: ``float32 [len(unique), dim]``; rows of texts still missing are zero.
        reused: Unique texts the store already held.
        embedded: Unique texts embedded by :meth:`fill`.
        embed_seconds: Wall time :meth:`fill` spent embedding and storing them (not loading the model).
    """

    store: VectorStore
    key: StoreKey
    unique: np.ndarray
    inverse: np.ndarray
    found: np.ndarray
    vectors: np.ndarray | None
    reused: int = 0
    embedded: int = 0
    embed_seconds: float = 0.0

    @property
    def missing(self) -> int:
        """Unique texts the store lacks."""
        return int((~self.found).sum())

    def fill(
        self,
        chunks: Chunks,
        embedder: Callable[[], Embedder],
        chunk_docs: int,
        desc: str = "embed",
        on_tokens: Callable[[int, int], None] | None = None,
    ) -> None:
        """Embed the missing texts and add them to the store; afterwards every vector is there.

        Args:
            chunks: The same input as given to :func:`plan`.
            embedder: Builds the encoder; called only when something is missing.
            chunk_docs: Texts per embedding chunk (each is length-sorted and batched on its own).
            desc: The progress bar's label.
            on_tokens: Called with each batch's real and padded token counts.
        """
        if not self.missing and self.vectors is not None:
            return
        model = embedder()  # also for an empty input, whose vectors still need their width
        if self.vectors is None:
            self.vectors = np.zeros((len(self.unique), model.dim), dtype=np.float32)
        began = time.perf_counter()
        batches: list[np.ndarray] = []  # unique indices of each chunk handed to the encoder
        with self.store.writer(self.key, model.dim) as writer, progress_bar(self.missing, desc) as bar:
            for vectors in model.embed_chunks(self._missing_texts(chunks, chunk_docs, batches), bar.update, on_tokens):
                targets = batches.pop(0)
                self.vectors[targets] = vectors
                self.found[targets] = True
                self.embedded += len(targets)
                writer.add(self.unique[targets], vectors)
        self.embed_seconds = time.perf_counter() - began

    def _missing_texts(self, chunks: Chunks, size: int, batches: list[np.ndarray]) -> Iterator[list[str]]:
        """The missing texts, each once, in chunks of ``size``; their unique indices go to ``batches``."""
        wanted = ~self.found
        texts: list[str] = []
        targets: list[int] = []
        for chunk in chunks():
            positions = np.searchsorted(self.unique, text_digests(chunk))
            for text, target in zip(chunk, positions.tolist(), strict=True):
                if wanted[target]:
                    wanted[target] = False
                    texts.append(text)
                    targets.append(target)
            while len(texts) >= size:
                batches.append(np.array(targets[:size]))
                yield texts[:size]
                texts, targets = texts[size:], targets[size:]
        if texts:
            batches.append(np.array(targets))
            yield texts

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Vectors of input rows ``[start, stop)``, in input order."""
        if self.vectors is None or self.missing:
            raise RuntimeError("the plan still misses vectors: call fill() first")
        return self.vectors[self.inverse[start:stop]]


def settings_for(key: StoreKey, token_budget: int) -> EncoderSettings:
    """Encoder settings that make vectors of ``key`` (its pooling, max length and prompt)."""
    return EncoderSettings(max_length=key.max_length, token_budget=token_budget, pooling=key.pooling, prompt=key.prompt)


def plan(store: VectorStore, key: StoreKey, chunks: Chunks) -> Plan:
    """Digest every input text and look the unique ones up in ``store``.

    Args:
        store: The vector store.
        key: The encoder setting (checksum, pooling, max length, prompt).
        chunks: A fresh pass over the input texts, in input order.

    Returns:
        The plan; call :meth:`Plan.fill` when :attr:`Plan.missing` is not zero.
    """
    parts = [text_digests(chunk) for chunk in chunks()]
    digests = np.concatenate(parts) if parts else np.empty(0, dtype="S32")
    unique, inverse = np.unique(digests, return_inverse=True)
    found, vectors = store.lookup(key, unique)
    return Plan(store, key, unique, inverse.reshape(-1), found, vectors, reused=int(found.sum()))
