"""``evaluate-knn``: nearest-neighbour similarity detection with FAISS, PLM vs fine-tuned.

For each similarity task the pool is every document of its table; queries are the documents of
a split that belong to a group. Neighbours come from the whole pool with the query itself
excluded, over L2-normalised vectors (inner product = cosine). A neighbour is predicted similar
when its cosine is at or above a threshold chosen on validation queries for the best F1; test
queries are scored with it. Pairs are also scored separately for same- and cross-language, and
each test query's pair counts are kept (``queries.parquet``) for the report's paired bootstrap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np
import pandas as pd

from commerce_lm import names, storage
from commerce_lm.config import KnnConfig, KnnSection
from commerce_lm.embedding.checks import aligned_vectors, load_checked

# Above this many vectors an approximate index (when configured) pays off.
APPROXIMATE_MIN_VECTORS = 1_000_000


def build_index(vectors: np.ndarray, cfg: KnnConfig) -> faiss.Index:
    """An inner-product index over L2-normalised ``vectors``: exact, or IVF/HNSW by config."""
    dim = vectors.shape[1]
    if cfg.index == "hnsw":
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
    elif cfg.index == "ivf":
        nlist = max(1, int(np.sqrt(len(vectors))))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.nprobe = max(1, nlist // 8)
    else:
        index = faiss.IndexFlatIP(dim)
    index.add(vectors)
    return index


@dataclass
class Neighbours:
    """Top-k neighbours of each query (self excluded): pool rows, cosines, same-group flags."""

    rows: np.ndarray
    cosines: np.ndarray
    similar: np.ndarray
    same_lang: np.ndarray
    group_sizes: np.ndarray  # true neighbours of each query in the pool
    same_lang_sizes: np.ndarray  # ... of those, in the query's language


def search(index: faiss.Index, vectors: np.ndarray, table: pd.DataFrame, queries: np.ndarray, k: int) -> Neighbours:
    """Find the ``k`` nearest pool documents of each query row, excluding the query itself."""
    cosines, rows = index.search(vectors[queries], k + 1)
    keep = rows != queries[:, None]
    # Drop self where found; otherwise drop the last neighbour, so every query keeps exactly k.
    keep[keep.all(axis=1), -1] = False
    rows = rows[keep].reshape(len(queries), k)
    cosines = cosines[keep].reshape(len(queries), k)
    groups, langs = table["group"].to_numpy(), table["lang"].to_numpy()
    valid = rows >= 0
    similar = valid & (groups[np.where(valid, rows, 0)] == groups[queries][:, None])
    same_lang = langs[np.where(valid, rows, 0)] == langs[queries][:, None]
    sizes = table.groupby("group")["id"].transform("size").to_numpy()[queries] - 1
    same = table.groupby(["group", "lang"])["id"].transform("size").to_numpy()[queries] - 1
    return Neighbours(rows, cosines, similar, same_lang, sizes, same)


def _relevant(nb: Neighbours, language: str | None) -> np.ndarray:
    """True neighbours of each query in the pool (all, same- or cross-language), capped at k."""
    sizes = {None: nb.group_sizes, "same": nb.same_lang_sizes, "cross": nb.group_sizes - nb.same_lang_sizes}
    return np.minimum(sizes[language], nb.similar.shape[1])


def query_counts(nb: Neighbours, threshold: float, language: str | None = None) -> np.ndarray:
    """Per query, ``[tp, predicted, relevant]`` pair counts at ``threshold``.

    ``predicted``: neighbours with cosine >= threshold; ``tp``: those of the query's group;
    ``relevant``: the query's true neighbours in the pool (capped at k). With ``language``
    (``same`` or ``cross``) only pairs of that kind count, on both sides. Summed over queries they
    give :func:`pair_scores`; kept per query, they let the report resample queries for an interval
    on the F1 difference between two encoders.
    """
    mask = {None: np.ones_like(nb.similar), "same": nb.same_lang, "cross": ~nb.same_lang}[language]
    predicted = (nb.cosines >= threshold) & mask
    return np.stack([(predicted & nb.similar).sum(axis=1), predicted.sum(axis=1), _relevant(nb, language)], axis=1)


def pair_scores(nb: Neighbours, threshold: float, language: str | None = None) -> dict[str, float] | None:
    """Precision, recall and F1 of predicting neighbours with cosine >= threshold as similar.

    Recall counts every true neighbour of a query in the pool (capped at k), so a group member
    outside the top k counts as missed. With ``language`` (``same`` or ``cross``) only pairs of that
    kind count, on both sides: predicted pairs and every true neighbour of that kind in the pool.

    Returns:
        The scores, or ``None`` (not applicable) for a slice without any true pair.
    """
    tp, positives, relevant = (float(v) for v in query_counts(nb, threshold, language).sum(axis=0))
    if language is not None and relevant == 0:
        return None
    precision = tp / positives if positives else 0.0
    recall = tp / relevant if relevant else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def choose_threshold(nb: Neighbours) -> float:
    """The cosine threshold with the best F1 on these (validation) neighbours."""
    candidates = np.unique(nb.cosines[nb.similar]) if nb.similar.any() else np.array([1.0])
    if len(candidates) > 512:
        candidates = np.quantile(candidates, np.linspace(0, 1, 512))
    return float(max(candidates, key=lambda t: pair_scores(nb, t)["f1"]))


def ranking_scores(nb: Neighbours, k: int) -> dict[str, float]:
    """recall@k and MRR over queries."""
    found = nb.similar[:, :k].sum(axis=1)
    recall = found / np.maximum(np.minimum(nb.group_sizes, k), 1)
    first = np.argmax(nb.similar, axis=1)
    reciprocal = np.where(nb.similar.any(axis=1), 1.0 / (first + 1), 0.0)
    return {f"recall_at_{k}": float(recall.mean()), "mrr": float(reciprocal.mean())}


# The report's slices of the test pairs: name -> ``language`` argument of :func:`query_counts`.
SLICES = {"all": None, "same_language": "same", "cross_language": "cross"}
COUNT_COLUMNS = ["tp", "predicted", "relevant"]


def evaluate_arm(table: pd.DataFrame, vectors: np.ndarray, cfg: KnnConfig) -> tuple[dict[str, Any], pd.DataFrame]:
    """Threshold on validation, scores on test, for one embedding set of one similarity task.

    Returns:
        The scores, and the pair counts of every test query at the threshold (``query`` id,
        ``slice`` of :data:`SLICES`, ``tp``, ``predicted``, ``relevant``), in test-query order.
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    faiss.normalize_L2(vectors)
    index = build_index(vectors, cfg)
    sizes = table.groupby("group")["id"].transform("size").fillna(0).to_numpy()
    grouped = table["group"].notna().to_numpy() & (sizes > 1)
    split = table["split"].to_numpy()
    val_q, test_q = np.flatnonzero(grouped & (split == "validation")), np.flatnonzero(grouped & (split == "test"))
    if len(test_q) == 0:
        raise ValueError("no test document belongs to a group with another member; nothing to evaluate")
    # Without validation groups, fall back to train queries to pick the threshold (never test).
    tune_q = val_q if len(val_q) else np.flatnonzero(grouped & (split == "train"))
    tune_nb = search(index, vectors, table, tune_q, cfg.k)
    threshold = choose_threshold(tune_nb)
    nb = search(index, vectors, table, test_q, cfg.k)
    result = {
        "threshold": threshold,
        # What the threshold achieves where it was chosen: a validation figure to choose encoders by.
        "validation_f1": pair_scores(tune_nb, threshold)["f1"],
        "n_queries": int(len(test_q)),
        **pair_scores(nb, threshold),
        **ranking_scores(nb, cfg.k),
    }
    result["by_language"] = {name: pair_scores(nb, threshold, lang) for name, lang in SLICES.items() if lang}
    ids = table["id"].to_numpy()[test_q]
    queries = pd.concat(
        pd.DataFrame(query_counts(nb, threshold, lang), columns=COUNT_COLUMNS).assign(query=ids, slice=name)
        for name, lang in SLICES.items()
    )
    return result, queries[["query", "slice", *COUNT_COLUMNS]].astype({c: np.int64 for c in COUNT_COLUMNS})


