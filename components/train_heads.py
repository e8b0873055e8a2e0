"""KFP component: train-heads (one linear layer per task, on each embedding set)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from commerce_lm_components.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def train_heads(config_json: str, code_version: str, prepared: Input[Dataset], plm_embeddings: Input[Dataset],
                finetuned_embeddings: Input[Dataset], heads: Output[Model]):
    """Logistic-regression heads on frozen PLM and fine-tuned embeddings."""
    from commerce_lm import config, train_heads

    arms = {"plm": plm_embeddings.path, "finetuned": finetuned_embeddings.path}
    train_heads.run(config.config_from_json(config_json), prepared.path, arms, heads.path)
