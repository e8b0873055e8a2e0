"""``build-report``: gather every step's results into ``metrics.json``, ``report.md`` and ``report.html``.

Test-set metrics are recomputed here from each arm's stored predictions (:mod:`.scoring`), so PLM
heads, fine-tuned heads and end-to-end models are scored by one piece of code, with bootstrap
confidence intervals and a per-language breakdown; :mod:`.render` writes the two pages.
``curves.json`` carries ROC curves and confusion matrices for the KFP ``ClassificationMetrics`` the
component logs. A task whose end-to-end baseline did not run this time is scored on the baseline's
earlier record in the bundle registry (:mod:`commerce_lm.bundle.baselines`), and its ``e2e`` arm
names that record's run and bundle (``origin``).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from commerce_lm import names, storage
from commerce_lm.bundle import baselines as records
from commerce_lm.config import ReportSection
from commerce_lm.steps.build_report import cache
from commerce_lm.steps.build_report.render import render_html, render_markdown
from commerce_lm.steps.build_report.scoring import compare_arms, compare_by_language, score_arm
from commerce_lm.steps.build_report.similarity import similarity_metrics

CURVES_JSON = "curves.json"

# The reference system's published numbers (DESIGN.md), quoted beside ours.
REFERENCE = {
    "plm": {"roc_auc": "-", "pr_auc": "0.59"},
    "finetuned": {"roc_auc": "0.964-0.982", "pr_auc": "0.850-0.923"},
    "e2e": {"roc_auc": "0.969-0.988", "pr_auc": "-"},
    "head_to_e2e_time_ratio": "about 0.25",
    "knn_mean_relative_f1_change": "+16%",
}


def _table(folder: str, *parts: str, columns: list[str] | None = None) -> pd.DataFrame:
    return storage.read_parquet(storage.join(folder, *parts), columns=columns).to_pandas()


def _task_predictions(
    heads_dir: str, heads: dict[str, Any], baselines: dict[str, tuple[str, dict]], task: str
) -> dict[str, tuple[pd.DataFrame, dict]]:
    arms = {
        arm: (_table(heads_dir, names.HEADS_DIR, arm, f"{task}.parquet"), heads[task][arm])
        for arm in ("plm", "finetuned")
        if arm in heads[task]
    }
    if task in baselines:
        folder, baseline = baselines[task]
        arms["e2e"] = (_table(folder, names.PREDICTIONS_TABLE), baseline)
    return arms


def _cost(tasks: dict[str, Any], embedding: dict[str, Any], domain: dict[str, Any]) -> dict[str, Any]:
    per_task = {}
    for name, task in tasks.items():
        head, e2e = task.get("finetuned", {}), task.get("e2e", {})
        if head and e2e and e2e.get("train_seconds"):
            per_task[name] = {
                "head_seconds": head["train_seconds"],
                "e2e_seconds": e2e["train_seconds"],
                "head_to_e2e_time_ratio": head["train_seconds"] / e2e["train_seconds"],
            }
    k = len(tasks)
    extract = float(embedding.get("finetuned", {}).get("seconds", 0.0))
    heads_total = sum(t.get("finetuned", {}).get("train_seconds", 0.0) for t in tasks.values())
    e2e_total = sum(t.get("e2e", {}).get("train_seconds", 0.0) for t in tasks.values())
    route = extract + heads_total
    return {
        "per_task": per_task,
        "num_tasks": k,
        "embedding_route_seconds": route,
        "embedding_extract_seconds": extract,
        "heads_seconds": heads_total,
        "e2e_route_seconds": e2e_total,
        "embedding_route_to_e2e_ratio": route / e2e_total if e2e_total else None,
        "domain_finetune_seconds": float(domain.get("train_seconds", 0.0)),
        "note": "domain fine-tuning is a one-off shared cost, reported apart from the per-task routes",
    }


# The domain fine-tune's numbers the report keeps.
DOMAIN_KEYS = (
    "val_accuracy",
    "val_macro_f1",
    "val_loss",
    "train_seconds",
    "tokens_per_second",
    "samples_per_second",
    "objective",
    "pooling",
    "best_metric",
    "best_step",
    "val_probe_macro_f1",
)


# The end-to-end baseline's training budget, kept beside its scores: the verdict makes no claim
# against a baseline its step cap stopped while validation still improved.
E2E_BUDGET_KEYS = ("global_steps", "total_steps", "best_step", "epochs_run", "capped")


def _baselines(baseline_dirs: list[str], earlier: dict[str, str]) -> dict[str, tuple[str, dict]]:
    """Task -> (folder, metrics) of its end-to-end baseline: this run's, else its earlier record.

    An earlier record's metrics carry ``origin`` (its run and bundle), which the report names.
    """
    found = {}
    for folder in baseline_dirs:  # each baseline folder read once
        baseline = storage.read_json(storage.join(folder, names.METRICS_JSON))
        found[baseline.get("task")] = (folder, baseline)
    for task, uri in earlier.items():
        if task not in found:
            origin = records.origin(uri)
            found[task] = (uri, {**storage.read_json(storage.join(uri, names.METRICS_JSON)), "origin": origin})
    return found


def _score_tasks(
    cfg: ReportSection, heads_dir: str, baseline_dirs: list[str], earlier: dict[str, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per task: every arm's test metrics and their paired comparisons; and every arm's curves."""
    heads = storage.read_json(storage.join(heads_dir, names.METRICS_JSON))
    baselines = _baselines(baseline_dirs, earlier)
    tasks: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    for task in cfg.tasks:
        arms = _task_predictions(heads_dir, heads, baselines, task.name)
        # Keyed by what the task's figures read, so a task whose inputs did not change is not redone.
        inputs = {arm: (cache.frame_digest(p, cache.PREDICTION_COLUMNS), cost) for arm, (p, cost) in arms.items()}
        part_key = cache.key(inputs, cfg.report.model_dump(mode="json"), cfg.seed)
        scored = cache.cached("tasks", part_key, lambda arms=arms: _score_task(cfg, arms))
        tasks[task.name] = scored["entry"]
        if scored["curves"]:
            curves[task.name] = scored["curves"]
    return tasks, curves


