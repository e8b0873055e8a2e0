"""Paired comparisons the verdict rests on: per language, over KNN queries, and against a capped baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from commerce_lm.metrics import paired_bootstrap_f1, roc_pr
from commerce_lm.steps.build_report.scoring import compare_by_language
from commerce_lm.steps.build_report.similarity import compare_similarity
from commerce_lm.steps.build_report.tables import language_rows, similarity_diff_rows
from commerce_lm.steps.build_report.verdict import MIN_VERDICT_ROWS, task_verdict, verdict_lines


def _counts(rng: np.random.Generator, n: int, hit_rate: float) -> np.ndarray:
    """``[tp, predicted, relevant]`` per query: each query has 1-5 true neighbours, found at ``hit_rate``."""
    relevant = rng.integers(1, 6, n)
    tp = rng.binomial(relevant, hit_rate)
    return np.stack([tp, tp + rng.integers(0, 2, n), relevant], axis=1)


def _f1(counts: np.ndarray) -> float:
    tp, predicted, relevant = counts.sum(axis=0)
    return 2 * tp / (predicted + relevant)


def test_f1_bootstrap_finds_no_difference_between_identical_arms():
    counts = _counts(np.random.default_rng(0), 200, 0.5)
    same = paired_bootstrap_f1(counts, counts.copy(), 300, seed=1)
    assert same["f1_diff"] == 0 and not same["f1_significant"]
    lo, hi = same["f1_diff_ci"]
    assert lo <= 0 <= hi
    # Two arms that each find a pair the other misses here and there: still no clear difference.
    nudged = counts.copy()
    found, missed = nudged[0::20], nudged[10::20]
    found[:, 0] = np.minimum(found[:, 0] + 1, found[:, 2])
    found[:, 1] = np.maximum(found[:, 1], found[:, 0])
    missed[:, 0] = np.maximum(missed[:, 0] - 1, 0)
    nudged[0::20], nudged[10::20] = found, missed
    noise = paired_bootstrap_f1(counts, nudged, 300, seed=1)
    assert noise["f1_diff_ci"][0] < 0 < noise["f1_diff_ci"][1] and not noise["f1_significant"]


def test_f1_bootstrap_tells_a_clearly_better_arm():
    rng = np.random.default_rng(0)
    weak = _counts(rng, 200, 0.3)
    strong = weak.copy()
    strong[:, 0] = strong[:, 2]  # every true neighbour found, on the same queries
    strong[:, 1] = np.maximum(strong[:, 1], strong[:, 0])
    better = paired_bootstrap_f1(strong, weak, 300, seed=1)
    assert better["f1_diff"] == pytest.approx(_f1(strong) - _f1(weak))
    lo, hi = better["f1_diff_ci"]
    assert better["f1_significant"] and 0 < lo <= better["f1_diff"] <= hi
    worse = paired_bootstrap_f1(weak, strong, 300, seed=1)
    assert worse["f1_significant"] and worse["f1_diff_ci"][1] < 0
    assert paired_bootstrap_f1(strong, weak, 0)["f1_diff_ci"] == []  # no resamples: no interval


def _queries(rng: np.random.Generator) -> pd.DataFrame:
    """Per-query counts of one set, as evaluate-knn writes them; the arms list their queries in other orders."""
    ids = [f"q{i}" for i in range(150)]
    weak = _counts(rng, 150, 0.3)
    strong = weak.copy()
    strong[:, 0] = strong[:, 2]
    frames = []
    for arm, counts in (("plm", weak), ("finetuned", strong)):
        for part in ("all", "same_language", "cross_language"):
            rows = counts if part != "cross_language" else np.zeros_like(counts)  # no cross-language pair at all
            frame = pd.DataFrame(rows, columns=["tp", "predicted", "relevant"]).assign(query=ids, slice=part)
            frames.append((frame if arm == "plm" else frame.iloc[::-1]).assign(set="relisted", arm=arm))
    return pd.concat(frames)


def test_similarity_comparisons_pair_the_same_queries_and_skip_empty_slices():
    queries = _queries(np.random.default_rng(0))
    result = compare_similarity(queries, 200, seed=3)["relisted"]
    overall = result["comparisons"]["finetuned_minus_plm"]
    every = queries[queries["slice"] == "all"]
    by_arm = {
        arm: rows.sort_values("query")[["tp", "predicted", "relevant"]].to_numpy() for arm, rows in every.groupby("arm")
    }
    assert overall["f1_diff"] == pytest.approx(_f1(by_arm["finetuned"]) - _f1(by_arm["plm"]))
    assert overall["f1_significant"] and overall["n"] == 150
    assert set(result["comparisons_by_language"]) == {"same_language"}  # cross-language has no true pair
    metrics = {
        "similarity": {
            "relisted": {
                "plm": {"f1": 0.3, "by_language": {"same_language": {"f1": 0.3}, "cross_language": None}},
                "finetuned": {"f1": 0.6, "by_language": {"same_language": {"f1": 0.6}, "cross_language": None}},
                **result,
            }
        }
    }
    rows = similarity_diff_rows(metrics)
    assert [row[:2] for row in rows] == [["relisted", "all"], ["relisted", "same-language"]]
    assert rows[0][3:5] == ["0.300", "0.600"] and rows[0][-1] == "fine-tuned"
    assert "better: fine-tuned" in verdict_lines(metrics)[0]


def test_similarity_verdict_says_no_clear_difference_when_the_interval_holds_zero():
    tie = {"f1_diff": 0.028, "f1_diff_ci": [-0.01, 0.066], "f1_significant": False, "n": 300}
    entry = {"plm": {"f1": 0.315}, "finetuned": {"f1": 0.343}, "relative_f1_change": 0.089}
    (line,) = verdict_lines({"similarity": {"relisted": {**entry, "comparisons": {"finetuned_minus_plm": tie}}}})
    assert line == (
        "relisted (KNN): F1 0.343 fine-tuned vs 0.315 PLM (+9%), difference +0.028 [-0.010, +0.066]; "
        "no clear difference."
    )
    assert "better" not in line


def _loss(diff: float, interval: list[float], n: int) -> dict:
    significant = interval[0] > 0 or interval[1] < 0
    return {
        "finetuned_minus_plm": {
            "pr_auc_diff": diff,
            "pr_auc_diff_ci": interval,
            "pr_auc_significant": significant,
            "n": n,
        }
    }


def test_verdict_names_every_language_that_loses_beyond_its_interval():
    win = {"pr_auc_diff": 0.02, "pr_auc_diff_ci": [0.01, 0.03], "pr_auc_significant": True}
    by_language = {
        "de": _loss(-0.05, [-0.09, -0.01], 120),  # loses beyond its interval: named
        "en": _loss(0.01, [-0.02, 0.04], 400),  # no clear difference
        "es": _loss(-0.03, [-0.07, 0.01], 90),  # loses, but within its interval
        "ja": _loss(-0.10, [-0.20, -0.02], MIN_VERDICT_ROWS),  # exactly the minimum: named
        "zh": _loss(-0.20, [-0.35, -0.05], MIN_VERDICT_ROWS - 1),  # too few rows to judge
    }
    metrics = {
        "tasks": {"counterfeit": {"comparisons": {"finetuned_minus_plm": win}, "comparisons_by_language": by_language}}
    }
    task, languages = verdict_lines(metrics)
    assert task.startswith("counterfeit: use the fine-tuned embeddings")
    assert languages == (
        "counterfeit: fine-tuning loses PR AUC to the PLM in de -0.050 [-0.090, -0.010] (n 120), "
        "ja -0.100 [-0.200, -0.020] (n 50)."
    )
    calm = {lang: by_language[lang] for lang in ("en", "es")}
    metrics["tasks"]["counterfeit"]["comparisons_by_language"] = calm
    assert (
        "no language loses PR AUC" in verdict_lines(metrics)[1] and "(2 with at least 50" in verdict_lines(metrics)[1]
    )
    metrics["tasks"]["counterfeit"]["comparisons_by_language"] = {"zh": by_language["zh"]}
    assert len(verdict_lines(metrics)) == 1  # no language large enough: nothing to say


def _predictions(rng: np.random.Generator, langs: dict[str, int], informative: set[str]) -> pd.DataFrame:
    frames = []
    for lang, n in langs.items():
        labels = rng.integers(0, 2, n)
        scores = labels + rng.normal(0, 0.3 if lang in informative else 3.0, n)
        frames.append(
            pd.DataFrame({"id": [f"{lang}{i}" for i in range(n)], "label": labels, "score": scores, "lang": lang})
        )
    return pd.concat(frames, ignore_index=True)


def test_per_language_comparisons_find_the_language_fine_tuning_broke():
    """The PLM separates every language; the fine-tuned encoder lost ``de``. Only ``de`` is named."""
    rng = np.random.default_rng(0)
    langs = {"de": 200, "en": 200, "fr": 10}
    plm = _predictions(rng, langs, {"de", "en", "fr"})
    tuned = plm.copy()
    de = tuned["lang"] == "de"
    tuned.loc[de, "score"] = tuned.loc[de, "label"] + rng.normal(0, 3.0, de.sum())
    arms = {"plm": (plm, {}), "finetuned": (tuned.sample(frac=1, random_state=0), {})}  # rows in another order
    by_language = compare_by_language(arms, 200, seed=1, min_rows=20)
    assert set(by_language) == {"de", "en"}  # fr: fewer than min_rows
    de_diff, en_diff = by_language["de"]["finetuned_minus_plm"], by_language["en"]["finetuned_minus_plm"]
    assert de_diff["n"] == 200 and de_diff["pr_auc_significant"] and de_diff["pr_auc_diff_ci"][1] < 0
    assert en_diff["pr_auc_diff"] == pytest.approx(0.0) and not en_diff["pr_auc_significant"]
    line = verdict_lines({"tasks": {"t": {"comparisons": {}, "comparisons_by_language": by_language}}})[1]
    assert " de " in line and " en " not in line
    # The report shows both arms side by side with the difference.
    entry = {
        "plm": {"by_language": {"de": {"pr_auc": 0.9, "roc_auc": 0.95, "n": 200}}},
        "finetuned": {"by_language": {"de": {"pr_auc": 0.6, "roc_auc": 0.7, "n": 200}}},
        "comparisons_by_language": by_language,
    }
    (row,) = language_rows({"tasks": {"t": entry}})
    assert row[:5] == ["t", "de", "200", "0.900", "0.600"]
    assert row[5].startswith(f"{de_diff['pr_auc_diff']:+.3f} [") and row[-1] == "-"  # no end-to-end arm


def test_a_capped_baseline_is_reported_under_trained_not_beaten():
    win = {"pr_auc_diff": 0.1, "pr_auc_diff_ci": [0.05, 0.15], "pr_auc_significant": True}
    big = {"pr_auc_diff": 0.52, "pr_auc_diff_ci": [0.45, 0.58], "pr_auc_significant": True}
    comparisons = {"finetuned_minus_plm": win, "finetuned_minus_e2e": big}
    capped = task_verdict("counterfeit", comparisons, {"capped": True, "global_steps": 57})
    assert "end-to-end under-trained (capped at 57 steps while validation still improved)" in capped
    assert "better than end-to-end" not in capped and "+0.520 [+0.450, +0.580]" in capped
    assert "better than end-to-end" in task_verdict("counterfeit", comparisons, {"capped": False, "global_steps": 300})
    # A baseline that wins even capped still wins.
    lost = {**big, "pr_auc_diff": -0.2, "pr_auc_diff_ci": [-0.3, -0.1]}
    beaten = task_verdict(
        "counterfeit", {**comparisons, "finetuned_minus_e2e": lost}, {"capped": True, "global_steps": 57}
    )
    assert "end-to-end fine-tuning is better" in beaten


@pytest.mark.parametrize("n", [2, 7, 60, 500])
def test_roc_pr_gives_scikit_learns_values_ties_included(n):
    """The bootstraps' fast ROC AUC and average precision are scikit-learn's, to rounding."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(n)
    checked = 0
    for trial in range(100):
        labels = rng.integers(0, 2, n)
        scores = rng.integers(0, 4, n) / 3 if trial % 2 else labels + rng.normal(size=n)  # ties / none
        if 0 < labels.sum() < n:
            roc, pr = roc_pr(labels, scores)
            assert roc == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
            assert pr == pytest.approx(average_precision_score(labels, scores), abs=1e-12)
            checked += 1
    assert checked > 20
    assert all(np.isnan(roc_pr(np.ones(n), np.arange(n))))
