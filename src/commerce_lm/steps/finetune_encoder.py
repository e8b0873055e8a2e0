"""Step ``finetune-encoder``: domain fine-tuning of the encoder on the domain labels.

Trains ``section.model`` on ``prepared/domain.parquet`` (train split, evaluated on the validation split)
with the shared DeepSpeed trainer (:mod:`commerce_lm.training`) and the objective that
``finetune.objective`` weighs (cross-entropy over the exclusive domain labels, contrastive terms,
masked-LM, staying near the pre-trained vectors), all on the pooled vector that heads and KNN use.
It exports the best encoder in Hugging Face format with a sentence-transformers pooling config
(``finetune.pooling``), so extraction, ``AutoModel`` and ``SentenceTransformer`` agree on its vectors.
``finetune.freeze_embeddings`` and ``finetune.freeze_layers`` keep parts of the PLM as they are,
``finetune.lora_rank`` trains low-rank adapters instead of the weights (merged into them on export),
and ``finetune.interpolation`` exports a mix of the fine-tuned and pre-trained weights (WiSE-FT;
:mod:`commerce_lm.training.adapt`).

The step reads only its section of the run config (model, seed, domain spec, ``finetune``), never
the task list, so adding a task never re-runs it.

With ``finetune.launch.num_nodes > 1`` (and not already inside a launched job) the step creates a Kubeflow
Trainer TrainJob running this same step on that many nodes and waits for it
(:mod:`commerce_lm.launch.cluster`).

Checkpoints live beside the output, in ``<parent>/.<name>.checkpoints`` (see
:func:`commerce_lm.training.checkpoint.default_root`), so a rerun resumes; they are deleted once the
outputs are published.
"""

from __future__ import annotations

from typing import Any

from commerce_lm import models, storage
from commerce_lm.config import FinetuneConfig, FinetuneEncoderSection
from commerce_lm.launch.jobspec import JobRequest
from commerce_lm.modelfiles import st_files
from commerce_lm.modelfiles.st_files import write_sentence_transformers_files
from commerce_lm.names import DOMAIN_TABLE, LABELS_JSON, MODEL_DIR
from commerce_lm.training import adapt, classifier_run, dist, objectives
from commerce_lm.training.pooled_model import PooledEncoder, encoder_state

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
    if section.finetune.launch.num_nodes > 1 and not dist.under_launcher():
        # Several nodes: this process creates the cluster job (whose ranks run this step) and waits.
        from commerce_lm.launch import cluster  # the Kubernetes client, needed on this path only

        return cluster.run_multi_node(JobRequest(STEP, section, prepared_dir, out_dir, checkpoint_dir=checkpoint_dir))
    location = storage.join(prepared_dir, DOMAIN_TABLE)
    labels = list(storage.read_json(storage.join(prepared_dir, LABELS_JSON)))
    frame = classifier_run.read_table(location)
    settings = section.finetune
    source = models.resolve_model(section.model)
    # Train on documents as extraction will embed them: after the prompt the encoder declares.
    prompt = st_files.prompt(source, settings.prompt)
    trained = classifier_run.train_classifier(
        section,
        section.finetune,
        classifier_run.split_frame(frame, "train", location),
        classifier_run.split_frame(frame, "validation", location),
        len(labels),
        out_dir,
        step_name=STEP,
        id2label=dict(enumerate(labels)),
        checkpoint_dir=checkpoint_dir,
        build=lambda tokenizer: _model_and_objective(section, tokenizer, len(labels)),
        prompt=prompt,
    )
    metrics = {
        "step": STEP,
        "num_labels": len(labels),
        "objective": settings.weights(),
        "pooling": settings.pooling,
        "prompt": prompt,
        "lora_rank": settings.lora_rank,
        "interpolation": settings.interpolation,
        **trained.result.metrics,
    }
    if trained.info.is_main:
        with storage.staged_dir(out_dir, "finetune-encoder") as stage:
            _export(stage / MODEL_DIR, trained, settings, source)
            classifier_run.write_common(stage, section, trained, metrics)
    classifier_run.finish(trained)
    return classifier_run.json_safe(metrics)


def _model_and_objective(
    section: FinetuneEncoderSection, tokenizer: Any, num_labels: int
) -> tuple[PooledEncoder, objectives.Mix]:
    """The pooled encoder with a domain head, and the weighted objective of ``section.finetune``."""
    settings = section.finetune

    encoder = models.load_encoder(section.model)
    if settings.lora_rank:
        encoder = adapt.add_adapters(encoder, rank=settings.lora_rank, alpha=settings.lora_alpha)
    model = PooledEncoder(encoder, settings.pooling, num_labels, with_mlm=settings.weights().get("mlm", 0) > 0)
    # Before the engine is built: the optimizer (and DeepSpeed's state) then never holds them. After
    # the adapters, so that freeze_layers freezes the adapters of those layers too.
    adapt.freeze(model.encoder, embeddings=settings.freeze_embeddings, layers=settings.freeze_layers)
    context = objectives.Context(
        settings, tokenizer=tokenizer, load_pretrained=lambda: models.load_encoder(section.model)
    )
    return model, objectives.build(context)


def _export(folder: Any, trained: Any, settings: FinetuneConfig, source: str) -> None:
    """Save the best encoder (without the training heads), its tokenizer, pooling and prompts.

    Adapters (``finetune.lora_rank``) are merged into the weights they update. With
    ``finetune.interpolation`` below 1 the saved weights are pulled back toward the PLM's
    (:func:`commerce_lm.training.adapt.interpolate`). The prompts are the pre-trained encoder's
    (``source``, the resolved PLM folder), declared again, with the one training used
    (``finetune.prompt``) as the default: extraction with ``embed.prompt: auto`` then embeds
    documents as the encoder was trained on them.
    """
    from transformers import AutoModel

    state = encoder_state(trained.result.best_state)
    if settings.lora_rank:
        state = adapt.merged_state(state, trained.config, rank=settings.lora_rank, alpha=settings.lora_alpha)
    if settings.interpolation < 1:
        state = adapt.interpolate(state, models.load_encoder(source).state_dict(), settings.interpolation)
    encoder = AutoModel.from_config(trained.config)
    encoder.load_state_dict(state)
    encoder.float().save_pretrained(folder, safe_serialization=True)
    trained.tokenizer.save_pretrained(folder)
    prompts, _ = st_files.declared_prompts(source)
    trained_with = st_files.prompt_name(source, settings.prompt)
    dim = trained.config.hidden_size
    write_sentence_transformers_files(str(folder), settings.pooling, dim, settings.max_length, prompts, trained_with)