def _score_task(cfg: ReportSection, arms: dict[str, tuple[pd.DataFrame, dict]]) -> dict[str, Any]:
    """One task's ``entry`` (every arm's test metrics, their paired comparisons) and ``curves``."""
    entry: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    for arm, (predictions, cost) in arms.items():
        entry[arm], curves[arm] = score_arm(predictions, cfg, cost)
        entry["n_test"] = int(len(predictions))
        entry["positive_rate"] = float(predictions["label"].mean())
    if "e2e" in arms:
        baseline = arms["e2e"][1]
        entry["e2e"].update({k: baseline.get(k) for k in E2E_BUDGET_KEYS})
        if "origin" in baseline:  # measured by an earlier run, whose run and bundle the report names
            entry["e2e"]["origin"] = baseline["origin"]
    entry["comparisons"] = compare_arms(arms, cfg.report.bootstrap_samples, cfg.seed)
    entry["comparisons_by_language"] = compare_by_language(
        arms, cfg.report.bootstrap_samples, cfg.seed, cfg.report.min_slice_rows
    )
    return {"entry": entry, "curves": curves}


def collect(
    cfg: ReportSection,
    prepared_dir: str,
    finetune_dir: str,
    embeddings: dict[str, str],
    heads_dir: str,
    baseline_dirs: list[str],
    knn_dir: str,
    domain_dir: str | None = None,
    bundle_dir: str | None = None,
    earlier_baselines: dict[str, str] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Build the metrics document (DESIGN.md schema plus CIs, slices, cost, bundle) and the curves."""
    tasks, curves = _score_tasks(cfg, heads_dir, baseline_dirs, earlier_baselines or {})
    metrics: dict[str, Any] = {
        "tasks": tasks,
        "similarity": similarity_metrics(knn_dir, cfg.report.bootstrap_samples, cfg.seed),
        "run": {"name": cfg.name, "model": cfg.model, "config_fingerprint": cfg.fingerprint()},
    }
    domain = storage.read_json(storage.join(finetune_dir, names.METRICS_JSON))
    metrics["domain"] = {k: domain.get(k) for k in DOMAIN_KEYS}
    metrics["embedding"] = {
        arm: {k: m.get(k) for k in ("docs_per_second", "seconds", "count", "dim", "pooling")}
        for arm, loc in embeddings.items()
        for m in [storage.read_json(storage.join(loc, names.MANIFEST_JSON))]
    }
    metrics["cost"] = _cost(metrics["tasks"], metrics["embedding"], metrics["domain"])
    metrics["data"] = _data_stats([d for d in (domain_dir, prepared_dir) if d])
    metrics["data_sampling"] = _samples(cfg)
    if bundle_dir:  # publish-bundle's decision: which bundle is live, and why
        metrics["bundle"] = storage.read_json(storage.join(bundle_dir, names.METRICS_JSON))
    metrics["reference"] = REFERENCE
    return metrics, curves


def _data_stats(prepared_dirs: list[str]) -> dict[str, Any]:
    """Row counts per dataset from every prepare-data output (the domain may be prepared apart)."""
    keys = ("input_rows", "accepted_rows", "rejected_rows", "sampled_out_rows", "accepted_by_split")
    return {
        name: {k: counts[k] for k in keys}
        for folder in prepared_dirs
        for name, counts in storage.read_json(storage.join(folder, names.STATS_JSON)).items()
    }


def hardest_examples(prepared_dir: str, heads_dir: str, task: str, n: int = 3) -> list[dict[str, Any]]:
    """The test listings whose fine-tuned head score is furthest from their label."""
    parts = (names.HEADS_DIR, "finetuned", f"{task}.parquet")
    if not storage.exists(storage.join(heads_dir, *parts)):
        return []
    predictions = _table(heads_dir, *parts)
    predictions["error"] = (predictions["label"] - predictions["score"]).abs()
    worst = predictions.nlargest(n, "error")
    texts = _table(prepared_dir, names.TASKS_DIR, f"{task}.parquet", columns=["id", "text"])
    worst = worst.merge(texts, on="id", how="left")
    return worst[["id", "label", "score", "text"]].to_dict("records")


def _samples(cfg: ReportSection) -> dict[str, int | None]:
    return {
        "domain": cfg.domain.sample,
        **{f"task-{t.name}": t.sample for t in cfg.tasks},
        **{f"similarity-{s.name}": s.sample for s in cfg.similarity},
    }


def run(
    cfg: ReportSection,
    prepared_dir: str,
    finetune_dir: str,
    embeddings: dict[str, str],
    heads_dir: str,
    baseline_dirs: list[str],
    knn_dir: str,
    out_dir: str,
    domain_dir: str | None = None,
    bundle_dir: str | None = None,
    earlier_baselines: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Write ``metrics.json``, ``curves.json``, ``report.md`` and ``report.html`` into ``out_dir``.

    Args:
        cfg: The step's section (names, tasks, similarity sets, ``report``).
        prepared_dir: ``prepare-data`` output with the task tables (and row counts).
        finetune_dir: ``finetune-encoder`` output (domain metrics).
        embeddings: Arm -> ``extract-embeddings`` output (throughput, extraction time).
        heads_dir: ``train-heads`` output.
        baseline_dirs: ``finetune-baseline`` outputs, one per task.
        knn_dir: ``evaluate-knn`` output.
        out_dir: Where the report goes.
        domain_dir: ``prepare-data`` output of the domain, when it was prepared apart (row counts).
        bundle_dir: ``publish-bundle`` output, whose decision the report states.
        earlier_baselines: Task -> the registry's record of its end-to-end baseline, for tasks whose
            baseline did not run this time.

    Returns:
        The metrics document.
    """
    outputs = (
        prepared_dir, finetune_dir, embeddings, heads_dir, baseline_dirs, knn_dir, domain_dir, bundle_dir,
        earlier_baselines,
    )  # fmt: skip
    metrics, curves = collect(cfg, *outputs)
    with storage.staged_dir(out_dir, "build-report") as stage:
        storage.write_json(stage / names.METRICS_JSON, metrics)
        storage.write_json(stage / CURVES_JSON, curves)
        storage.write_bytes(stage / names.REPORT_MD, render_markdown(cfg, metrics).encode())
        examples = {t.name: hardest_examples(prepared_dir, heads_dir, t.name) for t in cfg.tasks}
        storage.write_bytes(stage / names.REPORT_HTML, render_html(cfg, metrics, curves, examples).encode())
    return metrics


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The headline numbers as flat ``name -> value`` pairs (for KFP ``Metrics``)."""
    flat: dict[str, float] = {}
    for task, entry in metrics["tasks"].items():
        for arm in ("plm", "finetuned", "e2e"):
            for key in ("roc_auc", "pr_auc", "train_seconds"):
                value = entry.get(arm, {}).get(key)
                if isinstance(value, float) and value == value:
                    flat[f"{task}.{arm}.{key}"] = value
    for task, entry in metrics["similarity"].items():
        for arm in ("plm", "finetuned"):
            if arm in entry:
                flat[f"knn.{task}.{arm}.f1"] = float(entry[arm]["f1"])
    for key, value in metrics["domain"].items():
        if isinstance(value, float):
            flat[f"domain.{key}"] = value
    return flat
