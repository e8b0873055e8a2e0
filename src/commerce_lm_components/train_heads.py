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
    from commerce_lm.cli.runtime import run_step

    sets = {"plm_embeddings": plm_embeddings.path, "finetuned_embeddings": finetuned_embeddings.path}
    run_step("train-heads", section_json, heads.path, prepared=prepared.path, finetuned=encoder.path, **sets)
