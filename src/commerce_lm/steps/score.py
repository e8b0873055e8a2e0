"""Step ``score``: score new listings with a published bundle.

Listings are read and checked as prepare-data does (:mod:`commerce_lm.data.listings`), embedded
with the bundle's encoder exactly as its heads' training vectors were (pooling, max length, prompt) through
the vector store, so a listing seen before is not embedded again. Every head gives a score and a
flag at its chosen threshold; every similarity set with a reference index gives the nearest
reference ids with their cosines at or above its threshold.

One call scores one shard (rows split by a hash of their id) into ``scores/`` and ``rejected/``
parts; :func:`gather` merges shards. The input rows always equal the scored plus the rejected rows.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from commerce_lm import names, storage
from commerce_lm.bundle.apply import head_scores, nearest_references
from commerce_lm.bundle.read import Bundle, open_bundle
from commerce_lm.config import ConfigError, DatasetSpec, parse_config
from commerce_lm.data.listings import Listings, read_listings
from commerce_lm.data.readers import InputError
from commerce_lm.data.rejected import REJECTED_SCHEMA
from commerce_lm.embedding import cached
from commerce_lm.embedding.encoder import Embedder
from commerce_lm.embedding.vector_store import VectorStore

STEP = "score"
SCORES_DIR = "scores"
REJECTED_DIR = "rejected"
CHUNK_DOCS = 16384
COUNTS = ("input_rows", "scored_rows", "rejected_rows", "embedded", "reused")


def part_name(shard: int, num_shards: int) -> str:
    """File name of one shard's scores or rejected rows."""
    return f"part-{shard:05d}-of-{num_shards:05d}.parquet"


def _vectors(bundle: Bundle, texts: list[str], store: str | None, token_budget: int) -> tuple[np.ndarray, dict]:
    """The listings' vectors made as the bundle's heads expect, through the store."""

    def chunks():  # noqa: ANN202 - an iterator of text lists
        return (texts[i : i + CHUNK_DOCS] for i in range(0, len(texts), CHUNK_DOCS))

    key = bundle.key
    plan = cached.plan(VectorStore(store), key, chunks)
    settings = cached.settings_for(key, token_budget)
    plan.fill(chunks, lambda: Embedder(bundle.encoder, settings), CHUNK_DOCS, "embed new listings")
    counts = {"embedded": plan.embedded, "reused": plan.reused, "embed_seconds": plan.embed_seconds}
    return plan.rows(0, len(texts)), counts


def score_table(bundle: Bundle, listings: Listings, vectors: np.ndarray) -> pa.Table:
    """``id``, ``lang``, ``<task>_score`` and ``<task>_flag`` per head, ``<set>_neighbors`` and ``<set>_cosines``."""
    columns: dict[str, pa.Array] = {"id": pa.array(listings.ids, pa.string()), "lang": pa.array(listings.langs)}
    for task in bundle.tasks:
        head = bundle.head(task)
        scores = head_scores(head, vectors)
        columns[f"{task}_score"] = pa.array(scores.astype(np.float32))
        columns[f"{task}_flag"] = pa.array(scores >= head["threshold"])
    for name in bundle.similarity:
        entry = bundle.manifest["similarity"][name]
        ref_ids, ref_vectors = bundle.references(name)
        found, cosines = nearest_references(ref_ids, ref_vectors, listings.ids, vectors, entry["k"], entry["threshold"])
        columns[f"{name}_neighbors"] = pa.array(found, pa.list_(pa.string()))
        columns[f"{name}_cosines"] = pa.array(cosines, pa.list_(pa.float32()))
    return pa.table(columns)


