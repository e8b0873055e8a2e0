"""The similarity sets' paired comparisons: fine-tuned minus PLM F1, resampling test queries.

``evaluate-knn`` keeps every test query's pair counts at each arm's threshold (``queries.parquet``);
the bootstrap here resamples queries, the same ones for both arms, so the interval reflects the
difference between the encoders rather than which queries the test split happened to hold.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from commerce_lm import names, storage
from commerce_lm.metrics import paired_bootstrap_f1
from commerce_lm.steps.build_report import cache

# The per-query pair counts of queries.parquet (docs/contracts.md, evaluate-knn output).
COUNT_COLUMNS = ["tp", "predicted", "relevant"]


def compare_similarity(queries: pd.DataFrame, samples: int, seed: int) -> dict[str, dict[str, Any]]:
    """Fine-tuned minus PLM F1 of every set, over all test pairs and per language slice.

    Args:
        queries: ``evaluate-knn``'s per-query counts: ``set``, ``arm``, ``slice``, ``query`` and
            :data:`COUNT_COLUMNS`.
        samples: Bootstrap resamples of the queries.
        seed: Resampling seed.

    Returns:
        Per set, ``comparisons`` (``finetuned_minus_plm``: ``f1_diff``, ``f1_diff_ci``,
        ``f1_significant``, ``n`` queries) and ``comparisons_by_language`` (the same per slice,
        ``same_language`` / ``cross_language``; a slice without true pairs is left out, as its F1 is).
    """
    out: dict[str, dict[str, Any]] = {}
    for (name, part), rows in queries.groupby(["set", "slice"], sort=False):
        arms = {arm: counts.set_index("query")[COUNT_COLUMNS] for arm, counts in rows.groupby("arm")}
        if "plm" not in arms or "finetuned" not in arms:
            continue
        tuned = arms["finetuned"]
        plm = arms["plm"].loc[tuned.index]  # the same queries, in the same order
        if part != "all" and not tuned["relevant"].any():
            continue
        comparison = {
            "finetuned_minus_plm": {
                **paired_bootstrap_f1(tuned.to_numpy(), plm.to_numpy(), samples, seed),
                "n": int(len(tuned)),
            }
        }
        entry = out.setdefault(str(name), {"comparisons": {}, "comparisons_by_language": {}})
        if part == "all":
            entry["comparisons"] = comparison
        else:
            entry["comparisons_by_language"][str(part)] = comparison
    return out


def similarity_metrics(knn_dir: str, samples: int, seed: int) -> dict[str, Any]:
    """``evaluate-knn``'s metrics, each set with its paired comparisons (:func:`compare_similarity`)."""
    similarity = storage.read_json(storage.join(knn_dir, names.METRICS_JSON))
    if not similarity:
        return similarity
    queries = storage.read_parquet(storage.join(knn_dir, names.KNN_QUERIES)).to_pandas()
    for _, rows in queries.groupby("set", sort=False):  # each set cached apart: a new set redoes only itself
        part_key = cache.key(cache.frame_digest(rows, list(rows.columns)), samples, seed)
        for name, comparisons in cache.cached(
            "similarity", part_key, lambda r=rows: compare_similarity(r, samples, seed)
        ).items():
            similarity[name].update(comparisons)
    return similarity
