"""Step ``finetune-encoder``: domain fine-tuning of the encoder with an exclusive multi-class objective.

Trains ``section.model`` with a fresh classification head on ``prepared/domain.parquet`` (train split,
evaluated on the validation split) with the shared DeepSpeed trainer (:mod:`commerce_lm.training`),
then exports the best weights in Hugging Face format. ``AutoModel.from_pretrained(out_dir/model)``
loads the encoder (the head's weights are kept in the same files and ignored by ``AutoModel``).

The step reads only its section of the run config (model, seed, domain spec, ``finetune``), never
the task list, so adding a task never re-runs it.

With ``finetune.num_nodes > 1`` (and not already inside a launched job) the step submits a Kubeflow
PyTorchJob running this same step on that many nodes and waits for it (:mod:`commerce_lm.trainjob`).

Checkpoints live beside the output, in ``<parent>/.<name>.checkpoints`` (see
:func:`commerce_lm.training.checkpoint.default_root`), so a rerun resumes; they are deleted once the
outputs are published.
"""

from __future__ import annotations

from typing import Any

from commerce_lm import storage, trainjob
from commerce_lm.config import FinetuneEncoderSection
from commerce_lm.names import DOMAIN_TABLE, LABELS_JSON, MODEL_DIR
from commerce_lm.training import dist, steps

STEP = "finetune-encoder"


def run(
    section: FinetuneEncoderSection, prepared_dir: str, out_dir: str, *, checkpoint_dir: str | None = None
) -> dict[str, Any]:
    """Fine-tune the encoder on the domain corpus and export it.

    Every process of a distributed launch calls it with the same arguments; only rank 0 writes.

    Args:
        section: The step's section (``section.finetune`` holds the trainer settings).
        prepared_dir: The prepare-data output holding the domain table (local or ``gs://``).
        out_dir: The step's output folder (local or ``gs://``).
        checkpoint_dir: Where to keep resumable checkpoints instead of beside ``out_dir``.

    Returns:
        The metrics written to ``metrics.json``.
    """
    if section.finetune.num_nodes > 1 and not dist.under_launcher():
        # The config switch for several nodes: this process submits a PyTorchJob and waits for it.
        request = trainjob.JobRequest(step=STEP, cfg=section, prepared=prepared_dir, output=out_dir)
        return trainjob.run_multi_node(request)
    location = storage.join(prepared_dir, DOMAIN_TABLE)
    labels = list(storage.read_json(storage.join(prepared_dir, LABELS_JSON)))
    frame = steps.read_table(location)
    trained = steps.train_classifier(
        section,
        section.finetune,
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
            steps.write_common(stage, section, trained, metrics)
    steps.finish(trained)
    return steps.json_safe(metrics)
