"""Scoring throughput of a published bundle against the encoder alone, in one run on the same texts.

Generates ``--docs`` new demo listings (another seed than the demo run's) and, in this one process,
on the same texts with the bundle's encoder, compares:

- ``score`` cold: the whole step (read and check the rows, open the bundle, plan against a fresh
  vector store, embed every text, apply the heads and KNN references, write), then warm (every text
  found in the store);
- the extraction step's :class:`~commerce_lm.embedding.encoder.Embedder` with the bundle's settings
  (pooling, max length, prompt, the run's token budget), model load included;
- sentence-transformers ``encode`` on the bundle's encoder folder (the pooling and prompt it
  declares, batch size 32), model load included.

Each is timed ``--repeats`` times in turn (a burst of load from another process hits one pass of
each rather than every pass of one) and keeps its fastest pass. The three must give the same
vectors (cosine >= 0.9999). Each rate is also given as a share of the machine's fp32 matmul peak
(measured here), counting 2 x (parameters outside the embedding tables) x (non-padding tokens)
FLOPs: how much room any encoder path has left on this machine.

    python benchmarks/score_bundle.py --bundle outputs/demo/bundles [--docs 1500] [--repeats 2]

The last line reads ``score_docs_per_second=X embedder_docs_per_second=Y
sentence_transformers_docs_per_second=Z score_to_embedder=A score_to_sentence_transformers=B``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from embed_throughput import matmul_gflops  # this folder is on the path when run as a script

from commerce_lm.bundle.read import open_bundle
from commerce_lm.config import DatasetSpec, parse_config
from commerce_lm.data.listings import read_listings
from commerce_lm.demo import corpus
from commerce_lm.embedding import cached
from commerce_lm.embedding.encoder import Embedder
from commerce_lm.embedding.vector_store import VectorStore
from commerce_lm.steps import score

ST_BATCH = 32


def new_listings(folder: Path, docs: int, seed: int) -> Path:
    """``docs`` demo listings (about 1.5 rows per item) written as Parquet."""
    path = Path(corpus.write(folder / "all.parquet", n_items=docs, seed=seed))
    frame = pd.read_parquet(path).head(docs)
    target = folder / "listings.parquet"
    frame.to_parquet(target, index=False)
    return target


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="score-bench-") as tmp:
        return compare(Path(tmp))


def compare(root: Path) -> int:
    """Run the comparison with its listings, outputs and stores under ``root``; 0 when the vectors agree."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", required=True, help="bundle folder or registry")
    parser.add_argument("--docs", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--repeats", type=int, default=2, help="best of N timed passes per method")
    args = parser.parse_args()

    bundle = open_bundle(args.bundle)
    trained = parse_config(bundle.run_config(), f"{bundle.uri} run config")
    settings = cached.settings_for(bundle.key, trained.embed.token_budget)
    listings = new_listings(root, args.docs, args.seed)
    # The texts exactly as score reads them (columns joined, rows checked).
    spec = DatasetSpec(data=str(listings), **trained.domain.model_dump(include={"id", "text", "lang"}))
    texts = read_listings(str(listings), spec, trained.prepare).texts
    print(f"bundle {bundle.manifest['id']}: {bundle.encoder}, {bundle.key}; {len(texts)} new listings")

    probe = Embedder(bundle.encoder, settings)
    tokens = sum(len(ids) for ids in probe.tokenize(texts))
    flops_per_doc = 2 * sum(p.numel() for p in probe.encoder.encoder.parameters()) * tokens / len(texts)
    del probe
    peak = matmul_gflops()
    print(f"{tokens / len(texts):.1f} tokens, {flops_per_doc / 1e9:.2f} GFLOP a listing; peak {peak:.0f} GFLOP/s")

    def score_cold(repeat: int) -> np.ndarray:
        out, store = root / f"cold-{repeat}", root / f"store-{repeat}"
        metrics = score.run(args.bundle, str(listings), str(out), store=str(store))
        assert metrics["embedded"] > 0 and metrics["scored_rows"] == len(texts), metrics
        stored = cached.plan(VectorStore(str(store)), bundle.key, lambda: iter([texts]))
        return stored.rows(0, len(texts))  # the vectors score made, read back from its store

    def embedder(_: int) -> np.ndarray:
        return Embedder(bundle.encoder, settings).embed(texts)

    def sentence_transformers(_: int) -> np.ndarray:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(bundle.encoder, device="cpu")
        model.max_seq_length = bundle.key.max_length
        return model.encode(texts, prompt=bundle.key.prompt or None, batch_size=ST_BATCH, convert_to_numpy=True)

    methods: dict[str, Callable[[int], np.ndarray]] = {
        "score": score_cold,
        "embedder": embedder,
        "sentence_transformers": sentence_transformers,
    }
    best: dict[str, tuple[np.ndarray, float]] = {}
    for repeat in range(args.repeats):
        for name, method in methods.items():
            began = time.perf_counter()
            vectors = method(repeat)
            seconds = time.perf_counter() - began
            print(f"{name:>22}: {seconds:6.1f} s, {len(texts) / seconds:6.1f} docs/s", flush=True)
            if name not in best or seconds < best[name][1]:
                best[name] = (vectors, seconds)
    began = time.perf_counter()
    warm = score.run(args.bundle, str(listings), str(root / "warm"), store=str(root / "store-0"))
    seconds = time.perf_counter() - began
    print(f"{'score warm':>22}: {seconds:6.1f} s ({warm['reused']} reused, {warm['embedded']} embedded)")

    for name in ("score", "sentence_transformers"):
        low = float(cosine(best[name][0], best["embedder"][0]).min())
        print(f"min cosine {name} vs embedder: {low:.6f}")
        if low < 0.9999:
            print(f"FAIL: {name} vectors differ from the Embedder's", file=sys.stderr)
            return 1
    rate = {name: len(texts) / seconds for name, (_, seconds) in best.items()}
    for name, docs_per_second in rate.items():
        print(f"{name:>22}: {docs_per_second * flops_per_doc / 1e9 / peak:.0%} of the matmul peak")
    print(
        f"score_docs_per_second={rate['score']:.1f} embedder_docs_per_second={rate['embedder']:.1f} "
        f"sentence_transformers_docs_per_second={rate['sentence_transformers']:.1f} "
        f"score_to_embedder={rate['score'] / rate['embedder']:.2f} "
        f"score_to_sentence_transformers={rate['score'] / rate['sentence_transformers']:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
