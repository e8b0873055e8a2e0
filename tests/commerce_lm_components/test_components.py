"""Each KFP component's Python function, called with small real artifacts (the tiny config).

The functions run here as the KFP executor would run them in a pod: ``kfp.dsl`` artifact objects
whose ``path`` (and ``uri``) is a temporary folder, the step's section as JSON. One module-scoped
chain feeds each component the outputs of the ones before it; the training components take two
optimiser steps (``max_steps`` in their section).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

kfp = pytest.importorskip("kfp")
from kfp.dsl import (  # noqa: E402
    HTML,
    ClassificationMetrics,
    Dataset,
    Metrics,
    Model,
    SlicedClassificationMetrics,
)

from commerce_lm import names  # noqa: E402
from commerce_lm.bundle import baselines as bundle_baselines  # noqa: E402
from commerce_lm.bundle import registry  # noqa: E402
from commerce_lm.config import section_for  # noqa: E402
from commerce_lm_components.build_report import build_report  # noqa: E402
from commerce_lm_components.evaluate_knn import evaluate_knn  # noqa: E402
from commerce_lm_components.extract_embeddings import (  # noqa: E402
    extract_finetuned_embeddings,
    extract_plm_embeddings,
    gather_embeddings,
)
from commerce_lm_components.finetune_baseline import finetune_baseline  # noqa: E402
from commerce_lm_components.finetune_encoder import finetune_encoder  # noqa: E402
from commerce_lm_components.prepare_data import prepare_data  # noqa: E402
from commerce_lm_components.publish_bundle import publish_bundle  # noqa: E402
from commerce_lm_components.score import gather_scores, score_listings  # noqa: E402
from commerce_lm_components.train_heads import train_heads  # noqa: E402

VERSION = "test"  # the code version only keys KFP's cache; the functions ignore it


class Chain:
    """The run's artifacts, created on first use, each in its own folder under ``root``."""

    def __init__(self, root: Path, cfg, prepared: Path) -> None:  # noqa: ANN001 - a RunConfig
        self.root, self.cfg, self.made = root, cfg, {}
        self.prepared = Dataset(name="prepared", uri=str(prepared))

    def section(self, step: str) -> str:
        return section_for(step, self.cfg).to_json()

    def artifact(self, kind: type, name: str) -> object:
        return kind(name=name, uri=str(self.root / name))

    def once(self, name: str, make) -> object:  # noqa: ANN001 - a function making the artifact
        if name not in self.made:
            self.made[name] = make()
        return self.made[name]

    def encoder(self) -> Model:
        def make() -> Model:
            encoder, metrics = self.artifact(Model, "encoder"), self.artifact(Metrics, "encoder-metrics")
            section = self.section("finetune-encoder")
            finetune_encoder.python_func(section, VERSION, 1, self.prepared, encoder, metrics)
            self.made["encoder-metrics"] = metrics
            return encoder

        return self.once("encoder", make)

    def baseline(self) -> Model:
        def make() -> Model:
            baseline = self.artifact(Model, "baseline")
            section = self.section("finetune-baseline")
            finetune_baseline.python_func(section, VERSION, 1, "prohibited", self.prepared, baseline)
            return baseline

        return self.once("baseline", make)

    def embeddings(self, arm: str) -> Dataset:
        def make() -> Dataset:
            part = self.artifact(Dataset, f"{arm}-part-0")
            if arm == "plm":
                extract_plm_embeddings.python_func(self.section("extract-embeddings"), VERSION, 0, self.prepared, part)
            else:
                extract_finetuned_embeddings.python_func(
                    self.section("extract-embeddings"), VERSION, 0, self.prepared, self.encoder(), part
                )
            self.made[part.name] = part
            gathered = self.artifact(Dataset, f"{arm}-embeddings")
            gather_embeddings.python_func(VERSION, self.prepared, [part], gathered)
            return gathered

        return self.once(f"{arm}-embeddings", make)

    def evaluated(self, name: str) -> object:
        component, kind, step = {
            "heads": (train_heads, Model, "train-heads"),
            "knn": (evaluate_knn, Dataset, "evaluate-knn"),
        }[name]

        def make() -> object:
            out = self.artifact(kind, name)
            arms = (self.embeddings("plm"), self.embeddings("finetuned"))
            component.python_func(self.section(step), VERSION, self.prepared, self.encoder(), *arms, out)
            return out

        return self.once(name, make)

    def bundle(self) -> Model:
        def make() -> Model:
            bundle = self.artifact(Model, "bundle")
            publish_bundle.python_func(
                self.section("publish-bundle"), VERSION, self.prepared, self.encoder(),
                self.embeddings("finetuned"), self.evaluated("heads"), self.evaluated("knn"),
                {"prohibited": "key-1"}, bundle, baselines=[self.baseline()],
            )  # fmt: skip
            return bundle

        return self.once("bundle", make)


