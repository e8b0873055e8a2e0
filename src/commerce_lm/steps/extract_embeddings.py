"""Step ``extract-embeddings``: embed every corpus document once with a frozen encoder.

One call embeds one shard (a contiguous slice of ``corpus.parquet``) into its own output folder;
:func:`gather` merges the shards' folders and checks that every corpus id came back exactly once.
Texts go through the vector store keyed by encoder and text
(:mod:`commerce_lm.embedding.vector_store`): a text is embedded once per encoder, across shards and
runs. A rerun of a shard whose output is already complete for the same encoder, settings and corpus
returns the stored metrics without reading anything else.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq

from commerce_lm import models, storage
from commerce_lm.config import ExtractSection
from commerce_lm.embedding import cached
from commerce_lm.embedding.checks import check_ids
from commerce_lm.embedding.encoder import Embedder
from commerce_lm.embedding.store import (
    EmbeddingSet,
    part_files,
    part_name,
    read_table,
    schema,
    to_table,
)
from commerce_lm.embedding.store import load as load_embeddings  # reads this step's output back
from commerce_lm.embedding.vector_store import StoreKey, VectorStore
from commerce_lm.modelfiles import st_files
from commerce_lm.modelfiles.st_files import declared_pooling
from commerce_lm.names import CONFIG_JSON, CORPUS_TABLE, EMBEDDINGS_DIR, MANIFEST_JSON, METRICS_JSON

__all__ = ["EmbeddingSet", "gather", "load_embeddings", "run"]

# Documents per sorting window: large enough that length sorting removes almost all padding,
# small enough that a window's token ids and vectors stay well under a GB.
CHUNK_DOCS = 16384
STEP = "extract-embeddings"
# What a shard's manifest says about its work (gather sums them).
COUNTS = ("count", "embedded", "reused", "seconds", "embed_seconds", "docs_per_second")


def shard_bounds(num_rows: int, shard: int, num_shards: int) -> tuple[int, int]:
    """Row range ``[start, stop)`` of one shard: contiguous, sizes differ by at most one row."""
    if not 0 <= shard < num_shards:
        raise ValueError(f"shard {shard}: expected 0 <= shard < num_shards={num_shards}")
    return num_rows * shard // num_shards, num_rows * (shard + 1) // num_shards


def _iter_rows(corpus: Path, start: int, stop: int, chunk: int) -> Iterator[dict[str, list]]:
    """Stream ``id``, ``text``, ``split`` of rows ``[start, stop)`` in chunks of at most ``chunk``."""
    handle = pq.ParquetFile(corpus)
    seen = 0
    for batch in handle.iter_batches(batch_size=chunk, columns=["id", "text", "split"]):
        lo, hi = max(start - seen, 0), min(stop - seen, batch.num_rows)
        seen += batch.num_rows
        if hi > lo:
            yield batch.slice(lo, hi - lo).to_pydict()
        if seen >= stop:
            return


def _corpus_digest(corpus: Path, start: int, stop: int) -> str:
    """Hash the shard's ids and texts: a re-prepared corpus never reuses stale vectors."""
    digest = hashlib.sha256()
    for rows in _iter_rows(corpus, start, stop, CHUNK_DOCS):
        for doc_id, text in zip(rows["id"], rows["text"], strict=True):
            digest.update(doc_id.encode())
            digest.update(b"\x1f")
            digest.update(text.encode())
            digest.update(b"\x1e")
    return digest.hexdigest()[:16]


