"""The vector store's segments: their Parquet layout and content checksum, and the writer that publishes them.

A segment is an immutable Parquet file of (``digest``, ``vector``) rows whose metadata names its key
(:class:`StoreKey`: what a vector depends on besides its text) and carries a SHA-256 of its content. The
writer buffers vectors and publishes each segment in one step (see :mod:`commerce_lm.embedding.vector_store`).
"""

from __future__ import annotations

import hashlib
import io
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from commerce_lm import storage

FORMAT = "commerce-lm-vector-store/1"
# A segment holds about this many bytes of vectors: large enough that a 10M-document corpus is a few
# hundred files, small enough that a writer killed mid-corpus loses little finished work.
SEGMENT_BYTES = 64 * 1024 * 1024
# Hidden temporary files older than this come from killed writers; any writer may delete them.
STALE_SECONDS = 3600
DIGEST_DTYPE = "S32"  # hex of 128 bits of SHA-256: no collision at any corpus size we will see
CONTENT_KEY = b"content_sha256"  # segment metadata: the checksum of its digests and vectors


@dataclass(frozen=True)
class StoreKey:
    """What a vector depends on besides its text.

    Attributes:
        encoder_checksum: :func:`commerce_lm.models.model_checksum` of the encoder.
        pooling: ``cls`` or ``mean``.
        max_length: Tokens kept per text (longer texts are truncated before embedding).
        prompt: Text put before every text (e5's ``passage: ``); ``""`` for none.
    """

    encoder_checksum: str
    pooling: str
    max_length: int
    prompt: str = ""

    def folder(self) -> str:
        """The key's folder below the store root (without a prompt, the folder of stores made before prompts)."""
        setting = f"{self.pooling}-{self.max_length}"
        if self.prompt:
            setting += f"-prompt-{hashlib.sha256(self.prompt.encode()).hexdigest()[:16]}"
        return f"{self.encoder_checksum}/{setting}"

    def metadata(self, dim: int) -> dict[bytes, bytes]:
        """Parquet metadata that makes a segment say which key it belongs to."""
        values = {"format": FORMAT, "dim": str(dim), **{k: str(v) for k, v in self.__dict__.items()}}
        return {k.encode(): v.encode() for k, v in values.items()}


def content_checksum(digests: np.ndarray, vectors: np.ndarray) -> str:
    """The SHA-256 of a segment's digests (``S32``) and ``float32`` vectors, as stored in its metadata."""
    digest = hashlib.sha256(np.ascontiguousarray(digests, dtype=DIGEST_DTYPE).tobytes())
    digest.update(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
    return digest.hexdigest()


def segment_table(digests: np.ndarray, vectors: np.ndarray, key: StoreKey) -> pa.Table:
    """A segment of ``digests`` and their ``vectors``, its metadata naming ``key`` and the content's checksum."""
    dim = vectors.shape[1]
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    metadata = {**key.metadata(dim), CONTENT_KEY: content_checksum(digests, vectors).encode()}
    schema = pa.schema([("digest", pa.string()), ("vector", pa.list_(pa.float32(), dim))], metadata=metadata)
    column = pa.FixedSizeListArray.from_arrays(flat, dim)
    return pa.Table.from_arrays([pa.array(digests.astype(str), pa.string()), column], schema=schema)


def read_digests(column: pa.ChunkedArray) -> np.ndarray:
    """A segment's ``digest`` column as ``S32``."""
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=object).astype(DIGEST_DTYPE)


def read_vectors(column: pa.ChunkedArray) -> np.ndarray:
    """A segment's ``vector`` column as ``float32 [rows, dim]``."""
    dim = column.type.list_size
    values = column.combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return values.astype(np.float32, copy=False).reshape(-1, dim)


class SegmentWriter:
    """Buffers new vectors and publishes them as immutable segments of about :data:`SEGMENT_BYTES`.

    On leaving the ``with`` block, normally or by an exception, the finished vectors still buffered
    are published too: each is whole, so nothing already computed is lost.
    """

    def __init__(self, folder: str, key: StoreKey, dim: int) -> None:
        """Write segments of ``key`` (vectors of ``dim`` values) into ``folder``."""
        self.folder, self.key, self.dim = folder, key, dim
        self.rows_per_segment = max(1024, SEGMENT_BYTES // (4 * dim))
        self._digests: list[np.ndarray] = []
        self._vectors: list[np.ndarray] = []
        self.published: list[str] = []
        _remove_stale(folder)

    def __enter__(self) -> SegmentWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()

    def add(self, digests: np.ndarray, vectors: np.ndarray) -> None:
        """Queue ``vectors`` of ``digests``; a full segment is published at once."""
        if vectors.shape != (len(digests), self.dim):
            raise ValueError(f"expected {len(digests)} vectors of {self.dim} values, got {vectors.shape}")
        self._digests.append(np.asarray(digests, dtype=DIGEST_DTYPE))
        self._vectors.append(np.asarray(vectors, dtype=np.float32))
        if sum(len(d) for d in self._digests) >= self.rows_per_segment:
            self.flush()

    def flush(self) -> None:
        """Publish everything buffered as one new segment."""
        if not self._digests:
            return
        digests, vectors = np.concatenate(self._digests), np.concatenate(self._vectors)
        self._digests, self._vectors = [], []
        buffer = io.BytesIO()
        pq.write_table(segment_table(digests, vectors, self.key), buffer)
        name = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex}.parquet"
        location = storage.join(self.folder, name)
        # Local: hidden temporary file, fsync, rename. GCS: generation 0, so never over another object.
        storage.write_bytes(location, buffer.getvalue())
        self.published.append(location)


def _remove_stale(folder: str) -> None:
    """Delete hidden temporary files that killed writers left (never a published segment)."""
    if storage.is_gcs(folder) or not Path(folder).is_dir():
        return
    cutoff = time.time() - STALE_SECONDS
    for leftover in Path(folder).glob(".*.tmp"):
        try:
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
        except FileNotFoundError:  # another writer removed it first
            continue
