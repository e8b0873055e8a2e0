"""How much of the PLM's vectors is language, and what removing it does to tasks and similarity search.

Measured on an output folder of ``benchmarks/objectives.py`` (its ``prepared/`` data and its
``plm-auto/`` vectors: the PLM pooled as it declares), with no training. Two linear projections are
fitted on the *train* split and applied to every vector:

- ``lir-R``: Language Information Removal (Yang et al. 2021): the R leading directions of the
  per-language mean offsets (each language's mean vector minus the corpus mean) are projected out;
- ``abtt-K``: All-but-the-top (Mu and Viswanath 2018): centre, then project out the K leading
  principal components.

Each projected set then goes through the pipeline's own train-heads and evaluate-knn, paired with the
PLM. It prints test PR AUC per task and F1 per similarity set, each with its difference from the PLM,
and the same on validation, to show where language identity helps (same-language near-duplicates)
and where it hurts (cross-language retrieval), on the data the fine-tune sees.

    python benchmarks/language_subspace.py --config configs/demo.yaml --out outputs/bench/objectives-demo
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from objectives import evaluate, scores  # this folder is on the path when run as a script


def language_directions(vectors: np.ndarray, langs: np.ndarray) -> np.ndarray:
    """Unit directions spanned by the per-language mean offsets, leading first (rows)."""
    centre = vectors.mean(axis=0)
    offsets = np.stack([vectors[langs == lang].mean(axis=0) - centre for lang in np.unique(langs)])
    return np.linalg.svd(offsets, full_matrices=False)[2]


def principal_directions(vectors: np.ndarray) -> np.ndarray:
    """Unit principal directions of the centred vectors, leading first (rows)."""
    return np.linalg.svd(vectors - vectors.mean(axis=0), full_matrices=False)[2]


def project_out(vectors: np.ndarray, centre: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """``vectors`` centred on ``centre`` with their components along ``directions`` (rows) removed."""
    centred = vectors - centre
    return centred - (centred @ directions.T) @ directions


def _write_projected(plm: Path, folder: Path, transform) -> None:
    """A copy of the embedding folder ``plm`` at ``folder`` with every vector transformed."""
    if (folder / "manifest.json").exists():
        return
    stage = folder.with_name(folder.name + ".partial")
    shutil.rmtree(stage, ignore_errors=True)
    shutil.copytree(plm, stage)
    for part in sorted((stage / "embeddings").glob("*.parquet")):
        table = pq.read_table(part)
        vectors = np.asarray(table.column("vector").to_pylist(), dtype=np.float32)
        projected = transform(vectors).astype(np.float32)
        column = pa.FixedSizeListArray.from_arrays(pa.array(projected.ravel()), projected.shape[1])
        pq.write_table(table.set_column(table.column_names.index("vector"), "vector", column), part)
    stage.rename(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--out", required=True, help="an output folder of benchmarks/objectives.py")
    parser.add_argument("--lir", default="1,2,4,8", help="numbers of language directions to remove")
    parser.add_argument("--abtt", default="3,8", help="numbers of principal components to remove")
    args = parser.parse_args()
    out = Path(args.out)
    prepared, plm = out / "prepared", out / "plm-auto"
    table = pq.read_table(plm / "embeddings", columns=["id", "split", "vector"]).to_pandas()
    corpus = pd.read_parquet(prepared / "corpus.parquet", columns=["id", "lang"]).set_index("id")
    train = table[table["split"] == "train"]
    vectors = np.asarray(train["vector"].tolist(), dtype=np.float32)
    langs = corpus.loc[train["id"], "lang"].to_numpy()
    centre = vectors.mean(axis=0)
    by_language, principal = language_directions(vectors, langs), principal_directions(vectors)
    variants = {f"lir-{r}": by_language[:r] for r in map(int, args.lir.split(","))}
    variants |= {f"abtt-{k}": principal[:k] for k in map(int, args.abtt.split(","))}
    log, base = out / "log.txt", None
    lines = []
    for name, directions in {"center": principal[:0], **variants}.items():
        folder = out / "subspace" / name
        _write_projected(plm, folder / "embeddings", lambda v, d=directions: project_out(v, centre, d))
        metrics = evaluate(args.config, [], folder, prepared, plm, folder / "embeddings", log)
        base = base or scores(metrics, "plm")
        row = scores(metrics, "finetuned")
        cells = [f"{row[s][k]:.3f} ({row[s][k] - base[s][k]:+.3f})" for s in ("test", "val") for k in base["test"]]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    keys = list(base["test"])
    header = ["projection", *[f"{s} {k}" for s in ("test", "val") for k in keys]]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    print("| " + " | ".join(["plm", *[f"{base[s][k]:.3f}" for s in ("test", "val") for k in keys]]) + " |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