@pytest.fixture(scope="module")
def chain(tmp_path_factory, tiny_cfg, tiny_prepared) -> Chain:
    cfg = tiny_cfg.model_copy(deep=True)
    cfg.finetune.max_steps = cfg.baseline.max_steps = 2
    cfg.publish.location = str(tmp_path_factory.mktemp("registry"))  # not the tiny run's own registry
    return Chain(tmp_path_factory.mktemp("components"), cfg, tiny_prepared)


def _json(artifact: object, name: str) -> dict:
    return json.loads((Path(artifact.path) / name).read_text())


def test_prepare_data(chain: Chain, tmp_path: Path) -> None:
    prepared = Dataset(name="prepared", uri=str(tmp_path / "prepared"))
    prepare_data.python_func(chain.section("prepare-data"), VERSION, prepared)
    stats = _json(prepared, names.STATS_JSON)
    assert set(stats) >= {"domain", "task-prohibited", "task-offplatform", "similarity-relisted"}
    assert prepared.metadata == json.loads(json.dumps(prepared.metadata))  # what KFP stores: JSON
    assert prepared.metadata and (Path(prepared.path) / names.TASKS_DIR / "prohibited.parquet").is_file()
    # The same data as the shared fixture's run of the step itself.
    assert stats == _json(chain.prepared, names.STATS_JSON)


def test_finetune_encoder(chain: Chain) -> None:
    encoder, metrics = chain.encoder(), chain.made["encoder-metrics"]
    saved = _json(encoder, names.METRICS_JSON)
    assert saved["global_steps"] == 2
    assert list((Path(encoder.path) / names.MODEL_DIR).glob("*.safetensors"))
    logged = metrics.metadata
    assert logged["val_accuracy"] == saved["val_accuracy"] and "train_seconds" in logged
    assert json.loads(Path(metrics.path).read_text()) == logged  # a file, so kfp.local can serve a cache hit


def test_finetune_baseline(chain: Chain, tiny_prepared: Path) -> None:
    baseline = chain.baseline()
    saved = _json(baseline, names.METRICS_JSON)
    assert saved["task"] == "prohibited" and saved["global_steps"] == 2 and 0 <= saved["roc_auc"] <= 1
    predictions = pd.read_parquet(Path(baseline.path) / names.PREDICTIONS_TABLE)
    test = pd.read_parquet(tiny_prepared / names.TASKS_DIR / "prohibited.parquet").query("split == 'test'")
    assert sorted(predictions["id"]) == sorted(test["id"])


@pytest.mark.parametrize("arm", ["plm", "finetuned"])
def test_extract_and_gather_embeddings(chain: Chain, arm: str) -> None:
    gathered = chain.embeddings(arm)
    manifest = _json(gathered, names.MANIFEST_JSON)
    corpus = pd.read_parquet(Path(chain.prepared.path) / names.CORPUS_TABLE)
    assert manifest["count"] == len(corpus) and gathered.metadata["count"] == len(corpus)
    assert manifest["dim"] == 32
    assert _json(chain.made[f"{arm}-part-0"], names.MANIFEST_JSON)["count"] == len(corpus)


def test_train_heads(chain: Chain) -> None:
    heads = _json(chain.evaluated("heads"), names.METRICS_JSON)
    for task in ("prohibited", "offplatform"):
        for arm in ("plm", "finetuned"):
            assert 0 <= heads[task][arm]["roc_auc"] <= 1
    assert (Path(chain.evaluated("heads").path) / names.HEADS_DIR / "finetuned" / "prohibited.parquet").is_file()


