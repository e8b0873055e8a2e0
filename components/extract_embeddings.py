"""KFP components: extract-embeddings with the off-the-shelf encoder and with the fine-tuned one."""

from commerce_lm_components.images import TRAINING_IMAGE
from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output


@dsl.component(base_image=TRAINING_IMAGE, install_kfp_package=False)
def extract_plm_embeddings(config_json: str, code_version: str, prepared: Input[Dataset], embeddings: Output[Dataset]):
    """[CLS] vectors of the config's pre-trained model; does not wait for fine-tuning."""
    from commerce_lm import config, extract_embeddings

    cfg = config.config_from_json(config_json)
    embeddings.metadata.update(extract_embeddings.run(cfg, cfg.model, prepared.path, embeddings.path))


@dsl.component(base_image=TRAINING_IMAGE, install_kfp_package=False)
def extract_finetuned_embeddings(
    config_json: str, code_version: str, prepared: Input[Dataset], encoder: Input[Model], embeddings: Output[Dataset]
):
    """[CLS] vectors of the fine-tuned, frozen encoder."""
    from pathlib import Path

    from commerce_lm import config, extract_embeddings, names

    cfg = config.config_from_json(config_json)
    model = str(Path(encoder.path, names.MODEL_DIR))
    embeddings.metadata.update(extract_embeddings.run(cfg, model, prepared.path, embeddings.path))
