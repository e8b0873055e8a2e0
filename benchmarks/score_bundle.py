"""Scoring throughput of a published bundle: new listings (cold store) vs the same listings again (warm).

Generates ``--docs`` new demo listings (another seed than the demo run's), scores them with the
bundle through a fresh vector store (every text embedded), then again (every text found), in this
one process, and compares both with the wall time of the pipeline run that made the bundle.

    python benchmarks/score_bundle.py --bundle outputs/bundles --pipeline-seconds 900 [--docs 10000]

The last line reads ``cold_docs_per_second=X warm_docs_per_second=Y cold_to_pipeline_time=Z``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from commerce_lm.demo import corpus
from commerce_lm.steps import score


def new_listings(folder: Path, docs: int, seed: int) -> Path:
    """``docs`` demo listings (about 1.5 rows per item) written as Parquet."""
    path = Path(corpus.write(folder / "all.parquet", n_items=docs, seed=seed))
    frame = pd.read_parquet(path).head(docs)
    target = folder / "listings.parquet"
    frame.to_parquet(target, index=False)
    return target


def timed(bundle: str, listings: Path, out: Path, store: Path) -> tuple[float, dict]:
    began = time.perf_counter()
    metrics = score.run(bundle, str(listings), str(out), store=str(store))
    return time.perf_counter() - began, metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", required=True, help="bundle folder or registry")
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--pipeline-seconds", type=float, required=True, help="wall time of the run that made it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="score-bench-") as tmp:
        root = Path(tmp)
        listings = new_listings(root, args.docs, args.seed)
        cold_seconds, cold = timed(args.bundle, listings, root / "cold", root / "store")
        warm_seconds, warm = timed(args.bundle, listings, root / "warm", root / "store")
    for name, seconds, m in (("cold", cold_seconds, cold), ("warm", warm_seconds, warm)):
        print(
            f"{name}: {m['input_rows']} rows, {m['scored_rows']} scored, {m['rejected_rows']} rejected, "
            f"{m['embedded']} embedded, {m['reused']} reused, {seconds:.1f} s, "
            f"{m['scored_rows'] / seconds:.1f} docs/s (embedding alone {m['embed_seconds']:.1f} s)"
        )
    print(f"pipeline run that made the bundle: {args.pipeline_seconds:.0f} s")
    print(
        f"cold_docs_per_second={cold['scored_rows'] / cold_seconds:.1f} "
        f"warm_docs_per_second={warm['scored_rows'] / warm_seconds:.1f} "
        f"cold_to_pipeline_time={cold_seconds / args.pipeline_seconds:.3f}"
    )


if __name__ == "__main__":
    main()
