"""A store of vectors keyed by (encoder checksum, pooling, max length, prompt, text digest), local or ``gs://``.

A text is embedded once per encoder, across steps, shards and runs. The store is a folder per
encoder setting, ``<root>/<encoder checksum>/<pooling>-<max length>[-prompt-<digest>]/``, holding immutable Parquet
segments (``digest``, ``vector``) with the key in each file's metadata.

Writers never change a file: each adds uniquely named segments, each published in one step (a
local file is written under a hidden temporary name and renamed; a ``gs://`` object is uploaded
with ``if_generation_match=0``, which GCS makes visible only once whole). So concurrent writers
(sharded extraction) never corrupt the store, and a killed writer leaves at most a hidden temporary
file that readers never list. Two writers may store the same text: readers take either copy, as
both came from the same encoder, pooling and max length.

Each segment's metadata carries a SHA-256 of its digests and vectors, checked whenever its vectors
are read: a segment whose bytes changed after it was written (a flipped bit, a bad copy) is named
in a warning, moved aside as ``<name>.corrupt`` (kept for inspection, never listed again) and its
texts count as missing, so they are embedded again.

This module finds vectors; :mod:`commerce_lm.embedding.store_segments` lays segments out and writes them.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from commerce_lm import models, storage
from commerce_lm.embedding.store_segments import (
    CONTENT_KEY,
    DIGEST_DTYPE,
    SegmentWriter,
    StoreKey,
    content_checksum,
    read_digests,
    read_vectors,
)
from commerce_lm.storage import gcs

SEGMENTS_DIR = "segments"
CORRUPT_SUFFIX = ".corrupt"  # a segment moved aside: no longer ends in .parquet, so never listed

log = logging.getLogger(__name__)


class StoreError(ValueError):
    """A store segment that must not be used; the message names the file and what is wrong."""


def default_root() -> str:
    """The store when the config names none: a folder in the local cache, shared by every run here."""
    return str(models.cache_root() / "embeddings")


def text_digests(texts: Iterable[str]) -> np.ndarray:
    """Each text's digest (hex, ``S32``), as the store keys it."""
    return np.array(
        [hashlib.sha256(t.encode("utf-8", "surrogatepass")).hexdigest()[:32] for t in texts], dtype=DIGEST_DTYPE
    ).reshape(-1)


