"""Step ``extract-embeddings``: embed every corpus document once with a frozen encoder.

One call embeds one shard (a contiguous slice of ``corpus.parquet``) into its own output folder;
:func:`gather` merges the shards' folders and checks that every corpus id came back exactly once.
A rerun of a shard whose output is already complete for the same encoder, settings and corpus
returns the stored metrics without recomputing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq

from commerce_lm import models, storage
from commerce_lm.config import ExtractSection
from commerce_lm.embedding.encoder import Embedder, EncoderSettings
from commerce_lm.embedding.pooling import declared_pooling
from commerce_lm.embedding.store import (
    EmbeddingSet,
    part_files,
    part_name,
    read_table,
    schema,
    to_table,
)
from commerce_lm.embedding.store import load as load_embeddings  # reads this step's output back
from commerce_lm.names import CONFIG_JSON, CORPUS_TABLE, EMBEDDINGS_DIR, MANIFEST_JSON, METRICS_JSON

__all__ = ["EmbeddingSet", "gather", "load_embeddings", "run"]

# Documents per sorting window: large enough that length sorting removes almost all padding,
# small enough that a window's token ids and vectors stay well under a GB.
CHUNK_DOCS = 16384


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


def _progress(total: int, desc: str):  # noqa: ANN202 - a tqdm bar
    from tqdm.auto import tqdm

    # In pipeline logs (no terminal) a bar redrawn every second would flood the log.
    interactive = sys.stderr.isatty()
    return tqdm(total=total, unit="doc", desc=desc, mininterval=1.0 if interactive else 30.0)


def _write_part(
    embedder: Embedder, corpus: Path, rows: tuple[int, int], target: Path, dtype: str, desc: str
) -> tuple[float, _TokenCounter]:
    """Embed corpus rows ``[start, stop)`` into one Parquet part; return the seconds and token counts."""
    counter = _TokenCounter()
    began = time.perf_counter()
    with (
        pq.ParquetWriter(target, schema(embedder.dim, dtype)) as writer,
        _progress(rows[1] - rows[0], desc) as bar,
    ):
        chunks: list[dict[str, list]] = []  # rows of the chunks handed to the embedder
        rows_iter = _iter_rows(corpus, rows[0], rows[1], CHUNK_DOCS)

        def texts() -> Iterator[list[str]]:
            for chunk in rows_iter:
                chunks.append(chunk)
                yield chunk["text"]

        for vectors in embedder.embed_chunks(texts(), progress=bar.update, on_tokens=counter):
            chunk = chunks.pop(0)
            writer.write_table(to_table(chunk["id"], chunk["split"], vectors, dtype))
    return time.perf_counter() - began, counter


def run(
    section: ExtractSection, model: str, prepared_dir: str, out_dir: str, shard: int = 0, num_shards: int = 1
) -> dict:
    """Embed one shard of ``prepared_dir/corpus.parquet`` with the frozen encoder ``model``.

    Args:
        section: The step's section; ``section.embed`` holds max length, token budget, pooling and dtype.
        model: The encoder: HF hub id, local folder or ``gs://`` folder.
        prepared_dir: The prepare-data output folder.
        out_dir: This shard's output folder (``embeddings/``, ``manifest.json``, ``metrics.json``,
            ``config.json``), written atomically.
        shard: Which shard to embed, ``0 <= shard < num_shards``.
        num_shards: Into how many contiguous slices the corpus is cut.

    Returns:
        The metrics: ``docs_per_second``, ``seconds``, ``count`` and token counts.
    """
    settings = section.embed
    # Each encoder pools as it declares (the PLM's sentence-transformers config; the fine-tuned
    # encoder's own), unless the config forces one pooling for every arm.
    pooling = declared_pooling(models.resolve_model(model)) if settings.pooling == "auto" else settings.pooling
    with storage.local_copy(storage.join(prepared_dir, CORPUS_TABLE)) as corpus:
        num_rows = pq.ParquetFile(corpus).metadata.num_rows
        start, stop = shard_bounds(num_rows, shard, num_shards)
        checksum = models.model_checksum(model)
        kept = {"pooling": pooling, "max_length": settings.max_length, "dtype": settings.dtype}
        corpus_digest = _corpus_digest(corpus, start, stop)
        fingerprint = _fingerprint(
            encoder_checksum=checksum, **kept, shard=shard, num_shards=num_shards, corpus=corpus_digest
        )
        done = _complete(out_dir, fingerprint)
        if done is not None:
            return done
        encoder = EncoderSettings(max_length=settings.max_length, token_budget=settings.token_budget, pooling=pooling)
        embedder = Embedder(model, encoder)
        with storage.staged_dir(out_dir, "extract-embeddings") as stage:
            target = stage / EMBEDDINGS_DIR / part_name(shard, num_shards)
            target.parent.mkdir(parents=True)
            desc = f"embed {shard + 1}/{num_shards}"
            seconds, counter = _write_part(embedder, corpus, (start, stop), target, settings.dtype, desc)
            count = stop - start
            metrics = {**counter.metrics(count, seconds), "device": embedder.device}
            manifest = {
                "encoder_checksum": checksum,
                "model": model,
                **kept,
                "dim": embedder.dim,
                **{key: metrics[key] for key in ("count", "seconds", "docs_per_second")},
                "shard": shard,
                "num_shards": num_shards,
                "rows": [start, stop],
                "fingerprint": fingerprint,
            }
            storage.write_json(stage / MANIFEST_JSON, manifest)
            storage.write_json(stage / CONFIG_JSON, section.model_dump(mode="json"))
            storage.write_json(stage / METRICS_JSON, metrics)
    return metrics


class _TokenCounter:
    """Counts real and padded tokens the encoder processed (for throughput and padding waste)."""

    def __init__(self) -> None:
        self.tokens = 0
        self.padded = 0

    def __call__(self, real: int, padded: int) -> None:
        self.tokens += real
        self.padded += padded

    def metrics(self, count: int, seconds: float) -> dict[str, float | int]:
        """Throughput of ``count`` documents embedded in ``seconds``, with the token counts."""
        return {
            "count": count,
            "seconds": round(seconds, 3),
            "docs_per_second": round(count / seconds, 2) if seconds > 0 else 0.0,
            "tokens": self.tokens,
            "tokens_per_second": round(self.tokens / seconds, 1) if seconds > 0 else 0.0,
            "padded_tokens": self.padded,
        }


def _describe(ids: list[str], limit: int = 10) -> str:
    shown = ", ".join(repr(i) for i in ids[:limit])
    more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
    return f"{len(ids)}: {shown}{more}"


def gather(part_dirs: list[str], prepared_dir: str, out_dir: str) -> dict:
    """Merge shard outputs into one embeddings folder, checking nothing was lost or repeated.

    Args:
        part_dirs: The shards' output folders (any order; they are ordered by their manifests).
        prepared_dir: The prepare-data output folder whose ``corpus.parquet`` was embedded.
        out_dir: The merged output folder, written atomically.

    Returns:
        The merged metrics (``count``, total ``seconds``, ``docs_per_second``, ``shards``).

    Raises:
        ValueError: When shards disagree on the encoder or settings, or when corpus ids are missing,
            duplicated or unexpected, or come back out of corpus order; the message names them.
    """
    if not part_dirs:
        raise ValueError("gather: no shard folders given")
    manifests = [(storage.read_json(storage.join(d, MANIFEST_JSON)), d) for d in part_dirs]
    manifests.sort(key=lambda item: item[0].get("shard", 0))
    first = manifests[0][0]
    for key in ("encoder_checksum", "pooling", "dim", "dtype", "max_length"):
        values = {json.dumps(m.get(key)) for m, _ in manifests}
        if len(values) > 1:
            raise ValueError(f"gather: shards disagree on {key}: {sorted(values)}")
    parts = [p for _, d in manifests for p in part_files(d)]
    got: list[str] = []
    for part in parts:
        got.extend(read_table(part, columns=["id"]).column("id").to_pylist())
    with storage.local_copy(storage.join(prepared_dir, CORPUS_TABLE)) as corpus:
        expected = pq.read_table(corpus, columns=["id"]).column("id").to_pylist()
    _check_ids(expected, got)
    seconds = sum(m["seconds"] for m, _ in manifests)
    metrics = {
        "count": len(got),
        "seconds": round(seconds, 3),
        "docs_per_second": round(len(got) / seconds, 2) if seconds > 0 else 0.0,
        "shards": len(manifests),
    }
    shared = ("encoder_checksum", "model", "pooling", "dim", "dtype", "max_length")
    manifest = {key: first[key] for key in shared}
    manifest.update(count=len(got), seconds=metrics["seconds"], docs_per_second=metrics["docs_per_second"])
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


def _check_ids(expected: list[str], got: list[str]) -> None:
    """Every corpus id exactly once, in corpus order, and nothing else."""
    if got == expected:
        return
    counts = Counter(got)
    duplicates = sorted(i for i, c in counts.items() if c > 1)
    expected_set = set(expected)
    missing = [i for i in expected if i not in counts]
    unexpected = sorted(i for i in counts if i not in expected_set)
    problems = []
    if missing:
        problems.append(f"missing ids {_describe(missing)}")
    if duplicates:
        problems.append(f"duplicate ids {_describe(duplicates)}")
    if unexpected:
        problems.append(f"ids not in the corpus {_describe(unexpected)}")
    if not problems:
        problems.append("every id came back once, but not in corpus order")
    raise ValueError("gather: " + "; ".join(problems))
