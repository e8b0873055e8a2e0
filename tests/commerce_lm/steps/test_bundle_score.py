"""Publishing a bundle, the retraining gate, and scoring new listings with it (tiny config)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from commerce_lm import names
from commerce_lm.bundle import layout, registry
from commerce_lm.bundle.apply import head_scores
from commerce_lm.bundle.layout import BundleError
from commerce_lm.bundle.read import open_bundle
from commerce_lm.steps import extract_embeddings, publish_bundle, score
from tests.helpers.bundle import publish


def _edited_heads(outputs: Path, target: Path, edit) -> Path:  # noqa: ANN001 - a function of a head
    shutil.copytree(outputs / "heads", target)
    for path in (target / names.HEADS_DIR / "finetuned").glob("*.json"):
        path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    return target


def test_a_first_bundle_is_published_whole_and_made_live(published, registry_cfg, tiny_cfg):
    location = Path(registry_cfg.publish.location)
    assert published["published"] and "no bundle is live yet" in published["reason"]
    live = registry.live(str(location))
    assert live["bundle"] == published["bundle"] and live["uri"] == published["live"]
    bundle = open_bundle(str(location))  # a registry opens its live bundle, checked against its manifest
    assert bundle.uri == live["uri"] and set(bundle.tasks) == {t.name for t in tiny_cfg.tasks}
    encoder = Path(bundle.encoder)
    assert json.loads((encoder / "config.json").read_text())["model_type"] == "xlm-roberta"  # the model's own
    assert (bundle.root / layout.RUN_CONFIG_JSON).is_file() and list(encoder.glob("*.safetensors"))
    assert (encoder / "modules.json").is_file() and (encoder / "1_Pooling" / "config.json").is_file()
    card = (encoder / "README.md").read_text()
    for section in ("library_name: sentence-transformers", "## Data", "## Objective", "## Metrics", "## Intended use"):
        assert section in card
    for task in bundle.tasks:
        head = bundle.head(task)
        assert head["encoder_checksum"] == bundle.key.encoder_checksum and 0 <= head["threshold"] <= 1
    for name in bundle.similarity:
        ids, vectors = bundle.references(name)
        assert len(ids) == vectors.shape[0] > 0 and bundle.manifest["similarity"][name]["threshold"] > 0


def test_sentence_transformers_gives_the_pipelines_vectors_from_the_bundles_encoder(
    published, run_outputs, tiny_prepared
):
    from sentence_transformers import SentenceTransformer

    bundle = open_bundle(published["live"])
    corpus = pd.read_parquet(tiny_prepared / names.CORPUS_TABLE).head(24)
    emb = extract_embeddings.load_embeddings(str(run_outputs / "emb"))
    index = {doc_id: row for row, doc_id in enumerate(emb.ids)}
    pipeline = emb.vectors[[index[i] for i in corpus["id"]]]
    theirs = SentenceTransformer(bundle.encoder, device="cpu").encode(corpus["text"].tolist(), convert_to_numpy=True)
    np.testing.assert_allclose(theirs, pipeline, atol=1e-4)


def test_the_gate_keeps_the_live_bundle_when_the_new_one_is_worse(
    published, registry_cfg, tiny_prepared, run_outputs, tmp_path
):
    # Heads that rank every listing backwards: validation ROC AUC becomes 1 - the live one's.
    flipped = _edited_heads(
        run_outputs, tmp_path / "heads", lambda h: {**h, "weight": [-w for w in h["weight"]], "bias": -h["bias"]}
    )
    result = publish(registry_cfg, tiny_prepared, run_outputs, tmp_path / "out", heads=flipped)
    assert not result["published"] and result["live"] == published["live"]
    assert result["reason"].startswith(f"kept {published['live']}: the new bundle is worse on validation roc_auc")
    worse = [t for t, e in result["decision"]["tasks"].items() if e["verdict"] == "worse"]
    assert worse and all(t in result["reason"] for t in worse)
    assert registry.live(registry_cfg.publish.location)["bundle"] == published["bundle"]
    assert not (Path(registry_cfg.publish.location) / result["bundle"]).exists()
    # The candidate is still in the step's output, whole: it can be inspected or scored.
    assert (tmp_path / "out" / publish_bundle.BUNDLE_DIR / layout.MANIFEST_JSON).is_file()


def test_the_gate_publishes_a_bundle_that_is_not_worse(published, registry_cfg, tiny_prepared, run_outputs, tmp_path):
    # Heads whose scores rank listings exactly as before (another bundle, same validation ROC AUC).
    same = _edited_heads(run_outputs, tmp_path / "heads", lambda h: {**h, "threshold": h["threshold"] * 0.999})
    result = publish(registry_cfg, tiny_prepared, run_outputs, tmp_path / "out", heads=same)
    try:
        assert result["published"] and result["bundle"] != published["bundle"]
        assert result["reason"] == (
            f"replaces {published['live']}: not worse on validation roc_auc beyond 0.01 on any task"
        )
        assert all(e["verdict"] == "not worse" for e in result["decision"]["tasks"].values())
        assert registry.live(registry_cfg.publish.location)["uri"] == result["live"] != published["live"]
    finally:  # the other tests expect the first bundle live
        registry.set_live(registry_cfg.publish.location, published["bundle"], published["live"], "test", None)


def test_without_a_location_nothing_is_made_live(tiny_cfg, tiny_prepared, run_outputs, tmp_path):
    cfg = tiny_cfg.model_copy(deep=True)
    cfg.publish.location = None
    result = publish(cfg, tiny_prepared, run_outputs, tmp_path / "out")
    assert not result["published"] and result["live"] is None and "publish.location is not set" in result["reason"]
    assert open_bundle(str(tmp_path / "out" / publish_bundle.BUNDLE_DIR)).manifest["id"] == result["bundle"]


@pytest.fixture(scope="module")
def new_listings(tmp_path_factory, tiny_run_dir, run_outputs, published) -> tuple[Path, list[str], str, str]:
    """A CSV of listings to score: test-split listings, a copy of a reference listing, and bad rows."""
    corpus = pd.read_parquet(tiny_run_dir / "listings.parquet").set_index("id")
    scored = pd.read_parquet(run_outputs / "heads" / names.HEADS_DIR / "finetuned" / "prohibited.parquet")
    good = corpus.loc[scored["id"].head(30), ["title", "description", "lang"]].reset_index()
    source = open_bundle(published["live"]).references("relisted")[0][0]
    copy = corpus.loc[[source], ["title", "description", "lang"]].reset_index().assign(id="copy-of-reference")
    first = good.iloc[0]
    bad = pd.DataFrame(
        [
            {"id": "", "title": "no id here", "description": "still text", "lang": "en"},
            {"id": "blank-1", "title": "", "description": "", "lang": "en"},
            first.to_dict(),  # the same row again
            {**first.to_dict(), "title": "another text under an id already scored"},
        ]
    )
    frame = pd.concat([good, copy, bad], ignore_index=True)
    path = tmp_path_factory.mktemp("listings") / "new.csv"
    data = frame[["id", "title", "description", "lang"]].to_csv(index=False).encode()
    path.write_bytes(data + b"broken-1,caf\xff latte,undecodable bytes,fr\n")
    return path, [*good["id"], "copy-of-reference"], source, str(first["id"])


def _counts(metrics: dict) -> tuple[int, int, int]:
    return metrics["input_rows"], metrics["scored_rows"], metrics["rejected_rows"]


def test_scoring_keeps_bad_rows_with_reasons_and_reproduces_the_heads(
    new_listings, published, registry_cfg, run_outputs, tmp_path
):
    path, good_ids, source, first = new_listings
    metrics = score.run(registry_cfg.publish.location, str(path), str(tmp_path / "out"), store=str(tmp_path / "s"))
    assert metrics["bundle"] == published["bundle"]
    assert _counts(metrics) == (len(good_ids) + 5, len(good_ids), 5)
    assert metrics["rejected_by_reason"] == {
        "duplicate_id": 1, "duplicate_row": 1, "empty_text": 1, "missing_id": 1, "undecodable_text": 1,
    }  # fmt: skip
    rejected = pd.read_parquet(tmp_path / "out" / score.REJECTED_DIR)
    assert set(rejected["file"]) == {str(path)}
    # The row as it was, the undecodable byte kept visible.
    assert json.loads(rejected["input"].iloc[-1])["title"] == "caf\\xff latte"
    table = pd.read_parquet(tmp_path / "out" / score.SCORES_DIR)
    assert list(table["id"]) == good_ids
    bundle = open_bundle(published["live"])
    for task in bundle.tasks:
        threshold = bundle.head(task)["threshold"]
        assert (table[f"{task}_flag"] == (table[f"{task}_score"] >= threshold)).all()
    # New listings get the scores train-heads gave the same listings on their test split.
    expected = pd.read_parquet(run_outputs / "heads" / names.HEADS_DIR / "finetuned" / "prohibited.parquet")
    joined = table.merge(expected, on="id")
    assert len(joined) == len(good_ids) - 1
    np.testing.assert_allclose(joined["prohibited_score"], joined["score"], rtol=2e-3, atol=1e-5)
    # A copy of a reference listing finds it, at cosine 1; a listing never lists itself.
    copy = table.set_index("id").loc["copy-of-reference"]
    assert copy["relisted_neighbors"][0] == source and copy["relisted_cosines"][0] > 0.999
    assert all(i not in list(n) for i, n in zip(table["id"], table["relisted_neighbors"], strict=True))
    assert all(
        (np.asarray(c) >= bundle.manifest["similarity"]["relisted"]["threshold"]).all()
        for c in table["relisted_cosines"]
    )

    again = score.run(registry_cfg.publish.location, str(path), str(tmp_path / "again"), store=str(tmp_path / "s"))
    assert (again["embedded"], again["reused"]) == (0, metrics["embedded"] + metrics["reused"])
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "again" / score.SCORES_DIR), table)


def test_sharded_scoring_gathers_to_the_same_rows(new_listings, registry_cfg, tmp_path):
    path, good_ids, _, _ = new_listings
    parts = []
    for shard in range(3):
        parts.append(str(tmp_path / f"shard{shard}"))
        score.run(registry_cfg.publish.location, str(path), parts[-1], shard=shard, num_shards=3)
    metrics = score.gather(parts[::-1], str(tmp_path / "all"))
    assert _counts(metrics) == (len(good_ids) + 5, len(good_ids), 5)
    assert sorted(pd.read_parquet(tmp_path / "all" / score.SCORES_DIR)["id"]) == sorted(good_ids)
    with pytest.raises(ValueError, match="every shard once"):
        score.gather(parts[:2], str(tmp_path / "bad"))


def test_scoring_refuses_heads_of_another_encoder_naming_both(published, new_listings, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(open_bundle(published["live"]).root, bundle)
    head = bundle / layout.HEADS_DIR / "prohibited.json"
    head.write_text(json.dumps({**json.loads(head.read_text()), "encoder_checksum": "0123456789abcdef"}))
    manifest = json.loads((bundle / layout.MANIFEST_JSON).read_text())
    with pytest.raises(BundleError, match="files do not match its manifest: changed"):
        open_bundle(str(bundle))
    (bundle / layout.MANIFEST_JSON).write_text(json.dumps({**manifest, "files": layout.checksums(bundle)}))
    result = subprocess.run(
        [sys.executable, "-m", "commerce_lm.cli", "score", "--bundle", str(bundle), "--input", str(new_listings[0]),
         "--output", str(tmp_path / "out")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 2
    checksum = published["encoder_checksum"]
    assert (
        f"head 'prohibited' was trained on vectors of encoder 0123456789abcdef, but the bundle's encoder is {checksum}"
        in result.stderr
    )
    assert not (tmp_path / "out").exists()


def test_head_scores_are_the_logistic_regressions_probabilities():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 6))
    y = (x[:, 0] + 0.5 * rng.standard_normal(200) > 0).astype(int)
    model = LogisticRegression().fit(x, y)
    head = {
        "scaler_mean": [0.0] * 6,
        "scaler_scale": [1.0] * 6,
        "weight": model.coef_[0].tolist(),
        "bias": model.intercept_[0],
    }
    np.testing.assert_allclose(head_scores(head, x), model.predict_proba(x)[:, 1], rtol=1e-9)
    extreme = head_scores({**head, "bias": 1e4}, x[:2]), head_scores({**head, "bias": -1e4}, x[:2])
    assert np.isfinite(extreme).all() and (extreme[0] == 1).all() and (extreme[1] == 0).all()


def _score_cli(capsys, *argv: str) -> tuple[int, str]:
    from commerce_lm import cli

    code = cli.main(["score", *argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("shard", "num_shards"), [("3", "2"), ("0", "0"), ("-1", "2")])
def test_a_shard_outside_the_shards_is_a_one_line_argument_error(capsys, tmp_path, shard, num_shards):
    argv = ["--bundle", str(tmp_path), "--input", str(tmp_path), "--output", str(tmp_path / "out")]
    code, err = _score_cli(capsys, *argv, "--shard", shard, "--num-shards", num_shards)
    assert code == 2 and f"shard {shard} of {num_shards}" in err and len(err.strip().splitlines()) == 1


def test_scores_are_never_written_into_the_bundle_or_its_registry(published, registry_cfg, new_listings, capsys):
    registry_dir, bundle = Path(registry_cfg.publish.location), published["live"]
    for given, out in (
        (bundle, Path(bundle) / "scores"),
        (str(registry_dir), registry_dir / "scores"),
        (bundle, registry_dir / "scores"),
    ):
        code, err = _score_cli(capsys, "--bundle", given, "--input", str(new_listings[0]), "--output", str(out))
        assert code == 2 and "refusing to write an output inside" in err and len(err.strip().splitlines()) == 1
        assert not out.exists()
    open_bundle(str(registry_dir))  # still whole: its files match its manifest


def test_score_reads_another_encoding_only_when_told(published, new_listings, tmp_path, capsys):
    path, good_ids, _, _ = new_listings
    utf16 = tmp_path / "utf16.csv"
    utf16.write_text(pd.read_csv(path, encoding_errors="replace").to_csv(index=False), encoding="utf-16")
    argv = ["--bundle", published["live"], "--input", str(utf16), "--store", str(tmp_path / "s")]
    code, err = _score_cli(capsys, *argv, "--output", str(tmp_path / "refused"))
    assert code == 2 and "UTF-16" in err and "score: --encoding" in err and not (tmp_path / "refused").exists()
    code, _ = _score_cli(capsys, *argv, "--output", str(tmp_path / "out"), "--encoding", "utf-16")
    assert code == 0 and set(good_ids) <= set(pd.read_parquet(tmp_path / "out" / score.SCORES_DIR)["id"])


def test_an_input_mostly_rejected_is_refused_keeping_its_rejected_rows(published, new_listings, tmp_path, capsys):
    path, good_ids, _, _ = new_listings
    mostly_bad = tmp_path / "bad.csv"
    rows = "".join(f"bad-{i},,,en\n" for i in range(len(good_ids)))  # empty text: rejected
    mostly_bad.write_bytes(path.read_bytes() + rows.encode())
    argv = ["--bundle", published["live"], "--input", str(mostly_bad), "--store", str(tmp_path / "s")]
    code, err = _score_cli(capsys, *argv, "--output", str(tmp_path / "out"))
    assert code == 2 and "over --max-rejected-fraction=0.2" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
    kept = pd.read_parquet(tmp_path / "out.refused" / score.REJECTED_DIR)
    assert len(kept) == len(good_ids) + 5 and (kept["reason"] == "empty_text").sum() == len(good_ids) + 1
    code, _ = _score_cli(capsys, *argv, "--output", str(tmp_path / "out"), "--max-rejected-fraction", "0.6")
    metrics = json.loads((tmp_path / "out" / names.METRICS_JSON).read_text())
    assert code == 0 and _counts(metrics) == (2 * len(good_ids) + 5, len(good_ids), len(good_ids) + 5)


def test_a_sharded_input_mostly_rejected_is_refused_when_gathered(published, new_listings, tmp_path):
    from commerce_lm.data.readers import InputError

    path, good_ids, _, _ = new_listings
    mostly_bad = tmp_path / "bad.csv"
    mostly_bad.write_bytes(path.read_bytes() + "".join(f"bad-{i},,,en\n" for i in range(len(good_ids))).encode())
    parts = [str(tmp_path / f"shard{shard}") for shard in range(2)]
    for shard, part in enumerate(parts):  # each shard alone says nothing of the whole input's share
        score.run(published["live"], str(mostly_bad), part, store=str(tmp_path / "s"), shard=shard, num_shards=2)
    with pytest.raises(InputError, match=r"over --max-rejected-fraction=0.2"):
        score.gather(parts, str(tmp_path / "all"))
    assert len(pd.read_parquet(tmp_path / "all.refused" / score.REJECTED_DIR)) == len(good_ids) + 5
