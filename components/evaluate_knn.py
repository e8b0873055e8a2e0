"""KFP component: evaluate-knn (FAISS similarity detection, PLM vs fine-tuned)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from commerce_lm_components.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def evaluate_knn(config_json: str, code_version: str, prepared: Input[Dataset], plm_embeddings: Input[Dataset],
                 finetuned_embeddings: Input[Dataset], knn: Output[Dataset]):
    """F1, recall@10 and MRR per similarity task and embedding set."""
    from commerce_lm import config, evaluate_knn

    arms = {"plm": plm_embeddings.path, "finetuned": finetuned_embeddings.path}
    evaluate_knn.run(config.config_from_json(config_json), prepared.path, arms, knn.path)