def run(
    bundle_uri: str,
    input_location: str,
    out_dir: str,
    *,
    store: str | None = None,
    columns: dict[str, Any] | None = None,
    token_budget: int | None = None,
    shard: int = 0,
    num_shards: int = 1,
    encoding: str | None = None,
    max_rejected_fraction: float | None = None,
) -> dict[str, Any]:
    """Score one shard of ``input_location`` with the bundle at ``bundle_uri``.

    Args:
        bundle_uri: A bundle folder, or a registry (its live bundle), local or ``gs://``.
        input_location: Listings: a Parquet, CSV or JSONL file, folder or glob, local or ``gs://``.
        out_dir: Output folder: ``scores/`` and ``rejected/`` parts, ``metrics.json``.
        store: The vector store (default: the local cache's).
        columns: ``id``, ``text`` (a list) and ``lang`` column names; those not given are the bundle's
            domain dataset's.
        token_budget: Padded tokens per batch (default: the bundle's run config's).
        shard: Which shard of the rows to score.
        num_shards: How many shards the rows are cut into.
        encoding: The CSV/JSONL files' encoding (default: UTF-8, a BOM skipped).
        max_rejected_fraction: The largest share of the input's rows that may be rejected (default:
            the bundle's run's ``prepare.max_rejected_fraction``); past it nothing is scored and the
            rejected rows are kept in ``<out_dir>.refused/``. Shards are checked by :func:`gather`.

    Returns:
        Counts (input, scored, rejected by reason, embedded, reused) and throughput.

    Raises:
        ConfigError: A shard outside ``0 <= shard < num_shards``, or a fraction outside 0..1.
        BundleError: A bundle whose files or heads do not match its encoder (names both checksums).
        OutputError: An output inside the input, the bundle or its registry, or one that is not
            an earlier score output.
        readers.InputError: An input file that cannot be read (names the file and column), or more
            rejected rows than ``max_rejected_fraction``.
    """
    if not 0 <= shard < num_shards:
        raise ConfigError(f"shard {shard} of {num_shards}: expected num_shards >= 1 and 0 <= shard < num_shards")
    if max_rejected_fraction is not None and not 0 <= max_rejected_fraction <= 1:
        raise ConfigError(f"max_rejected_fraction {max_rejected_fraction}: expected a share from 0 to 1")
    began = time.perf_counter()
    bundle = open_bundle(bundle_uri)
    trained = parse_config(bundle.run_config(), f"{bundle.uri} run config")
    # Scores written into a bundle would break its manifest; into the registry, its next publish.
    inputs = [input_location, bundle_uri, bundle.uri, *filter(None, [trained.publish.location])]
    storage.check_output(out_dir, STEP, inputs)
    named = trained.domain.model_dump(include={"id", "text", "lang"}) | {k: v for k, v in (columns or {}).items() if v}
    spec = DatasetSpec(data=input_location, encoding=encoding, **named)
    listings = read_listings(input_location, spec, trained.prepare, shard, num_shards)
    limit = trained.prepare.max_rejected_fraction if max_rejected_fraction is None else max_rejected_fraction
    rejected = pa.Table.from_pylist(listings.rejected, REJECTED_SCHEMA)
    if num_shards == 1:  # a sharded input's share is checked on the whole of it, when gathered
        by_reason = Counter(r["reason"] for r in listings.rejected)
        keep = partial(_write_part, rejected, part_name(shard, num_shards))
        _check_rejected_share(listings.input_rows, by_reason, limit, input_location, out_dir, keep)
    vectors, counts = _vectors(bundle, listings.texts, store, token_budget or trained.embed.token_budget)
    table = score_table(bundle, listings, vectors)
    with storage.staged_dir(out_dir, STEP, inputs) as stage:
        for folder, part in ((SCORES_DIR, table), (REJECTED_DIR, rejected)):
            (stage / folder).mkdir()
            _write_part(part, part_name(shard, num_shards), stage / folder)
        metrics = _metrics(bundle, listings, counts, time.perf_counter() - began)
        metrics.update(shard=shard, num_shards=num_shards, max_rejected_fraction=limit)
        _check_counts(metrics, out_dir)
        storage.write_json(stage / names.METRICS_JSON, metrics)
    return metrics


def _write_part(table: pa.Table, name: str, folder: Path) -> None:
    pq.write_table(table, folder / name)


def _check_rejected_share(
    input_rows: int, by_reason: dict[str, int], limit: float, what: str, out_dir: str, keep: Callable[[Path], None]
) -> None:
    """Refuse an input whose rejected share passes ``limit``, keeping its rejected rows.

    Args:
        input_rows: The input's rows.
        by_reason: Its rejected rows by reason.
        limit: The largest share that may be rejected.
        what: The input, as the message names it.
        out_dir: The output that is not written; the rejected rows go to ``<out_dir>.refused/``.
        keep: Writes the rejected rows' parts into the folder it is given.

    Raises:
        InputError: Naming the input, the counts by reason and where the rejected rows were kept.
    """
    rejected = sum(by_reason.values())
    if not input_rows or rejected / input_rows <= limit:
        return
    # Beside the output, never as it: a later score run of fixed input can still write out_dir.
    kept = f"{str(out_dir).rstrip('/')}.refused"
    with storage.staged_dir(kept, f"{STEP} (refused)") as stage:
        (stage / REJECTED_DIR).mkdir()
        keep(stage / REJECTED_DIR)
    raise InputError(
        f"{what}: {rejected} of {input_rows} rows rejected, over --max-rejected-fraction={limit}: "
        f"{dict(sorted(by_reason.items()))}; the rejected rows are in {kept}"
    )