def test_evaluate_knn(chain: Chain) -> None:
    knn = _json(chain.evaluated("knn"), names.METRICS_JSON)
    assert set(knn) == {"relisted", "translated"}
    assert all(0 <= knn[s][arm]["f1"] <= 1 for s in knn for arm in ("plm", "finetuned"))


def test_publish_bundle(chain: Chain) -> None:
    bundle = chain.bundle()
    assert bundle.metadata["published"], bundle.metadata["reason"]  # the first bundle of an empty registry
    live = registry.live(chain.cfg.publish.location)
    assert bundle.metadata["live"] == live["uri"] and bundle.metadata["bundle"] == live["bundle"]
    # The run's baseline is recorded in the registry under its key, naming the bundle it came with.
    record = bundle_baselines.find(chain.cfg.publish.location, "prohibited", "key-1")
    assert record == bundle.metadata["baselines_recorded"]["prohibited"]
    assert bundle_baselines.origin(record)["bundle"] == bundle.metadata["bundle"]


def test_build_report(chain: Chain) -> None:
    report, metrics = chain.artifact(Dataset, "report"), chain.artifact(Metrics, "report-metrics")
    roc, html = chain.artifact(ClassificationMetrics, "roc"), chain.artifact(HTML, "report.html")
    by_language = chain.artifact(SlicedClassificationMetrics, "roc-by-language")
    Path(html.path).parent.mkdir(parents=True, exist_ok=True)
    build_report.python_func(
        chain.section("build-report"), VERSION, chain.prepared, chain.prepared, chain.encoder(),
        chain.embeddings("plm"), chain.embeddings("finetuned"), chain.evaluated("heads"), {},
        chain.evaluated("knn"), chain.bundle(), report, metrics, roc, by_language, html, baselines=[chain.baseline()],
    )  # fmt: skip
    document = _json(report, names.METRICS_JSON)
    assert document["tasks"]["prohibited"]["e2e"]["roc_auc"] == metrics.metadata["prohibited.e2e.roc_auc"]
    assert metrics.metadata["knn.relisted.finetuned.f1"] == document["similarity"]["relisted"]["finetuned"]["f1"]
    # Paired comparisons over the same queries, and per language, reach the document.
    knn_diff = document["similarity"]["relisted"]["comparisons"]["finetuned_minus_plm"]
    assert knn_diff["n"] == document["similarity"]["relisted"]["plm"]["n_queries"] and len(knn_diff["f1_diff_ci"]) == 2
    prohibited = document["tasks"]["prohibited"]
    assert set(prohibited["comparisons_by_language"]) == set(prohibited["finetuned"]["by_language"])
    assert isinstance(prohibited["e2e"]["capped"], bool) and prohibited["e2e"]["global_steps"] > 0
    assert roc.metadata["confusionMatrix"]["rows"]  # the first task's fine-tuned head
    slices = {s["slice"] for s in by_language.metadata["evaluationSlices"]}
    assert slices and all(s.split("/")[0] in document["tasks"] for s in slices)
    page = Path(html.path).read_text()
    assert page == (Path(report.path) / names.REPORT_HTML).read_text() and "data:image/png;base64," in page
    assert f"Bundle {chain.bundle().metadata['bundle']} is live" in page


def test_score_and_gather_scores(chain: Chain, tiny_run_dir: Path, tmp_path: Path) -> None:
    listings = str(tiny_run_dir / "listings.parquet")
    parts = [chain.artifact(Dataset, f"scores-part-{shard}") for shard in range(2)]
    for shard, part in enumerate(parts):
        score_listings.python_func(chain.bundle().metadata["live"], listings, "", shard, 2, part)
    scores = Dataset(name="scores", uri=str(tmp_path / "scores"))
    gather_scores.python_func(parts, str(tmp_path / "daily"), "run-1", scores)
    rows = len(pd.read_parquet(listings))
    assert sum(p.metadata["input_rows"] for p in parts) == rows == scores.metadata["input_rows"]
    assert scores.metadata["scored_rows"] + scores.metadata["rejected_rows"] == rows
    assert scores.metadata["output"] == str(tmp_path / "daily" / "run-1")
    assert _json(scores, names.METRICS_JSON) == _json(Dataset(uri=scores.metadata["output"]), names.METRICS_JSON)