class VectorStore:
    """Vectors by key and text digest under ``root`` (a local folder or a ``gs://`` prefix)."""

    def __init__(self, root: str | None = None) -> None:
        """Open the store at ``root`` (default: :func:`default_root`); nothing is created yet."""
        self.root = str(root or default_root())

    def _folder(self, key: StoreKey) -> str:
        return storage.join(self.root, *key.folder().split("/"), SEGMENTS_DIR)

    def segments(self, key: StoreKey) -> list[str]:
        """The published segments of ``key``, oldest first; hidden temporary files are never listed."""
        folder = self._folder(key)
        if not storage.is_gcs(folder) and not Path(folder).is_dir():
            return []
        names = [f for f in storage.list_files(folder) if _published(f)]
        return sorted(names, key=lambda f: Path(f).name)

    def _local(self, segment: str) -> Path:
        """A local path of a segment; ``gs://`` segments are cached, as they never change."""
        if not storage.is_gcs(segment):
            return Path(segment)
        target = _cached(segment)
        if not target.exists():
            gcs.download(segment, target)  # to a temporary name, then renamed: never half a file
        return target

    def _open(self, segment: str, key: StoreKey) -> pq.ParquetFile:
        """Open a segment, refusing one whose key is not ``key``."""
        try:
            handle = pq.ParquetFile(self._local(segment))
        except (OSError, pa.ArrowException) as error:
            raise StoreError(f"{segment}: not a readable store segment ({error}); delete the file") from None
        meta = {k.decode(): v.decode() for k, v in (handle.schema_arrow.metadata or {}).items()}
        if meta.get("encoder_checksum") != key.encoder_checksum:
            raise StoreError(
                f"{segment}: holds vectors of encoder {meta.get('encoder_checksum')}, "
                f"but sits under encoder {key.encoder_checksum}"
            )
        if (meta.get("pooling"), meta.get("max_length")) != (key.pooling, str(key.max_length)):
            raise StoreError(
                f"{segment}: holds {meta.get('pooling')}-pooled vectors of max length {meta.get('max_length')}, "
                f"not {key.pooling} / {key.max_length}"
            )
        # Segments written before prompts existed carry none: they were made without one.
        if meta.get("prompt", "") != key.prompt:
            made_with = meta.get("prompt", "")
            raise StoreError(f"{segment}: holds vectors made with prompt {made_with!r}, not {key.prompt!r}")
        return handle

    def lookup(self, key: StoreKey, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Find stored vectors of sorted, unique digests.

        Args:
            key: The encoder setting.
            wanted: Sorted unique digests (``S32``), e.g. from ``np.unique(text_digests(texts))``.

        Returns:
            ``(found, vectors)``: a mask over ``wanted`` and ``float32 [len(wanted), dim]`` vectors
            (rows not found are zero); ``vectors`` is None when nothing was found.

        A segment whose content fails its checksum is moved aside and its texts count as not found.

        Raises:
            StoreError: A segment of another key, or an unreadable one, naming the file.
        """
        found = np.zeros(len(wanted), dtype=bool)
        vectors: np.ndarray | None = None
        for segment in self.segments(key):
            if found.all():
                break
            handle = self._open(segment, key)
            try:
                digests = read_digests(handle.read(columns=["digest"]).column("digest"))
            except (OSError, pa.ArrowException):  # pages that no longer decode: corrupt, like a bad checksum
                self._move_aside(segment)
                continue
            pos = np.minimum(np.searchsorted(wanted, digests), max(len(wanted) - 1, 0))
            hit = (wanted[pos] == digests) & ~found[pos] if len(wanted) else np.zeros(len(digests), bool)
            if not hit.any():
                continue
            stored = self._verified_vectors(segment, handle, digests)
            if stored is None:
                continue
            targets, first = np.unique(pos[hit], return_index=True)
            rows = np.flatnonzero(hit)[first]
            if vectors is None:
                vectors = np.zeros((len(wanted), stored.shape[1]), dtype=np.float32)
            vectors[targets] = stored[rows]
            found[targets] = True
        return found, vectors

    def _verified_vectors(self, segment: str, handle: pq.ParquetFile, digests: np.ndarray) -> np.ndarray | None:
        """A segment's vectors, or None when its content no longer matches its checksum (moved aside).

        Segments written before checksums were stored carry none and are read as they are.
        """
        try:
            stored = read_vectors(handle.read(columns=["vector"]).column("vector"))
        except (OSError, pa.ArrowException):
            stored = None
        expected = (handle.schema_arrow.metadata or {}).get(CONTENT_KEY)
        if stored is not None and (expected is None or content_checksum(digests, stored) == expected.decode()):
            return stored
        self._move_aside(segment)
        return None

    def _move_aside(self, segment: str) -> None:
        """Name a corrupt segment in a warning and move it aside, so that its texts are embedded again."""
        aside = f"{segment}{CORRUPT_SUFFIX}"
        log.warning("%s: corrupt store segment (content does not match its checksum); moved to %s", segment, aside)
        storage.write_bytes(aside, storage.read_bytes(segment), overwrite=True)
        storage.remove(segment)
        if storage.is_gcs(segment):
            _cached(segment).unlink(missing_ok=True)  # the cached copy may be the corrupt one

    def writer(self, key: StoreKey, dim: int) -> SegmentWriter:
        """A writer adding segments of ``key``; use it as a context manager."""
        return SegmentWriter(self._folder(key), key, dim)


def _cached(segment: str) -> Path:
    """Where a ``gs://`` segment is cached locally."""
    return models.cache_root() / "store-segments" / f"{hashlib.sha256(segment.encode()).hexdigest()[:24]}.parquet"


def _published(path: str) -> bool:
    name = Path(path).name
    return name.endswith(".parquet") and not name.startswith((".", "_"))