def _fingerprint(**parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _complete(out_dir: str, fingerprint: str) -> dict | None:
    """Return the stored metrics when ``out_dir`` already holds this exact shard, else ``None``."""
    # Published folders are whole (a rename locally, a completion marker on GCS written last).
    if not storage.is_complete(out_dir):
        return None
    manifest_path, metrics_path = storage.join(out_dir, MANIFEST_JSON), storage.join(out_dir, METRICS_JSON)
    if not (storage.exists(manifest_path) and storage.exists(metrics_path)):
        return None
    manifest = storage.read_json(manifest_path)
    if manifest.get("fingerprint") != fingerprint:
        return None
    parts = part_files(out_dir)
    rows = sum(read_table(p, columns=["id"]).num_rows for p in parts)
    return storage.read_json(metrics_path) if rows == manifest.get("count") else None


def run(
    section: ExtractSection, model: str, prepared_dir: str, out_dir: str, shard: int = 0, num_shards: int = 1
) -> dict:
    """Embed one shard of ``prepared_dir/corpus.parquet`` with the frozen encoder ``model``.

    Texts go through the vector store (``embed.store``): only texts it lacks for this encoder,
    pooling and max length are embedded (and added to it); the output holds exactly this shard's ids.

    Args:
        section: The step's section; ``section.embed`` holds max length, token budget, pooling, dtype and store.
        model: The encoder: HF hub id, local folder or ``gs://`` folder.
        prepared_dir: The prepare-data output folder.
        out_dir: This shard's output folder (``embeddings/``, ``manifest.json``, ``metrics.json``,
            ``config.json``), written atomically.
        shard: Which shard to embed, ``0 <= shard < num_shards``.
        num_shards: Into how many contiguous slices the corpus is cut.

    Returns:
        The metrics: ``count``, ``embedded`` and ``reused`` texts, ``seconds``, ``docs_per_second``
        (of the texts embedded; None when all were reused), token counts and the ``prompt`` put
        before every text (``embed.prompt``; ``""`` for none).
    """
    settings = section.embed
    folder = models.resolve_model(model)
    # Each encoder pools as it declares (the PLM's sentence-transformers config; the fine-tuned
    # encoder's own), unless the config forces one pooling for every arm; prompts likewise.
    pooling = declared_pooling(folder) if settings.pooling == "auto" else settings.pooling
    prompt = st_files.prompt(folder, settings.prompt)
    with storage.local_copy(storage.join(prepared_dir, CORPUS_TABLE)) as corpus:
        num_rows = pq.ParquetFile(corpus).metadata.num_rows
        start, stop = shard_bounds(num_rows, shard, num_shards)
        key = StoreKey(models.model_checksum(model), pooling, settings.max_length, prompt)
        fingerprint = _fingerprint(
            **_key_entries(key),
            dtype=settings.dtype,
            shard=shard,
            num_shards=num_shards,
            corpus=_corpus_digest(corpus, start, stop),
        )
        done = _complete(out_dir, fingerprint)
        if done is not None:
            return done
        began = time.perf_counter()

        def texts() -> Iterator[list[str]]:
            return (rows["text"] for rows in _iter_rows(corpus, start, stop, CHUNK_DOCS))

        plan, embed_seconds, counter = _embed(section, model, key, texts, f"embed {shard + 1}/{num_shards}")
        with storage.staged_dir(out_dir, STEP) as stage:
            part = stage / EMBEDDINGS_DIR / part_name(shard, num_shards)
            _write_part(part, _iter_rows(corpus, start, stop, CHUNK_DOCS), plan, settings.dtype)
            metrics = _metrics(stop - start, plan, time.perf_counter() - began, embed_seconds, counter)
            metrics["prompt"] = prompt
            manifest = {**_key_entries(key), "model": model, "dim": plan.vectors.shape[1], "dtype": settings.dtype}
            manifest.update({k: metrics[k] for k in COUNTS}, store=plan.store.root, fingerprint=fingerprint)
            manifest.update(shard=shard, num_shards=num_shards, rows=[start, stop])
            storage.write_json(stage / MANIFEST_JSON, manifest)
            storage.write_json(stage / CONFIG_JSON, section.model_dump(mode="json"))
            storage.write_json(stage / METRICS_JSON, metrics)
    return metrics


def _write_part(target: Path, rows_iter: Iterator[dict[str, list]], plan: cached.Plan, dtype: str) -> None:
    """Write the shard's ids, splits and vectors (from the filled plan), in corpus order."""
    target.parent.mkdir(parents=True)
    with pq.ParquetWriter(target, schema(plan.vectors.shape[1], dtype)) as writer:
        offset = 0
        for rows in rows_iter:
            count = len(rows["id"])
            writer.write_table(to_table(rows["id"], rows["split"], plan.rows(offset, offset + count), dtype))
            offset += count


def _embed(section: ExtractSection, model: str, key: StoreKey, texts: cached.Chunks, label: str) -> tuple:
    """Look every text up in the store and embed the missing ones: ``(plan, seconds, token counter)``."""
    plan = cached.plan(VectorStore(section.embed.store), key, texts)
    counter = _TokenCounter()
    # The encoder is loaded only when some text is missing.
    embedder = functools.partial(Embedder, model, cached.settings_for(key, section.embed.token_budget))
    plan.fill(texts, embedder, CHUNK_DOCS, label, counter)
    return plan, plan.embed_seconds, counter


def _key_entries(key: StoreKey) -> dict:
    """The store key as manifest entries (``encoder_checksum``, ``pooling``, ``max_length``, ``prompt``)."""
    return {
        "encoder_checksum": key.encoder_checksum,
        "pooling": key.pooling,
        "max_length": key.max_length,
        "prompt": key.prompt,
    }


def _metrics(count: int, plan: cached.Plan, seconds: float, embed_seconds: float, counter: _TokenCounter) -> dict:
    """What one extraction did: the rows it delivered, and the texts it embedded or reused."""
    return {
        "count": count,
        "embedded": plan.embedded,
        "reused": plan.reused,
        "seconds": round(seconds, 3),
        "embed_seconds": round(embed_seconds, 3),
        # The encoder's throughput on the texts it did embed; nothing embedded, nothing measured.
        "docs_per_second": round(plan.embedded / embed_seconds, 2) if plan.embedded and embed_seconds > 0 else None,
        "tokens": counter.tokens,
        "tokens_per_second": round(counter.tokens / embed_seconds, 1) if counter.tokens and embed_seconds > 0 else None,
        "padded_tokens": counter.padded,
    }


class _TokenCounter:
    """Counts real and padded tokens the encoder processed (for throughput and padding waste)."""

    def __init__(self) -> None:
        self.tokens = 0
        self.padded = 0

    def __call__(self, real: int, padded: int) -> None:
        self.tokens += real
        self.padded += padded


def gather(part_dirs: list[str], prepared_dir: str, out_dir: str) -> dict:
    """Merge shard outputs into one embeddings folder, checking nothing was lost or repeated.

    Args:
        part_dirs: The shards' output folders (any order; they are ordered by their manifests).
        prepared_dir: The prepare-data output folder whose ``corpus.parquet`` was embedded.
        out_dir: The merged output folder, written atomically.

    Returns:
        The merged metrics (``count``, ``shards``, total ``embedded``, ``reused``, ``seconds`` and
        ``embed_seconds``, and the encoder's ``docs_per_second``).

    Raises:
        ValueError: When shards disagree on the encoder or settings, or when corpus ids are missing,
            duplicated or unexpected, or come back out of corpus order; the message names them.
    """
    if not part_dirs:
        raise ValueError("gather: no shard folders given")
    manifests = [(storage.read_json(storage.join(d, MANIFEST_JSON)), d) for d in part_dirs]
    manifests.sort(key=lambda item: item[0].get("shard", 0))
    first = manifests[0][0]
    for key in ("encoder_checksum", "pooling", "dim", "dtype", "max_length", "prompt"):
        values = {json.dumps(m.get(key)) for m, _ in manifests}
        if len(values) > 1:
            raise ValueError(f"gather: shards disagree on {key}: {sorted(values)}")
    parts = [p for _, d in manifests for p in part_files(d)]
    got: list[str] = []
    for part in parts:
        got.extend(read_table(part, columns=["id"]).column("id").to_pylist())
    with storage.local_copy(storage.join(prepared_dir, CORPUS_TABLE)) as corpus:
        expected = pq.read_table(corpus, columns=["id"]).column("id").to_pylist()
    check_ids(expected, got, "gather")
    metrics = {
        "count": len(got),
        "shards": len(manifests),
        **{k: sum(m.get(k) or 0 for m, _ in manifests) for k in ("embedded", "reused", "seconds", "embed_seconds")},
        "prompt": first["prompt"],
    }
    embedded, busy = metrics["embedded"], metrics["embed_seconds"]
    metrics["docs_per_second"] = round(embedded / busy, 2) if embedded and busy > 0 else None
    shared = ("encoder_checksum", "model", "pooling", "dim", "dtype", "max_length", "prompt")
    manifest = {key: first[key] for key in shared}
    manifest.update({k: metrics[k] for k in COUNTS})
    manifest["shards"] = [m.get("fingerprint") for m, _ in manifests]
    with storage.staged_dir(out_dir, "gather-embeddings") as stage:
        (stage / EMBEDDINGS_DIR).mkdir()
        for index, part in enumerate(parts):
            target = stage / EMBEDDINGS_DIR / part_name(index, len(parts))
            if storage.is_gcs(part):
                target.write_bytes(storage.read_bytes(part))
            else:
                shutil.copyfile(part, target)
        storage.write_json(stage / MANIFEST_JSON, manifest)
        storage.write_json(stage / METRICS_JSON, metrics)
        config = storage.join(manifests[0][1], CONFIG_JSON)
        if storage.exists(config):
            storage.write_json(stage / CONFIG_JSON, storage.read_json(config))
    return metrics
