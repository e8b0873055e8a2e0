import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from commerce_lm import names
from commerce_lm.config import section_for
from commerce_lm.embedding.checks import EncoderMismatchError
from commerce_lm.steps import evaluate_knn, extract_embeddings, train_heads
from commerce_lm.steps.build_report.scoring import MAX_CURVE_POINTS


@pytest.fixture(scope="module")
def embeddings(tmp_path_factory, tiny_cfg, tiny_prepared, tiny_run_dir):
    out = tmp_path_factory.mktemp("emb") / "plm"
    extract_embeddings.run(section_for("extract-embeddings", tiny_cfg), tiny_cfg.model, str(tiny_prepared), str(out))
    return out


def test_heads_train_save_weights_and_predictions(tmp_path, tiny_cfg, tiny_prepared, embeddings):
    out = tmp_path / "heads"
    metrics = train_heads.run(
        section_for("train-heads", tiny_cfg), str(tiny_prepared), {"plm": str(embeddings)}, str(out)
    )
    for task in tiny_cfg.tasks:
        arm = metrics[task.name]["plm"]
        assert 0.0 <= arm["roc_auc"] <= 1.0 and arm["train_seconds"] > 0 and arm["c"] in tiny_cfg.heads.c_grid
        head = json.loads((out / names.HEADS_DIR / "plm" / f"{task.name}.json").read_text())
        assert len(head["weight"]) == len(head["scaler_mean"])
        predictions = pd.read_parquet(out / names.HEADS_DIR / "plm" / f"{task.name}.parquet")
        test = pd.read_parquet(tiny_prepared / names.TASKS_DIR / f"{task.name}.parquet").query("split == 'test'")
        assert list(predictions["id"]) == list(test["id"])
        # The saved weights reproduce the saved scores: they are the head, not a summary of it.
        vectors = extract_embeddings.load_embeddings(str(embeddings))
        index = {i: r for r, i in enumerate(vectors.ids)}
        x = (vectors.vectors[[index[i] for i in test["id"]]] - head["scaler_mean"]) / head["scaler_scale"]
        scores = 1 / (1 + np.exp(-(x @ np.array(head["weight"]) + head["bias"])))
        np.testing.assert_allclose(scores, predictions["score"], rtol=2e-3, atol=1e-5)  # float32 vectors


def test_heads_learn_a_linearly_separable_signal(tmp_path, tiny_cfg, tiny_prepared, embeddings):
    """Embeddings that carry the label must give a near-perfect head (the head is not a no-op)."""
    table = pd.read_parquet(tiny_prepared / names.TASKS_DIR / "prohibited.parquet")
    emb = extract_embeddings.load_embeddings(str(embeddings))
    label = dict(zip(table["id"], table["label"], strict=True))
    vectors = emb.vectors.copy()
    vectors[:, 0] = [5.0 * label.get(i, 0) for i in emb.ids]
    from commerce_lm.embedding import store

    leaky = tmp_path / "leaky"
    (leaky / names.EMBEDDINGS_DIR).mkdir(parents=True)
    table_ = store.to_table(emb.ids, emb.splits, vectors, "float32")
    pq.write_table(table_, leaky / names.EMBEDDINGS_DIR / store.part_name(0, 1))
    (leaky / names.MANIFEST_JSON).write_text(json.dumps(emb.manifest))
    metrics = train_heads.run(
        section_for("train-heads", tiny_cfg), str(tiny_prepared), {"plm": str(leaky)}, str(tmp_path / "h")
    )
    assert metrics["prohibited"]["plm"]["roc_auc"] > 0.99


