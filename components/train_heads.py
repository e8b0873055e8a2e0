"""KFP component: train-heads (one linear layer per task, on each embedding set)."""

from commerce_lm_components.images import CPU_IMAGE
from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def train_heads(
    config_json: str,
    code_version: str,
    prepared: Input[Dataset],
    encoder: Input[Model],
    plm_embeddings: Input[Dataset],
    finetuned_embeddings: Input[Dataset],
    heads: Output[Model],
):
    """Logistic-regression heads on frozen PLM and fine-tuned embeddings."""
    from pathlib import Path

    from commerce_lm import config, names, train_heads
    from commerce_lm.embedding_checks import run_on_embeddings

    cfg = config.config_from_json(config_json)
    model = str(Path(encoder.path, names.MODEL_DIR))
    run_on_embeddings(
        train_heads, cfg, prepared.path, plm_embeddings.path, finetuned_embeddings.path, model, heads.path
    )
