"""Step ``finetune-encoder``: domain fine-tuning of the encoder with an exclusive multi-class objective.

Trains ``cfg.model`` with a fresh classification head on ``prepared/domain.parquet`` (train split,
evaluated on the validation split) with the shared DeepSpeed trainer (:mod:`commerce_lm.training`),
then exports the best weights in Hugging Face format. ``AutoModel.from_pretrained(out_dir/model)``
loads the encoder (the head's weights are kept in the same files and ignored by ``AutoModel``).

With ``finetune.num_nodes > 1`` (and not already inside a launched job) the step creates a Kubeflow
Trainer TrainJob running this same step on that many nodes and waits for it
(:mod:`commerce_lm.launch.cluster`).

Checkpoints live beside the output, in ``<parent>/.<name>.checkpoints`` (see
:func:`commerce_lm.training.checkpoint.default_root`), so a rerun resumes; they are deleted once the
outputs are published.
"""

from __future__ import annotations

from typing import Any

from commerce_lm import storage
from commerce_lm.config import RunConfig
from commerce_lm.launch.jobspec import JobRequest
from commerce_lm.names import DOMAIN_TABLE, LABELS_JSON, MODEL_DIR
from commerce_lm.training import dist, steps

STEP = "finetune-encoder"


def run(cfg: RunConfig, prepared_dir: str, out_dir: str, *, checkpoint_dir: str | None = None) -> dict[str, Any]:
    """Fine-tune the encoder on the domain corpus and export it.

    Every process of a distributed launch calls it with the same arguments; only rank 0 writes.

    Args:
        cfg: The run config (``cfg.finetune`` holds the trainer settings).
        prepared_dir: The prepare-data output folder (local or ``gs://``).
        out_dir: The step's output folder (local or ``gs://``).
        checkpoint_dir: Where to keep resumable checkpoints instead of beside ``out_dir``.

    Returns:
        The metrics written to ``metrics.json``.
    """
    if cfg.finetune.num_nodes > 1 and not dist.under_launcher():
        # Several nodes: this process creates the cluster job (whose ranks run this step) and waits.
        from commerce_lm.launch import cluster  # the Kubernetes client, needed on this path only

        return cluster.run_multi_node(JobRequest(STEP, cfg, prepared_dir, out_dir, checkpoint_dir=checkpoint_dir))
    location = storage.join(prepared_dir, DOMAIN_TABLE)
    labels = list(storage.read_json(storage.join(prepared_dir, LABELS_JSON)))
    frame = steps.read_table(location)
    trained = steps.train_classifier(
        cfg,
        cfg.finetune,
        steps.split_frame(frame, "train", location),
        steps.split_frame(frame, "validation", location),
        len(labels),
        out_dir,
        step_name=STEP,
        id2label=dict(enumerate(labels)),
        checkpoint_dir=checkpoint_dir,
    )
    metrics = {"step": STEP, "num_labels": len(labels), **trained.result.metrics}
    if trained.info.is_main:
        with storage.staged_dir(out_dir) as stage:
            model = steps.fresh_model(trained.config, trained.result.best_state)
            model.save_pretrained(stage / MODEL_DIR, safe_serialization=True)
            trained.tokenizer.save_pretrained(stage / MODEL_DIR)
            steps.write_common(stage, cfg, trained, metrics)
    steps.finish(trained)
    return steps.json_safe(metrics)
