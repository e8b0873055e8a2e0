"""Step ``finetune-baseline``: the end-to-end baseline, the encoder fine-tuned on one binary task.

Trains ``section.model`` with a two-class head on ``prepared/tasks/<task>.parquet`` with the shared
DeepSpeed trainer and ``section.baseline`` (early stopping on the validation split within a cap of
``epochs``; :func:`budget` records whether the cap stopped it still improving), then scores the
test split with the best weights: ``predictions.parquet`` holds ``id``, ``label``, ``score`` (the
probability of label 1) and ``lang``. The model itself is not exported; checkpoints exist only while
training (beside the output, see :func:`commerce_lm.training.checkpoint.default_root`). With
``baseline.launch.num_nodes > 1`` the step runs as a cluster job (:mod:`commerce_lm.launch.cluster`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from commerce_lm import models, storage
from commerce_lm.config import FinetuneBaselineSection
from commerce_lm.launch.jobspec import JobRequest
from commerce_lm.metrics import roc_pr
from commerce_lm.modelfiles import st_files
from commerce_lm.names import PREDICTIONS_TABLE, TASKS_DIR
from commerce_lm.training import classifier_run, data, dist, metrics

STEP = "finetune-baseline"
# Documents per scoring batch (one process, no gradients).
SCORE_BATCH = 64


def score(model, split: data.Split, pad_id: int, device: str) -> np.ndarray:  # noqa: ANN001
    """P(label 1) of every document of ``split``, in order."""
    import torch

    model.to(device)
    out = np.zeros(len(split), dtype=np.float64)
    everything = np.arange(len(split))
    with torch.no_grad():
        for positions in data.eval_batches(split, everything, SCORE_BATCH):
            batch = data.collate(split, positions, pad_id)
            logits = model(
                input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)
            ).logits
            out[positions] = metrics.softmax(logits.float().cpu().numpy())[:, 1]
    return out


def budget(result: dict[str, Any], patience: int | None) -> dict[str, Any]:
    """How much of its cap the baseline trained, and whether the cap rather than validation stopped it.

    Args:
        result: The trainer's metrics (``global_steps``, ``steps_per_epoch``, ``best_step``,
            ``stopped_early``).
        patience: ``early_stopping_patience`` of the run.

    Returns:
        ``epochs_run`` and ``capped``: every planned step ran and validation was still improving
        (patience had not run out; without patience, the last evaluation was the best), so more
        steps might have helped and the baseline counts as under-trained.
    """
    steps = result["global_steps"]
    still_improving = patience is not None or result["best_step"] == steps
    return {"epochs_run": steps / result["steps_per_epoch"], "capped": not result["stopped_early"] and still_improving}


def _score_and_publish(
    section: FinetuneBaselineSection,
    trained: classifier_run.Trained,
    test_frame: Any,
    metrics: dict[str, Any],
    out_dir: str,
) -> None:
    """Score the test split with the best weights, add ROC/PR AUC to ``metrics`` and publish (rank 0)."""
    import pandas as pd

    test = data.make_split(trained.tokenizer, test_frame, section.baseline.max_length, metrics["prompt"])
    model = classifier_run.fresh_model(trained.config, trained.result.best_state)
    scores = score(model, test, trained.tokenizer.pad_token_id, trained.info.device)
    # NaN (one class only) becomes null in metrics.json (json_safe).
    metrics.update(zip(("roc_auc", "pr_auc"), roc_pr(test.labels, scores), strict=True))
    predictions = pd.DataFrame(
        {"id": test.ids, "label": test.labels.astype(np.int64), "score": scores, "lang": test.langs}
    )
    with storage.staged_dir(out_dir, STEP) as stage:
        predictions.to_parquet(stage / PREDICTIONS_TABLE, index=False)
        classifier_run.write_common(stage, section, trained, metrics)


def run(
    section: FinetuneBaselineSection,
    prepared_dir: str,
    task: str,
    out_dir: str,
    *,
    checkpoint_dir: str | None = None,
) -> dict[str, Any]:
    """Fine-tune the encoder end to end on one binary task and score its test split.

    Every process of a distributed launch calls it with the same arguments; only rank 0 writes.

    Args:
        section: The step's section (``section.baseline`` holds the trainer settings).
        prepared_dir: The prepare-data output folder (local or ``gs://``).
        task: The task name (``prepared/tasks/<task>.parquet``).
        out_dir: The step's output folder (local or ``gs://``).
        checkpoint_dir: Where to keep resumable checkpoints instead of beside ``out_dir``.

    Returns:
        The metrics written to ``metrics.json``.
    """
    if section.baseline.launch.num_nodes > 1 and not dist.under_launcher():
        # Several nodes: this process creates the cluster job (whose ranks run this step) and waits.
        from commerce_lm.launch import cluster  # the Kubernetes client, needed on this path only

        request = JobRequest(STEP, section, prepared_dir, out_dir, task=task, checkpoint_dir=checkpoint_dir)
        return cluster.run_multi_node(request)
    location = storage.join(prepared_dir, TASKS_DIR, f"{task}.parquet")
    frame = classifier_run.read_table(location)
    bad = sorted(set(frame["label"].unique()) - {0, 1})
    if bad:
        raise ValueError(f"{location}: column 'label' must be 0/1 for a binary task, found {bad}")
    test_frame = classifier_run.split_frame(frame, "test", location)
    # Train and score documents as the frozen arms embed them: after the prompt the encoder declares.
    prompt = st_files.prompt(models.resolve_model(section.model), section.baseline.prompt)
    trained = classifier_run.train_classifier(
        section,
        section.baseline,
        classifier_run.split_frame(frame, "train", location),
        classifier_run.split_frame(frame, "validation", location),
        2,
        out_dir,
        step_name=f"{STEP}:{task}",
        checkpoint_dir=checkpoint_dir,
        prompt=prompt,
    )
    result = trained.result.metrics
    metrics_out: dict[str, Any] = {
        "step": STEP,
        "task": task,
        "n_test": len(test_frame),
        "prompt": prompt,
        "best_value": result.get(result["best_metric"]),
        **result,
        **budget(result, section.baseline.early_stopping_patience),
    }
    if trained.info.is_main:
        _score_and_publish(section, trained, test_frame, metrics_out, out_dir)
    metrics_out = classifier_run.json_safe(metrics_out)
    classifier_run.finish(trained)
    # Every rank returns the same metrics, test scores included.
    return dist.broadcast_object(metrics_out)  # type: ignore[return-value]