def test_heads_refuse_embeddings_of_another_encoder(tmp_path, tiny_cfg, tiny_prepared, embeddings):
    with pytest.raises(EncoderMismatchError) as error:
        train_heads.run(
            section_for("train-heads", tiny_cfg),
            str(tiny_prepared),
            {"plm": str(embeddings)},
            str(tmp_path / "h"),
            expected_checksums={"plm": "0123456789abcdef"},
        )
    found = extract_embeddings.load_embeddings(str(embeddings)).manifest["encoder_checksum"]
    assert "0123456789abcdef" in str(error.value) and found in str(error.value)
    with pytest.raises(EncoderMismatchError):
        evaluate_knn.run(
            section_for("evaluate-knn", tiny_cfg),
            str(tiny_prepared),
            {"plm": str(embeddings)},
            str(tmp_path / "k"),
            expected_checksums={"plm": "0123456789abcdef"},
        )


def test_knn_scores_and_language_breakdown(tmp_path, tiny_cfg, tiny_prepared, embeddings):
    metrics = evaluate_knn.run(
        section_for("evaluate-knn", tiny_cfg),
        str(tiny_prepared),
        {"plm": str(embeddings), "finetuned": str(embeddings)},
        str(tmp_path / "knn"),
    )
    for spec in tiny_cfg.similarity:
        arm = metrics[spec.name]["plm"]
        for key in ("f1", "precision", "recall", "recall_at_10", "mrr"):
            assert 0.0 <= arm[key] <= 1.0, key
        assert set(arm["by_language"]) == {"same_language", "cross_language"}
        same = metrics[spec.name]["finetuned"]
        assert same["f1"] == arm["f1"] and same["mrr"] == arm["mrr"]
        assert metrics[spec.name]["relative_f1_change"] in (None, pytest.approx(0.0))
    # Each test query's pair counts, per set, arm and slice, sum to the scores.
    queries = pd.read_parquet(tmp_path / "knn" / names.KNN_QUERIES)
    assert set(queries["slice"]) == {"all", "same_language", "cross_language"}
    for (name, arm), rows in queries[queries["slice"] == "all"].groupby(["set", "arm"]):
        tp, predicted, relevant = rows[["tp", "predicted", "relevant"]].sum()
        assert len(rows) == metrics[name][arm]["n_queries"]
        assert metrics[name][arm]["f1"] == pytest.approx(2 * tp / (predicted + relevant) if tp else 0.0)


def test_knn_is_perfect_on_group_identity_vectors():
    """One-hot group vectors: every neighbour in the group has cosine 1, others 0."""
    groups = ["a", "a", "a", "b", "b", "c", "c", None, None, "d", "d", "d"]
    table = pd.DataFrame(
        {
            "id": [str(i) for i in range(len(groups))],
            "group": groups,
            "lang": ["en", "de"] * 6,
            "split": ["validation"] * 3 + ["test"] * 4 + ["train"] * 2 + ["test"] * 3,
        }
    )
    codes = {g: i for i, g in enumerate(sorted({g for g in groups if g}))}
    vectors = np.zeros((len(groups), 8), dtype=np.float32)
    for row, group in enumerate(groups):
        vectors[row, codes[group] if group else 5 + row % 3] = 1.0
    from commerce_lm.config import KnnConfig

    result, queries = evaluate_knn.evaluate_arm(table, vectors, KnnConfig(k=3))
    assert result["f1"] == pytest.approx(1.0) and result["mrr"] == pytest.approx(1.0)
    assert result["recall_at_3"] == pytest.approx(1.0)
    # Per query, every predicted pair is true and every true neighbour is found.
    every = queries[queries["slice"] == "all"]
    assert len(every) == result["n_queries"] == 7
    assert (every["tp"] == every["predicted"]).all() and (every["tp"] == every["relevant"]).all()


def test_bootstrap_interval_brackets_the_estimate():
    from commerce_lm.metrics import bootstrap_ci, roc_pr

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    scores = labels * 0.5 + rng.random(400)
    roc, pr = roc_pr(labels, scores)
    ci = bootstrap_ci(labels, scores, 200)
    assert ci["roc_auc_ci"][0] < roc < ci["roc_auc_ci"][1]
    assert ci["pr_auc_ci"][0] < pr < ci["pr_auc_ci"][1]
    assert MAX_CURVE_POINTS > 0
