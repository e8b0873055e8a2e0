"""KFP component: train-heads (one linear layer per task, on each embedding set)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from commerce_lm_components.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def train_heads(
    section_json: str,
    code_version: str,
    prepared: Input[Dataset],
    encoder: Input[Model],
    plm_embeddings: Input[Dataset],
    finetuned_embeddings: Input[Dataset],
    heads: Output[Model],
):
    """Logistic-regression heads on frozen PLM and fine-tuned embeddings."""
    from commerce_lm import config, names, storage
    from commerce_lm.embedding.checks import expected_checksums
    from commerce_lm.steps import train_heads

    section = config.section_from_json("train-heads", section_json)
    model = storage.join(encoder.path, names.MODEL_DIR)
    arms = {"plm": plm_embeddings.path, "finetuned": finetuned_embeddings.path}
    train_heads.run(section, prepared.path, arms, heads.path, expected_checksums(section.model, model))
