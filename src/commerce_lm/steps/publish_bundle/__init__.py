"""Step ``publish-bundle``: package the run as a bundle, gate it against the live one, publish it.

The bundle (:mod:`commerce_lm.bundle`) always lands in the step's output folder under ``bundle/``,
with the decision in ``metrics.json``. With ``publish.location`` set it is also published there and made live
when the retraining gate allows: on this run's validation rows, the new encoder and heads are not
worse than the live bundle's beyond ``publish.tolerance`` on any task. The decision says which
bundle is live and why either way. The run's end-to-end baselines are recorded in the registry
(:mod:`commerce_lm.bundle.baselines`), whatever the gate decides: they are measurements, not the
bundle, and a later run shows them instead of training the same baseline again.
"""

from __future__ import annotations

from typing import Any

from commerce_lm import names, storage
from commerce_lm.bundle import baselines, gate, registry
from commerce_lm.bundle.read import open_bundle
from commerce_lm.config import PublishBundleSection
from commerce_lm.embedding.checks import load_checked
from commerce_lm.steps.publish_bundle import validation
from commerce_lm.steps.publish_bundle.assemble import assemble

STEP = "publish-bundle"
BUNDLE_DIR = "bundle"


def _decide(cfg: PublishBundleSection, prepared_dir: str, heads_dir: str, embeddings: Any) -> tuple[gate.Decision, Any]:
    """The gate's decision, and the live pointer's generation it was made at."""
    settings = cfg.publish
    if not settings.location:
        reason = "publish.location is not set: the bundle stays in this run's output, and nothing was made live"
        return gate.Decision(False, reason, settings.metric, settings.tolerance), None
    pointer, generation = registry.live_versioned(settings.location)
    rows = validation.validation_rows(cfg, prepared_dir)
    new = validation.new_metrics(rows, heads_dir, embeddings, settings.metric)
    live = None
    if pointer is not None:
        live = validation.live_metrics(rows, open_bundle(pointer["uri"]), cfg, settings.metric)
    decision = gate.decide(
        new, live, live_uri=pointer and pointer["uri"], metric=settings.metric, tolerance=settings.tolerance,
        allow_dropped_tasks=settings.allow_dropped_tasks,
    )  # fmt: skip
    return decision, generation


def _record_baselines(
    cfg: PublishBundleSection, bundle_id: str, baseline_dirs: list[str], keys: dict[str, str]
) -> dict[str, str]:
    """Record each baseline whose task has a key in the registry; task -> the record's URI."""
    if not cfg.publish.location:
        return {}  # no registry: nothing outlives the run, and `auto` measures every run
    recorded = {}
    for folder in baseline_dirs:
        task = storage.read_json(storage.join(folder, names.METRICS_JSON)).get("task")
        if task in keys:
            origin = {"run": cfg.name, "bundle": bundle_id}
            recorded[task] = baselines.record(cfg.publish.location, task, keys[task], folder, origin)
    return recorded


def run(
    cfg: PublishBundleSection, prepared_dir: str, finetune_dir: str, embeddings_dir: str, heads_dir: str, knn_dir: str,
    out_dir: str, baseline_dirs: list[str] = (), baseline_keys: dict[str, str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Build the bundle, decide, and publish it when the gate allows.

    Args:
        cfg: The run config (``publish`` holds the registry location and the gate's settings).
        prepared_dir: prepare-data output (validation rows, similarity tables, stats).
        finetune_dir: finetune-encoder output (``model/``, ``metrics.json``).
        embeddings_dir: The fine-tuned encoder's gathered embeddings.
        heads_dir: train-heads output (the ``finetuned`` heads go into the bundle).
        knn_dir: evaluate-knn output (each similarity set's chosen threshold).
        out_dir: This step's output: ``bundle/``, ``metrics.json`` (the decision), ``config.json``.
        baseline_dirs: finetune-baseline outputs of this run.
        baseline_keys: Task -> record key (:func:`commerce_lm.bundle.baselines.record_key`) under
            which each of those baselines is recorded in ``publish.location``.

    Returns:
        ``{bundle, published, live, reason, ...}``: what was decided and which bundle is live.
    """
    embeddings = load_checked(embeddings_dir, "finetuned", None)
    with storage.staged_dir(out_dir, STEP) as stage:
        manifest = assemble(stage / BUNDLE_DIR, cfg, prepared_dir, finetune_dir, embeddings, heads_dir, knn_dir)
        decision, generation = _decide(cfg, prepared_dir, heads_dir, embeddings)
        live = decision.live
        if decision.publish:
            uri = registry.publish(stage / BUNDLE_DIR, cfg.publish.location, manifest["id"])
            registry.set_live(cfg.publish.location, manifest["id"], uri, decision.reason, generation)
            live = uri
        result = {
            "bundle": manifest["id"],
            "published": decision.publish,
            "live": live,
            "reason": decision.reason,
            "encoder_checksum": manifest["encoder"]["checksum"],
            "thresholds": {task: entry["threshold"] for task, entry in manifest["tasks"].items()},
            "decision": decision.to_dict(),
            "baselines_recorded": _record_baselines(cfg, manifest["id"], list(baseline_dirs), baseline_keys or {}),
        }
        storage.write_json(stage / names.METRICS_JSON, result)
        storage.write_json(stage / names.CONFIG_JSON, cfg.model_dump(mode="json"))
    return result
