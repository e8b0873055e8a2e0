"""The on-disk form of embeddings: Parquet parts with a fixed-size-list vector column.

``embeddings/part-XXXXX-of-YYYYY.parquet`` holds ``id``, ``split`` and ``vector``; parts sort by name
in corpus order, so reading them in name order gives the corpus order back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from commerce_lm import storage
from commerce_lm.names import MANIFEST_JSON

VECTOR_DTYPES = {"float32": (np.float32, pa.float32()), "float16": (np.float16, pa.float16())}


def part_name(shard: int, num_shards: int) -> str:
    """File name of one shard's part, e.g. ``part-00003-of-00008.parquet``."""
    return f"part-{shard:05d}-of-{num_shards:05d}.parquet"


def schema(dim: int, dtype: str) -> pa.Schema:
    """Return the parts' schema for vectors of ``dim`` values stored as ``dtype``."""
    return pa.schema(
        [
            ("id", pa.string()),
            ("split", pa.string()),
            ("vector", pa.list_(VECTOR_DTYPES[dtype][1], dim)),
        ]
    )


def to_table(ids: list[str], splits: list[str], vectors: np.ndarray, dtype: str) -> pa.Table:
    """Build a part's rows as an Arrow table, vectors converted to ``dtype``."""
    np_dtype, _ = VECTOR_DTYPES[dtype]
    n, dim = vectors.shape
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np_dtype).reshape(-1))
    column = pa.FixedSizeListArray.from_arrays(flat, dim)
    return pa.Table.from_arrays(
        [pa.array(ids, pa.string()), pa.array(splits, pa.string()), column], schema=schema(dim, dtype)
    )


@dataclass
class EmbeddingSet:
    """Embeddings read back from an extract-embeddings output.

    Attributes:
        ids: Document ids, in corpus order.
        splits: Each document's split (``train`` / ``validation`` / ``test``).
        vectors: ``float32 [n, dim]`` (float16 parts are widened on read).
        manifest: The output's ``manifest.json`` (encoder checksum, pooling, dim, ...).
    """

    ids: list[str]
    splits: list[str]
    vectors: np.ndarray
    manifest: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def select(self, split: str) -> EmbeddingSet:
        """Return the rows of one split, in order."""
        keep = np.fromiter((s == split for s in self.splits), dtype=bool, count=len(self.splits))
        rows = np.flatnonzero(keep)
        return EmbeddingSet(
            [self.ids[i] for i in rows], [self.splits[i] for i in rows], self.vectors[rows], self.manifest
        )


def part_files(location: str) -> list[str]:
    """List the part files under an output folder (or its ``embeddings/`` folder), in corpus order."""
    # Listing the whole folder works for the output folder and for its embeddings/ folder alike,
    # locally and on GCS (where a "folder" is only a prefix that exists() cannot see).
    files = storage.list_files(location)
    parts = [f for f in files if Path(f).name.startswith("part-") and f.endswith(".parquet")]
    return sorted(parts, key=lambda f: Path(f).name)


def read_table(location: str, columns: list[str] | None = None) -> pa.Table:
    """Read one part, local or ``gs://``."""
    return storage.read_parquet(location, columns=columns)


def vectors_of(table: pa.Table) -> np.ndarray:
    """Return the ``vector`` column as a ``float32 [n, dim]`` array."""
    column = table.column("vector")
    dim = column.type.list_size
    if table.num_rows == 0:
        return np.empty((0, dim), dtype=np.float32)
    values = column.combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return values.astype(np.float32, copy=False).reshape(-1, dim)


def load(location: str) -> EmbeddingSet:
    """Read every part of an output folder, in order, with its manifest.

    Raises:
        FileNotFoundError: When the folder holds no parts.
    """
    parts = part_files(location)
    if not parts:
        raise FileNotFoundError(f"{location}: no embeddings/part-*.parquet files")
    manifest_path = storage.join(location, MANIFEST_JSON)
    manifest = storage.read_json(manifest_path) if storage.exists(manifest_path) else {}
    tables = [read_table(p) for p in parts]
    table = pa.concat_tables(tables)
    return EmbeddingSet(
        ids=table.column("id").to_pylist(),
        splits=table.column("split").to_pylist(),
        vectors=vectors_of(table),
        manifest=manifest,
    )