def run(
    section: KnnSection,
    prepared_dir: str,
    embeddings: dict[str, str],
    out_dir: str,
    expected_checksums: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Evaluate every similarity task on every embedding set.

    Args:
        section: The step's section (similarity sets, the PLM, ``knn``).
        prepared_dir: ``prepare-data`` output.
        embeddings: Arm name (``plm``, ``finetuned``) -> ``extract-embeddings`` output.
        out_dir: Output folder with ``metrics.json`` and ``queries.parquet`` (every test query's pair
            counts per set, arm and slice).
        expected_checksums: Arm -> checksum of the encoder the embeddings must come from.

    Returns:
        ``{task: {arm: {f1, precision, recall, recall_at_10, mrr, threshold, by_language},
        "relative_f1_change": ...}}``.
    """
    metrics: dict[str, Any] = {}
    queries = []
    sets = {arm: load_checked(loc, arm, (expected_checksums or {}).get(arm)) for arm, loc in embeddings.items()}
    for spec in section.similarity:
        table = storage.read_parquet(
            storage.join(prepared_dir, names.SIMILARITY_DIR, f"{spec.name}.parquet")
        ).to_pandas()
        task: dict[str, Any] = {}
        for arm, emb in sets.items():
            vectors = aligned_vectors(emb, table["id"], f"similarity {spec.name}")
            task[arm], counts = evaluate_arm(table, vectors, section.knn)
            queries.append(counts.assign(set=spec.name, arm=arm))
        if "plm" in task and "finetuned" in task:  # undefined (None) when the PLM finds nothing
            plm_f1 = task["plm"]["f1"]
            task["relative_f1_change"] = task["finetuned"]["f1"] / plm_f1 - 1 if plm_f1 > 0 else None
        metrics[spec.name] = task
    with storage.staged_dir(out_dir, "evaluate-knn") as stage:
        storage.write_json(stage / names.METRICS_JSON, metrics)
        storage.write_json(stage / names.CONFIG_JSON, section.model_dump(mode="json"))
        if queries:
            pd.concat(queries).to_parquet(stage / names.KNN_QUERIES, index=False)
    return metrics
