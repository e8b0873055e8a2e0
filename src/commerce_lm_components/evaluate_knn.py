"""KFP component: evaluate-knn (FAISS similarity detection, PLM vs fine-tuned)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from commerce_lm_components.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def evaluate_knn(
    section_json: str,
    code_version: str,
    prepared: Input[Dataset],
    encoder: Input[Model],
    plm_embeddings: Input[Dataset],
    finetuned_embeddings: Input[Dataset],
    knn: Output[Dataset],
):
    """F1, recall@10 and MRR per similarity task and embedding set."""
    from commerce_lm.cli.runtime import run_step

    sets = {"plm_embeddings": plm_embeddings.path, "finetuned_embeddings": finetuned_embeddings.path}
    run_step("evaluate-knn", section_json, knn.path, prepared=prepared.path, finetuned=encoder.path, **sets)
