"""The encoder's model card (``README.md``): data, objective, metrics and intended use."""

from __future__ import annotations

from typing import Any


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "-" if value is None else str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]


def _data_lines(run: dict[str, Any], stats: dict[str, Any]) -> list[str]:
    lines = ["## Data", ""]
    domain = run["domain"]
    rows = [["domain", domain["data"], f"label `{domain['label']}`"]]
    rows += [[f"task {t['name']}", t["data"], f"binary label `{t['label']}`"] for t in run["tasks"]]
    rows += [[f"similarity {s['name']}", s["data"], f"group `{s['group']}`"] for s in run.get("similarity", [])]
    for row in rows:
        counts = stats.get(row[0].replace("task ", "task-").replace("similarity ", "similarity-"), {})
        row.append(counts.get("accepted_rows"))
        row.append(counts.get("rejected_rows"))
    return lines + _table(["Dataset", "Source", "Target", "Accepted rows", "Rejected rows"], rows) + [""]


def _metric_lines(metrics: dict[str, Any]) -> list[str]:
    lines = ["## Metrics", "", "Held-out test split of each dataset; heads and thresholds chosen on validation.", ""]
    rows = [
        [task, arm.get("roc_auc"), arm.get("pr_auc"), arm.get("threshold")]
        for task, arm in metrics.get("tasks", {}).items()
    ]
    lines += _table(["Task (linear head on this encoder)", "ROC AUC", "PR AUC", "Threshold"], rows) + [""]
    similarity = metrics.get("similarity", {})
    if similarity:
        rows = [[name, s.get("f1"), s.get("recall_at_10"), s.get("threshold")] for name, s in similarity.items()]
        lines += _table(["Similarity set (KNN)", "F1", "Recall@10", "Cosine threshold"], rows) + [""]
    domain = metrics.get("domain", {})
    lines += [f"Domain objective, validation: accuracy {_fmt(domain.get('val_accuracy'))}, "
              f"macro F1 {_fmt(domain.get('val_macro_f1'))}.", ""]  # fmt: skip
    return lines


def model_card(run: dict[str, Any], stats: dict[str, Any], metrics: dict[str, Any], encoder: dict[str, Any]) -> str:
    """The model card of a bundle's encoder.

    Args:
        run: The run config (as JSON).
        stats: prepare-data's ``stats.json`` (rows accepted and rejected per dataset).
        metrics: ``tasks`` (test metrics and threshold per head), ``similarity``, ``domain``.
        encoder: The manifest's encoder entry (checksum, pooling, max length, dim, prompt).
    """
    finetune = run.get("finetune", {})
    objective = ", ".join(f"{name} x {weight}" for name, weight in finetune.get("objective", {}).items())
    header = [
        "---",
        "library_name: sentence-transformers",
        "pipeline_tag: feature-extraction",
        "tags: [sentence-transformers, feature-extraction, commerce-integrity, commerce-lm]",
        f"base_model: {run['model']}",
        "---",
        "",
        f"# {run.get('name', 'commerce-lm')} listing encoder",
        "",
        f"`{run['model']}` fine-tuned by commerce-lm on marketplace listings (title and description) for "
        "commerce-integrity work. Its frozen vectors feed one linear head per integrity task and KNN "
        "similarity search; the heads, thresholds and reference indexes ship beside this folder in the bundle.",
        "",
        f"Pooling: **{encoder['pooling']}**, max length {encoder['max_length']} tokens, {encoder['dim']} "
        f"dimensions, encoder checksum `{encoder['checksum']}`. `modules.json` and `1_Pooling/` declare it, so "
        "`SentenceTransformer(folder).encode(texts)` gives the vectors the heads were trained on "
        "(not normalised; the similarity search normalises them itself).",
        "",
    ]
    objective_lines = [
        "## Objective",
        "",
        f"Exclusive multi-class domain labels (`{run['domain']['label']}`), weighted losses on the pooled "
        f"vector: {objective or 'cross_entropy x 1.0'}; {finetune.get('epochs')} epoch(s), learning rate "
        f"{finetune.get('learning_rate')}, best checkpoint by {finetune.get('best_metric')}.",
        "",
    ]
    use = [
        "## Intended use",
        "",
        "Embedding new listings to score them with the bundle's heads (`commerce-lm score`) and to find "
        "near-duplicates or re-listings among reference listings. Scores are inputs to human review or to "
        "policy rules at the chosen thresholds, not final decisions about sellers.",
        "",
        "Out of scope: listings far from the training data (other languages, categories or markets) without "
        "re-validating; any use of the scores as the sole ground for an enforcement action.",
        "",
        "```python",
        "from sentence_transformers import SentenceTransformer",
        'vectors = SentenceTransformer("encoder").encode(["Brand new phone charger, ships fast"])',
        "```",
        "",
    ]
    return "\n".join(header + _data_lines(run, stats) + objective_lines + _metric_lines(metrics) + use)
