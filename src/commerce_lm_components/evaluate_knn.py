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
    from commerce_lm import config, names, storage
    from commerce_lm.embedding.checks import expected_checksums
    from commerce_lm.steps import evaluate_knn

    section = config.section_from_json("evaluate-knn", section_json)
    model = storage.join(encoder.path, names.MODEL_DIR)
    arms = {"plm": plm_embeddings.path, "finetuned": finetuned_embeddings.path}
    evaluate_knn.run(section, prepared.path, arms, knn.path, expected_checksums(section.model, model))