def _metrics(bundle: Bundle, listings: Listings, counts: dict[str, Any], seconds: float) -> dict[str, Any]:
    return {
        "bundle": bundle.manifest["id"],
        "encoder_checksum": bundle.key.encoder_checksum,
        "input_rows": listings.input_rows,
        "scored_rows": len(listings.ids),
        "rejected_rows": len(listings.rejected),
        "rejected_by_reason": dict(sorted(Counter(r["reason"] for r in listings.rejected).items())),
        **counts,
        "seconds": seconds,
        "docs_per_second": len(listings.ids) / seconds if seconds > 0 else None,
    }


def _check_counts(metrics: dict[str, Any], where: str) -> None:
    if metrics["input_rows"] != metrics["scored_rows"] + metrics["rejected_rows"]:
        raise RuntimeError(
            f"{where}: {metrics['input_rows']} input rows but {metrics['scored_rows']} scored "
            f"+ {metrics['rejected_rows']} rejected"
        )


def gather(part_dirs: list[str], out_dir: str) -> dict[str, Any]:
    """Merge score shards into one output folder, checking that every row is counted once.

    The reject gate of a sharded input applies here, to the whole input, at the shards' limit.

    Raises:
        ValueError: Shards of different bundles, missing or repeated shards, or an id scored twice.
        InputError: More rows rejected than the shards' ``max_rejected_fraction`` allows.
    """
    shards = [(storage.read_json(storage.join(d, names.METRICS_JSON)), d) for d in part_dirs]
    shards.sort(key=lambda item: item[0]["shard"])
    num = {m["num_shards"] for m, _ in shards}
    if {m["bundle"] for m, _ in shards} != {shards[0][0]["bundle"]} or len(num) != 1:
        raise ValueError("gather scores: the shards come from different bundles or shardings")
    if [m["shard"] for m, _ in shards] != list(range(num.pop())):
        raise ValueError(f"gather scores: expected every shard once, got {[m['shard'] for m, _ in shards]}")
    metrics: dict[str, Any] = {k: sum(m[k] for m, _ in shards) for k in COUNTS}
    reasons: Counter = Counter()
    for m, _ in shards:
        reasons.update(m["rejected_by_reason"])
    metrics.update(bundle=shards[0][0]["bundle"], shards=len(shards), rejected_by_reason=dict(sorted(reasons.items())))
    dirs = [d for _, d in shards]
    limits = [m["max_rejected_fraction"] for m, _ in shards if m.get("max_rejected_fraction") is not None]
    if limits:  # shards written before the gate carry no limit
        what = f"{dirs[0]} and the other score shards" if len(dirs) > 1 else dirs[0]
        keep = partial(_copy_parts, dirs, REJECTED_DIR)
        _check_rejected_share(metrics["input_rows"], reasons, min(limits), what, out_dir, keep)
    # The gathered folder is a score output like a shard's: either may replace the other.
    with storage.staged_dir(out_dir, STEP, part_dirs) as stage:
        copies = {}
        for folder in (SCORES_DIR, REJECTED_DIR):
            (stage / folder).mkdir()
            copies[folder] = _copy_parts(dirs, folder, stage / folder)
        ids = [i for path in copies[SCORES_DIR] for i in pq.read_table(path, columns=["id"]).column("id").to_pylist()]
        if len(ids) != len(set(ids)):
            raise ValueError("gather scores: an id was scored in two shards")
        _check_counts(metrics, out_dir)
        storage.write_json(stage / names.METRICS_JSON, metrics)
    return metrics


def _copy_parts(part_dirs: list[str], folder: str, target: Path) -> list[Path]:
    """Copy the parts in ``folder`` of every shard into ``target``; returns the copies."""
    copied = []
    for part_dir in part_dirs:
        for source in storage.list_files(storage.join(part_dir, folder)):
            copied.append(target / Path(source).name)
            copied[-1].write_bytes(storage.read_bytes(source))
    return copied
